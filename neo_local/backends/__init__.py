"""Backends build an ImportedModel for a TargetSpec into the files of an artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from neo_local.frontends.base import ImportedModel
from neo_local.targets.spec import TargetSpec

Build = Callable[[ImportedModel, TargetSpec, Path], "BuiltModel"]


def get_backend(name: str) -> Build:
    """The build function for a backend name (TargetSpec.backend)."""
    if name == "tvm":
        from neo_local.backends.tvm_relax import build

        return build
    raise KeyError(f"no backend named {name!r}")


from neo_local.backends.base import BuiltModel  # noqa: E402

__all__ = ["BuiltModel", "get_backend"]
