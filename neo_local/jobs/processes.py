"""Process helpers for supervisors and workers: identity (pid + create time), signals."""

from __future__ import annotations

import os
import signal

import psutil

# psutil's create time has clock-tick resolution; a reused pid differs by far more.
_SAME_PROCESS_TOLERANCE_S = 1.0


def create_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def is_alive(pid: int | None, started: float | None) -> bool:
    """Whether process ``pid`` runs and is the one that was created at ``started``."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started is not None and abs(proc.create_time() - started) > _SAME_PROCESS_TOLERANCE_S:
            return False  # the pid was reused
        return True
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


def signal_group(pid: int | None, started: float | None, sig: int) -> bool:
    """Send ``sig`` to the process group led by ``pid`` if that process is still the same one."""
    if not is_alive(pid, started):
        return False
    try:
        os.killpg(pid, sig)  # type: ignore[arg-type]
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        try:
            os.kill(pid, sig)  # type: ignore[arg-type]
            return True
        except OSError:
            return False


def describe_exit(returncode: int) -> str:
    """'signal 9 SIGKILL' or 'exit status 3'."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"signal {-returncode} {name}"
    return f"exit status {returncode}"
