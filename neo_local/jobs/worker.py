"""The per-job worker: ``python -m neo_local.jobs.worker <job-name> [<job-id>]``.

Started by the job's supervisor. Loads the request from the store, runs the compilation
pipeline in a scratch directory, streams progress to the job's log and records the outcome:
COMPLETED with the artifact, or FAILED with the FailureReason. The scratch directory is
removed at the end.

``NEO_LOCAL_PIPELINE=module:function`` names another entry point with the signature of
``neo_local.pipeline.run_compilation`` (default), for embedding or testing the job machinery.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import sys
import traceback
from typing import Callable

from neo_local.api.errors import JobFailure, internal_error
from neo_local.api.requests import CompilationRequest
from neo_local.jobs.joblog import JobLog
from neo_local.jobs.states import IllegalTransition, Status
from neo_local.jobs.store import JobGone, JobRecord, JobStore, utcnow

PIPELINE_ENV = "NEO_LOCAL_PIPELINE"
DEFAULT_PIPELINE = "neo_local.pipeline:run_compilation"


def load_pipeline() -> Callable:
    spec = os.environ.get(PIPELINE_ENV) or DEFAULT_PIPELINE
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "run_compilation")


def _record(store: JobStore, record: JobRecord, status: Status, log: JobLog, **fields: object) -> None:
    reason = fields.get("failure_reason")
    try:
        store.transition(record.name, status, job_id=record.job_id, end_time=utcnow(), **fields)
    except (IllegalTransition, JobGone) as e:
        log.write(f"The outcome ({status}) was not recorded: {e}")
        return
    log.write(f"Job {status}" + (f": {reason}" if reason else ""))


def run(store: JobStore, record: JobRecord) -> int:
    log = JobLog(record.paths.log)
    workdir = record.paths.scratch
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        request = CompilationRequest.from_api(record.request)
        result = load_pipeline()(request, workdir, log.write)
    except JobFailure as e:
        status, fields = Status.FAILED, {"failure_reason": e.reason}
    except Exception as e:  # noqa: BLE001 - any other fault is ours
        log.raw(traceback.format_exc())
        last = " ".join(line.strip() for line in traceback.format_exception_only(e)[-1].splitlines())
        if isinstance(e, MemoryError):
            last = f"The compilation ran out of memory ({last or 'MemoryError'})"
        status = Status.FAILED
        fields = {"failure_reason": internal_error(f"{last} (the job log has the traceback: {log.path})").reason}
    else:  # result.messages were already reported through progress; they are kept with the job
        status, fields = Status.COMPLETED, {
            "artifact_uri": result.artifact_uri, "artifact_digest": result.artifact_digest,
            "derived_information": dict(result.derived_information), "messages": tuple(result.messages)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # recorded once the scratch directory is gone: a caller that sees the outcome finds it cleaned up
    _record(store, record, status, log, **fields)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (1, 2):
        print("usage: python -m neo_local.jobs.worker <compilation-job-name> [<job-id>]", file=sys.stderr)
        return 2
    store = JobStore()
    record = store.get(argv[0])
    if record is None or (len(argv) == 2 and record.job_id != argv[1]):
        print(f"no such compilation job: {' '.join(argv)}", file=sys.stderr)
        return 1

    def on_sigterm(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through run()'s cleanup

    signal.signal(signal.SIGTERM, on_sigterm)
    return run(store, record)


if __name__ == "__main__":
    sys.exit(main())
