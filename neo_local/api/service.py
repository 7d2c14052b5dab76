"""The API operations (stub; the jobs helper implements them)."""

from __future__ import annotations

from typing import Any


def create_compilation_job(**request: Any) -> dict[str, Any]:
    raise NotImplementedError


def describe_compilation_job(**request: Any) -> dict[str, Any]:
    raise NotImplementedError


def list_compilation_jobs(**request: Any) -> dict[str, Any]:
    raise NotImplementedError


def stop_compilation_job(**request: Any) -> dict[str, Any]:
    raise NotImplementedError


def delete_compilation_job(**request: Any) -> dict[str, Any]:
    raise NotImplementedError
