"""The job's log file: timestamped lines appended by the service, supervisor and worker."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path


def stamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobLog:
    """Appends timestamped lines to one job's log. Never raises: a log is not worth a job."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, message: str) -> None:
        prefix = stamp()
        lines = str(message).rstrip("\n").split("\n") or [""]
        text = "".join(f"{prefix} {line}\n" for line in lines)
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text)
        except OSError:
            pass

    __call__ = write

    def raw(self, text: str) -> None:
        """Append text as it is (a traceback, say), ending it with a newline."""
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text if text.endswith("\n") else text + "\n")
        except OSError:
            pass


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
