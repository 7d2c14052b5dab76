"""A blocking compile in the caller's process, for job runners (stub)."""

from __future__ import annotations

from typing import Any


def compile(**request: Any) -> str:  # noqa: A001
    """Run a CreateCompilationJob request to the end in this process; return the artifact URI."""
    raise NotImplementedError
