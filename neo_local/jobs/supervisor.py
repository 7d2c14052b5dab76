"""The per-job supervisor: ``python -m neo_local.jobs.supervisor <job-name>``.

Launched detached (its own session) by CreateCompilationJob. It marks the job INPROGRESS,
runs the worker (``python -m neo_local.jobs.worker``) as a child in a process group of its
own, and ends the job when the worker cannot: on StoppingCondition.MaxRuntimeInSeconds
(FAILED), on StopCompilationJob (STOPPED, after SIGTERM then SIGKILL as SageMaker does) and
when the worker dies without reporting (FAILED, naming the signal or exit status).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from neo_local.api.errors import client_error, internal_error
from neo_local.jobs import launch, processes
from neo_local.jobs.joblog import JobLog
from neo_local.jobs.states import TERMINAL, IllegalTransition, Status
from neo_local.jobs.store import JobGone, JobRecord, JobStore, utcnow

POLL_S = 0.1                 # how often the worker is polled
STORE_POLL_S = 0.5           # how often the store is read for a stop request
STOP_GRACE_S = 5.0           # SIGTERM, then SIGKILL after this long
FINISH_GRACE_S = 10.0        # a worker that reported its result must exit within this


def finish(store: JobStore, record: JobRecord, status: Status, reason: str | None = None,
           log: JobLog | None = None) -> bool:
    """End the job unless something else ended it first. True if this call ended it. The job's
    scratch directory goes first (a killed worker leaves it), so whoever sees the outcome finds
    it cleaned up."""
    shutil.rmtree(record.paths.scratch, ignore_errors=True)
    try:
        store.transition(record.name, status, job_id=record.job_id, end_time=utcnow(),
                         failure_reason=reason if status == Status.FAILED else None)
    except (IllegalTransition, JobGone):
        return False
    if log is not None:
        log.write(f"Job {status}" + (f": {reason}" if reason else ""))
    return True


class _Signalled(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Supervisor:
    def __init__(self, store: JobStore, record: JobRecord) -> None:
        self.store = store
        self.record = record
        self.log = JobLog(record.paths.log)
        self.worker: subprocess.Popen[bytes] | None = None
        self.worker_started: float | None = None

    # -- the worker ----------------------------------------------------------------------

    def _start_worker(self) -> None:
        paths = self.record.paths
        self.worker = launch.spawn("neo_local.jobs.worker", [self.record.name, self.record.job_id],
                                   paths.log, paths.root)
        self.worker_started = processes.create_time(self.worker.pid)
        self.store.update(self.record.name, job_id=self.record.job_id,
                          worker_pid=self.worker.pid, worker_started=self.worker_started)

    def _kill_worker(self, grace_s: float = 0.0) -> None:
        """SIGTERM then (after ``grace_s``) SIGKILL to the worker's process group; reap it."""
        worker = self.worker
        if worker is None:
            return
        if grace_s > 0 and worker.poll() is None:
            processes.signal_group(worker.pid, self.worker_started, signal.SIGTERM)
            try:
                worker.wait(grace_s)
            except subprocess.TimeoutExpired:
                pass
        # SIGKILL the group even when the leader is gone: its children may remain.
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        worker.wait()

    # -- the job -------------------------------------------------------------------------

    def run(self) -> int:
        name, job_id = self.record.name, self.record.job_id
        try:
            self.record = self.store.transition(name, Status.INPROGRESS, job_id=job_id,
                                                expect=Status.STARTING, start_time=utcnow())
        except IllegalTransition:
            current = self.store.get(name)
            if current is not None and current.status == Status.STOPPING:
                finish(self.store, current, Status.STOPPED, log=self.log)
            return 0
        max_runtime = int(self.record.request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
        self.log.write(f"Job {name} is INPROGRESS (supervisor pid {os.getpid()}, "
                       f"MaxRuntimeInSeconds={max_runtime})")
        self._start_worker()
        assert self.worker is not None
        self.log.write(f"Worker started (pid {self.worker.pid})")
        deadline = time.monotonic() + max_runtime
        next_store_check = 0.0
        reported_at: float | None = None
        while self.worker.poll() is None:
            now = time.monotonic()
            if reported_at is not None:
                if now - reported_at > FINISH_GRACE_S:
                    self.log.write("The worker reported its result but did not exit; killing it.")
                    self._kill_worker()
                    break
            elif now >= deadline:
                self._kill_worker()
                finish(self.store, self.record, Status.FAILED, _timeout_reason(max_runtime), self.log)
                return 0
            if now >= next_store_check:
                next_store_check = now + STORE_POLL_S
                current = self.store.get(name)
                if current is None or current.job_id != job_id:
                    self.log.write("The job was deleted; killing its worker.")
                    self._kill_worker()
                    return 0
                if current.status == Status.STOPPING:
                    self.log.write("Stop requested: sending SIGTERM to the worker.")
                    self._kill_worker(STOP_GRACE_S)
                    finish(self.store, current, Status.STOPPED, log=self.log)
                    return 0
                if current.status in TERMINAL and reported_at is None:
                    reported_at = now
            time.sleep(POLL_S)
        returncode = self.worker.wait()
        # Its children may outlive it (a compiler it spawned, say).
        try:
            os.killpg(self.worker.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        current = self.store.get(name)
        if current is None or current.job_id != job_id or current.status in TERMINAL:
            return 0
        if current.status == Status.STOPPING:
            finish(self.store, current, Status.STOPPED, log=self.log)
            return 0
        finish(self.store, current, Status.FAILED, _crash_reason(returncode, self.record), self.log)
        return 0

    def shutdown(self, signum: int) -> None:
        """The supervisor itself was told to end: take the worker with it and say so."""
        self._kill_worker()
        sig = signal.Signals(signum).name
        finish(self.store, self.record, Status.FAILED, internal_error(
            f"The job's supervisor process was terminated ({sig}) and ended the job. "
            f"See the job log {self.record.paths.log} and run the job again.").reason, self.log)


def _timeout_reason(max_runtime: int) -> str:
    return client_error(
        "TimeOut",
        f"The compilation did not finish within StoppingCondition.MaxRuntimeInSeconds={max_runtime} "
        "seconds and was stopped. Raise MaxRuntimeInSeconds and run the job again.",
    ).reason


def _crash_reason(returncode: int, record: JobRecord) -> str:
    how = processes.describe_exit(returncode)
    if returncode == -signal.SIGKILL:
        how += "; the system may have run out of memory"
    elif returncode == 0:
        how = "it exited without reporting a result"
    return internal_error(
        f"The compilation worker ended unexpectedly ({how}). See the job log {record.paths.log}."
    ).reason


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m neo_local.jobs.supervisor <compilation-job-name>", file=sys.stderr)
        return 2
    store = JobStore()
    record = store.get(argv[0])
    if record is None:
        print(f"no compilation job named {argv[0]}", file=sys.stderr)
        return 1
    try:
        record = store.update(record.name, job_id=record.job_id, supervisor_pid=os.getpid(),
                              supervisor_started=processes.create_time(os.getpid()))
    except JobGone:
        return 1
    supervisor = Supervisor(store, record)

    def on_signal(signum: int, _frame: object) -> None:
        raise _Signalled(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        return supervisor.run()
    except _Signalled as e:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        supervisor.shutdown(e.signum)
        return 128 + e.signum
    except BaseException as e:  # noqa: BLE001 - the job must end, whatever happened here
        import traceback

        supervisor.log.raw(traceback.format_exc())
        supervisor._kill_worker()
        last = (traceback.format_exception_only(e)[-1].strip() or type(e).__name__)
        finish(store, supervisor.record, Status.FAILED,
               internal_error(f"The job's supervisor failed: {last}").reason, supervisor.log)
        return 1
    finally:
        shutil.rmtree(record.paths.scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
