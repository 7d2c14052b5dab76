"""Unpack untrusted model archives safely: gzip tar only, no path escapes, no links or
devices, bounded size and member count."""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from neo_local.api.errors import client_error

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class UnpackLimits:
    max_bytes: int = int(os.environ.get("NEO_LOCAL_MAX_UNPACKED_BYTES", 16 * 2**30))
    max_members: int = 100_000


def unpack_model_archive(archive: Path, dest: Path, limits: UnpackLimits = UnpackLimits()) -> Path:
    """Extract ``archive`` into ``dest`` and return ``dest``; ClientError for anything unsafe."""
    with open(archive, "rb") as f:
        if f.read(2) != _GZIP_MAGIC:
            raise client_error(
                "InputConfiguration",
                f"{archive.name} is not a gzip-compressed tar archive. S3Uri must point to a single "
                ".tar.gz file, e.g. made with: tar -czf model.tar.gz model.onnx",
            )
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = _checked_members(tar, limits)
            dest.mkdir(parents=True, exist_ok=True)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise client_error("InputConfiguration", f"{archive.name} could not be unpacked: {exc}") from exc
    return dest


def _checked_members(tar: tarfile.TarFile, limits: UnpackLimits) -> list[tarfile.TarInfo]:
    members, total = [], 0
    for member in tar:
        if len(members) >= limits.max_members:
            raise client_error("InputConfiguration", f"The archive has more than {limits.max_members} entries")
        name = member.name
        if name.startswith(("/", "\\")) or ".." in Path(name).parts:
            raise client_error("InputConfiguration", f"The archive entry '{name}' points outside the archive")
        if member.issym() or member.islnk():
            raise client_error("InputConfiguration", f"The archive entry '{name}' is a link; links are not allowed")
        if not (member.isfile() or member.isdir()):
            raise client_error("InputConfiguration", f"The archive entry '{name}' is not a regular file or folder")
        total += member.size
        if total > limits.max_bytes:
            raise client_error(
                "InputConfiguration",
                f"The archive unpacks to more than {limits.max_bytes} bytes (set NEO_LOCAL_MAX_UNPACKED_BYTES to raise the limit)",
            )
        members.append(member)
    return members
