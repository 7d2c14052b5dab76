"""The job's log file: timestamped lines appended by the service, supervisor and worker."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path


def stamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobLog:
    """Appends timestamped lines to one job's log. Never raises: a log is not worth a job.

    Only ``start`` creates the file: a line written after the job was deleted (by its exiting
    processes) is dropped, not left in a log file of its own that nothing removes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def start(cls, path: Path, message: str) -> "JobLog":
        """A new job's log, created with its first line."""
        log = cls(path)
        log._append(f"{stamp()} {message}\n", os.O_CREAT)
        return log

    def write(self, message: str) -> None:
        prefix = stamp()
        lines = str(message).rstrip("\n").split("\n") or [""]
        self._append("".join(f"{prefix} {line}\n" for line in lines))

    __call__ = write

    def raw(self, text: str) -> None:
        """Append text as it is (a traceback, say), ending it with a newline."""
        self._append(text if text.endswith("\n") else text + "\n")

    def _append(self, text: str, flags: int = 0) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | flags, 0o644)
        except OSError:
            return
        try:
            os.write(fd, text.encode("utf-8"))
        except OSError:
            pass
        finally:
            os.close(fd)


def read(path: Path, offset: int = 0, partial: bool = False) -> tuple[str, int]:
    """The complete lines written since byte ``offset``, and the offset after them.

    ``partial``: also a last line without its newline (when nothing more will be written)."""
    offset = max(0, int(offset))
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return "", offset
    end = len(data) - 1 if partial else data.rfind(b"\n")
    if end < 0:
        return "", offset
    return data[: end + 1].decode("utf-8", errors="replace"), offset + end + 1
