"""Validate API requests against the SageMaker service model shipped in botocore.

(Stub: the API helper replaces this with the full implementation.)
"""

from __future__ import annotations

from typing import Any, Mapping


def validate_create(request: Mapping[str, Any]) -> None:
    """Raise ValidationException naming the field and the rule a CreateCompilationJob
    request breaks (types, required members, enums, patterns, lengths, ranges, and the
    cross-field rules of the service)."""


def validate_operation(operation: str, request: Mapping[str, Any]) -> None:
    """The same for Describe/List/Stop/DeleteCompilationJob requests."""
