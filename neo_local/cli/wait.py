"""``create-compilation-job --wait``: poll the job, show its log and status changes."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, TextIO

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "STOPPED"})

Describe = Callable[..., dict[str, Any]]
ReadLog = Callable[[str, int], "tuple[str, int]"]


def default_read_log() -> ReadLog | None:
    """``neo_local.api.service.read_job_log`` when the service provides it."""
    from neo_local.api import service

    return getattr(service, "read_job_log", None)


def wait_for_job(name: str, describe: Describe, read_log: ReadLog | None, *,
                 interval: float = 1.0, err: TextIO | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Poll DescribeCompilationJob until the job ends; return the last description.

    New log text (from ``read_log(name, offset)``) and status changes go to ``err``.
    """
    err = err or sys.stderr
    offset, last_status = 0, None
    while True:
        description = describe(CompilationJobName=name)
        if read_log is not None:
            try:
                text, offset = read_log(name, offset)
            except Exception as e:  # the job's log is a convenience; say so and carry on
                err.write(f"[neo-local] cannot read the log of {name}: {e}\n")
                read_log = None
            else:
                if text:
                    err.write(text)
        status = description.get("CompilationJobStatus")
        if status != last_status:
            err.write(f"[neo-local] {name}: {status}\n")
            last_status = status
        if status in TERMINAL_STATUSES:
            reason = description.get("FailureReason")
            if reason and status != "COMPLETED":
                err.write(f"[neo-local] FailureReason: {reason}\n")
            err.flush()
            return description
        err.flush()
        sleep(interval)
