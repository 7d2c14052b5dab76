"""Read model archives from and write artifacts to plain paths, file:// and s3:// URIs.

(Stub: the jobs helper implements it.)
"""

from __future__ import annotations

from pathlib import Path


def download(uri: str, dest_dir: Path) -> Path:
    """Copy the object at ``uri`` into ``dest_dir``; return the local file.
    Raises JobFailure (ClientError: InputConfiguration: ...) when it cannot be read."""
    raise NotImplementedError


def upload(local_file: Path, location: str) -> str:
    """Put ``local_file`` under ``location`` (a prefix) keeping its file name; return its URI.
    Raises JobFailure (ClientError: OutputConfiguration: ...) when it cannot be written."""
    raise NotImplementedError
