"""Neo's rules for which file in an unpacked archive is the model."""

from __future__ import annotations

from pathlib import Path

from neo_local.api.errors import client_error


def archive_files(model_dir: Path) -> list[Path]:
    """Regular files under ``model_dir``, skipping macOS and hidden metadata files."""
    return sorted(
        p for p in model_dir.rglob("*")
        if p.is_file() and not any(part.startswith((".", "__MACOSX")) for part in p.relative_to(model_dir).parts)
    )


def find_model_file(model_dir: Path, suffixes: tuple[str, ...], framework: str) -> Path:
    """Exactly one file with one of ``suffixes``; otherwise a ClientError naming what was found."""
    files = archive_files(model_dir)
    matches = [p for p in files if p.name.lower().endswith(suffixes)]
    kinds = suffixes[0] if len(suffixes) == 1 else f"{', '.join(suffixes[:-1])} or {suffixes[-1]}"
    if len(matches) == 1:
        return matches[0]
    if not matches:
        listing = ", ".join(str(p.relative_to(model_dir)) for p in files[:20]) or "nothing"
        raise client_error(
            "InputConfiguration",
            f"No {kinds} file found in the archive for {framework} models. The archive contains: {listing}",
        )
    names = ", ".join(str(p.relative_to(model_dir)) for p in matches)
    raise client_error(
        "InputConfiguration",
        f"Exactly one {kinds} file is allowed for {framework} models, found {len(matches)}: {names}",
    )
