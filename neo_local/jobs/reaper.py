"""Never INPROGRESS forever: end jobs whose supervisor process is gone.

The API calls ``reconcile`` on the jobs it reads. A job that is not yet terminal but whose
supervisor no longer runs (killed, machine rebooted, the launch never happened) is ended:
STOPPED if a stop was requested, FAILED otherwise, and its worker, if still there, is killed.
"""

from __future__ import annotations

import signal
from datetime import timedelta

from neo_local.jobs import processes
from neo_local.jobs.states import TERMINAL, IllegalTransition, Status
from neo_local.jobs.store import JobGone, JobRecord, JobStore, utcnow

# How long a job may sit in STARTING with no supervisor recorded (the launch is in progress).
STARTUP_GRACE = timedelta(seconds=60)


def reconcile(store: JobStore, record: JobRecord) -> JobRecord | None:
    """The job as it really is: ended if its supervisor is gone. None if it was deleted meanwhile."""
    if record.status in TERMINAL:
        return record
    if record.supervisor_pid is None:
        if utcnow() - record.creation_time < STARTUP_GRACE:
            return record
        reason = (
            "InternalError: The job's supervisor process never started (the process that created "
            f"the job may have ended first). See the job log {record.paths.log} and run the job again."
        )
    elif processes.is_alive(record.supervisor_pid, record.supervisor_started):
        return record
    else:
        reason = (
            f"InternalError: The job's supervisor process (pid {record.supervisor_pid}) is gone, "
            "so the job was ended (was it killed, or the machine restarted?). "
            f"See the job log {record.paths.log} and run the job again."
        )
    fresh = store.get(record.name)
    if fresh is None or fresh.job_id != record.job_id:
        return fresh
    if fresh.status in TERMINAL:  # the supervisor finished the job before it went
        return fresh
    processes.signal_group(fresh.worker_pid, fresh.worker_started, signal.SIGKILL)
    stopping = fresh.stop_requested or fresh.status == Status.STOPPING
    try:
        return store.transition(
            fresh.name, Status.STOPPED if stopping else Status.FAILED, job_id=fresh.job_id,
            expect=fresh.status, end_time=utcnow(), failure_reason=None if stopping else reason,
        )
    except IllegalTransition:
        return store.get(fresh.name)
    except JobGone:
        return None
