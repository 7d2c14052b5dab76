"""Lenient JSON for the JSON-in-a-string fields (CompilerOptions, DataInputConfig).

SageMaker's own documentation shows ``{'mattr': ['+neon']}`` (single quotes), so a value
that is not JSON is read as a Python literal of the same shape before giving up.
"""

from __future__ import annotations

import ast
import json
from typing import Any

_PYTHON_LITERAL_ERRORS = (ValueError, SyntaxError, TypeError, MemoryError, RecursionError)


def parse_jsonish(text: str, field: str) -> Any:
    """Parse ``text`` as JSON, or else as the single-quoted Python-literal form.

    Returns plain JSON values (dict with str keys, list, str, int, float, bool, None).
    Raises ValueError naming ``field`` and what is wrong.
    """
    if not isinstance(text, str):
        raise ValueError(f"{field} must be a string holding JSON, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"{field} is empty; it must hold JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        json_error = e
    except RecursionError:
        raise ValueError(f"{field} is nested too deeply") from None
    try:
        value = ast.literal_eval(text.strip())
    except _PYTHON_LITERAL_ERRORS:
        raise ValueError(
            f"{field} is not valid JSON ({json_error}). Write it as JSON, or in the "
            "single-quoted form Python prints, e.g. {'key': ['value', 1]}"
        ) from None
    return _as_json(value, field)


def _as_json(value: Any, field: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_as_json(v, field) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{field} has a non-string key {k!r}; JSON object keys are strings")
            out[k] = _as_json(v, field)
        return out
    raise ValueError(f"{field} holds a {type(value).__name__} ({value!r}), which JSON cannot express")


def describe_kind(value: Any) -> str:
    """'a JSON object', 'a JSON list', ... for messages."""
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON list"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, (int, float)):
        return "a JSON number"
    return "JSON null"
