"""Validate API requests against the SageMaker service model shipped in botocore.

Every constraint comes from the model (required members, types, enums, patterns, string and
list lengths, integer ranges); messages follow the service's wording, e.g.::

    1 validation error detected: Value 'ml_c99' at 'outputConfig.targetDevice' failed to
    satisfy constraint: Member must satisfy enum value set: [lambda, ml_m4, ...]

On top of the model come CreateCompilationJob's cross-field rules (exactly one of InputConfig
and ModelPackageVersionArn, exactly one of TargetDevice and TargetPlatform, CompilerOptions
and DataInputConfig hold JSON). All problems are collected into one ValidationException.

Local storage is allowed where the model says S3: an ``S3Uri`` may also be a ``file://`` URI
or a plain path.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
import unicodedata
from typing import Any, Mapping

from botocore.model import Shape
from botocore.utils import parse_timestamp

from neo_local.api import service_model
from neo_local.api.errors import ValidationException
from neo_local.api.jsonish import describe_kind, parse_jsonish

#: Devices whose CompilerOptions may be a JSON string of Neuron compiler flags.
NEURON_DEVICES = frozenset({"ml_inf1", "ml_inf2", "ml_trn1"})

_MAX_SHOWN = 256


def validate_create(request: Mapping[str, Any]) -> None:
    """Raise ValidationException naming the field and the rule a CreateCompilationJob
    request breaks (types, required members, enums, patterns, lengths, ranges, and the
    cross-field rules of the service)."""
    errors = request_errors("CreateCompilationJob", request)
    _raise_if(errors, "CreateCompilationJob")


def validate_operation(operation: str, request: Mapping[str, Any]) -> None:
    """The same for Describe/List/Stop/DeleteCompilationJob requests (and Create)."""
    name = service_model.operation_name(operation)
    _raise_if(request_errors(name, request), name)


def request_errors(operation: str, request: Mapping[str, Any]) -> list[str]:
    """Every problem with ``request`` as a list of messages (empty when it is valid)."""
    name = service_model.operation_name(operation)
    if not isinstance(request, Mapping):
        return [f"The request must be a mapping of parameter names to values, got {type(request).__name__}"]
    errors: list[str] = []
    _check_structure(service_model.input_shape(name), request, "", errors)
    if name == "CreateCompilationJob":
        errors.extend(_create_rules(request))
    return errors


def format_errors(errors: list[str]) -> str:
    n = len(errors)
    return f"{n} validation error{'s' if n != 1 else ''} detected: " + "; ".join(errors)


def _raise_if(errors: list[str], operation: str) -> None:
    if errors:
        raise ValidationException(format_errors(errors), operation)


# --- the shape walk ---------------------------------------------------------------------

def _member_path(parent: str, member: str) -> str:
    name = member[:1].lower() + member[1:]
    return f"{parent}.{name}" if parent else name


def _show(value: Any) -> str:
    """A value as the service's messages show it: Value 'x', Value null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_plain(v) for v in value) + "]"
    else:
        text = _plain(value)
    if len(text) > _MAX_SHOWN:
        text = f"{text[:_MAX_SHOWN]}... ({len(text)} characters)"
    return f"'{text}'"


def _plain(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    if value is None:
        return "null"
    return str(value)


def _fail(errors: list[str], value: Any, path: str, rule: str) -> None:
    errors.append(f"Value {_show(value)} at '{path}' failed to satisfy constraint: {rule}")


def _check(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    checker = _CHECKERS.get(kind)
    if checker is None:  # a type these operations do not use (blob, document, ...)
        return
    checker(shape, value, path, errors)


def _check_structure(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, Mapping):
        _fail(errors, value, path, "Member must be a structure (a mapping of member names to values)")
        return
    members = shape.members
    for key in value:
        if key not in members:
            where = path or "input"
            errors.append(
                f"Unknown parameter in {where}: \"{key}\", must be one of: {', '.join(members)}"
            )
    for name, member_shape in members.items():
        member_value = value.get(name)
        member_path = _member_path(path, name)
        if member_value is None:
            if name in shape.required_members:
                errors.append(
                    f"Value null at '{member_path}' failed to satisfy constraint: Member must not be null"
                )
            continue
        _check(member_shape, member_value, member_path, errors)


def _check_list(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, (list, tuple)):
        _fail(errors, value, path, "Member must be a list")
        return
    _check_length(shape, value, path, errors)
    for i, item in enumerate(value, start=1):
        item_path = f"{path}.{i}.member"
        if item is None:
            errors.append(f"Value null at '{item_path}' failed to satisfy constraint: Member must not be null")
            continue
        _check(shape.member, item, item_path, errors)


def _check_map(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, Mapping):
        _fail(errors, value, path, "Member must be a map")
        return
    _check_length(shape, value, path, errors)
    for key, item in value.items():
        _check(shape.key, key, f"{path}.{key}.key", errors)
        _check(shape.value, item, f"{path}.{key}.value", errors)


def _check_string(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        _fail(errors, value, path, "Member must be a string")
        return
    _check_length(shape, value, path, errors)
    enum = shape.enum
    if enum and value not in enum:
        _fail(errors, value, path, f"Member must satisfy enum value set: [{', '.join(enum)}]")
    pattern = shape.metadata.get("pattern")
    if pattern is not None and not _matches(pattern, value):
        if shape.name == "S3Uri" and _is_local_uri(value):
            return
        rule = f"Member must satisfy regular expression pattern: {pattern}"
        if shape.name == "S3Uri":
            rule += " (or be a local path or a file:// URI)"
        _fail(errors, value, path, rule)


def _check_integer(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(errors, value, path, "Member must be an integer")
        return
    _check_range(shape, value, path, errors)


def _check_number(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(errors, value, path, "Member must be a number")
        return
    _check_range(shape, value, path, errors)


def _check_boolean(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, bool):
        _fail(errors, value, path, "Member must be a boolean")


def _check_timestamp(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    if isinstance(value, (_dt.datetime, _dt.date)):
        return
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return
    if isinstance(value, str):
        try:
            parse_timestamp(value)
            return
        except (ValueError, TypeError, OverflowError):
            pass
    _fail(errors, value, path, "Member must be a timestamp (ISO 8601, e.g. 2024-05-01T12:00:00Z, or epoch seconds)")


def _check_length(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
    if lo is not None and len(value) < lo:
        _fail(errors, value, path, f"Member must have length greater than or equal to {lo}")
    if hi is not None and len(value) > hi:
        _fail(errors, value, path, f"Member must have length less than or equal to {hi}")


def _check_range(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
    if lo is not None and value < lo:
        _fail(errors, value, path, f"Member must have value greater than or equal to {lo}")
    if hi is not None and value > hi:
        _fail(errors, value, path, f"Member must have value less than or equal to {hi}")


_CHECKERS = {
    "structure": _check_structure,
    "list": _check_list,
    "map": _check_map,
    "string": _check_string,
    "integer": _check_integer,
    "long": _check_integer,
    "float": _check_number,
    "double": _check_number,
    "boolean": _check_boolean,
    "timestamp": _check_timestamp,
}


def _is_local_uri(value: str) -> bool:
    if value.startswith("file://"):
        return len(value) > len("file://")
    return bool(value) and "://" not in value


# --- patterns: the model's regular expressions are Java's, applied to the whole value ---

def _matches(pattern: str, value: str) -> bool:
    compiled = _compile(pattern)
    return compiled is None or compiled.fullmatch(value) is not None


@functools.cache
def _compile(pattern: str) -> re.Pattern[str] | None:
    """Java regex -> Python: \\p{L}-style classes become explicit ranges; \\d, \\w, \\s are
    ASCII as in Java. None for a pattern Python cannot express (then it is not checked)."""
    try:
        return re.compile(_translate_properties(pattern), re.ASCII)
    except (re.error, KeyError):
        return None


_PROPERTY = re.compile(r"\\p\{(\w+)\}")


def _translate_properties(pattern: str) -> str:
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            m = _PROPERTY.match(pattern, i)
            if m:
                ranges = _category_ranges(m.group(1))
                out.append(ranges if in_class else f"[{ranges}]")
                i = m.end()
                continue
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


@functools.cache
def _category_ranges(category: str) -> str:
    """Character-class body for a Unicode general category ('L', 'Lu', 'N', 'Z', ...)."""
    if not (1 <= len(category) <= 2) or not category[0].isupper():
        raise KeyError(category)
    ranges: list[tuple[int, int]] = []
    start = None
    for cp, cat in enumerate(_categories()):
        hit = cat.startswith(category)
        if hit and start is None:
            start = cp
        elif not hit and start is not None:
            ranges.append((start, cp - 1))
            start = None
    if start is not None:
        ranges.append((start, len(_categories()) - 1))
    if not ranges:
        raise KeyError(category)
    return "".join(_esc(a) if a == b else f"{_esc(a)}-{_esc(b)}" for a, b in ranges)


@functools.cache
def _categories() -> tuple[str, ...]:
    """General category of every code point below U+40000. Above that lie only tag
    characters, variation selectors (Cf, Mn), private use (Co) and unassigned (Cn)."""
    category = unicodedata.category
    return tuple(category(chr(cp)) for cp in range(0x40000))


def _esc(cp: int) -> str:
    return f"\\U{cp:08x}"


# --- CreateCompilationJob's cross-field rules -------------------------------------------

def _create_rules(request: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    has_input = request.get("InputConfig") is not None
    has_package = request.get("ModelPackageVersionArn") is not None
    if has_input and has_package:
        errors.append(
            "InputConfig and ModelPackageVersionArn cannot both be specified: "
            "provide exactly one of them"
        )
    elif not has_input and not has_package:
        errors.append("Either InputConfig or ModelPackageVersionArn must be specified")

    out = request.get("OutputConfig")
    device = None
    if isinstance(out, Mapping):
        device = out.get("TargetDevice")
        has_device = device is not None
        has_platform = out.get("TargetPlatform") is not None
        if has_device and has_platform:
            errors.append(
                "OutputConfig.TargetDevice and OutputConfig.TargetPlatform cannot both be "
                "specified: provide exactly one of them"
            )
        elif not has_device and not has_platform:
            errors.append("OutputConfig must specify either TargetDevice or TargetPlatform")
        options = out.get("CompilerOptions")
        if isinstance(options, str):
            _check_compiler_options(options, device, errors)

    inp = request.get("InputConfig")
    if isinstance(inp, Mapping) and isinstance(inp.get("DataInputConfig"), str):
        _check_json_field(
            inp["DataInputConfig"], "DataInputConfig", "inputConfig.dataInputConfig",
            (dict, list), "a JSON object or list, e.g. {\"data\": [1, 3, 224, 224]} or [[1, 3, 224, 224]]",
            errors,
        )
    return errors


def _check_compiler_options(options: str, device: Any, errors: list[str]) -> None:
    if device in NEURON_DEVICES:
        kinds: tuple[type, ...] = (dict, str)
        wanted = (f"a JSON object or, for {device}, a JSON string of Neuron compiler flags, "
                  "e.g. \"\\\"--verbose 1 -O2\\\"\"")
    else:
        kinds = (dict,)
        wanted = "a JSON object, e.g. {\"mcpu\": \"skylake-avx512\"} or {'mattr': ['+neon']}"
    _check_json_field(options, "CompilerOptions", "outputConfig.compilerOptions", kinds, wanted, errors)


def _check_json_field(text: str, field: str, path: str, kinds: tuple[type, ...], wanted: str,
                      errors: list[str]) -> None:
    try:
        value = parse_jsonish(text, field)
    except ValueError as e:
        _fail(errors, text, path, f"Member must be valid JSON: {e}")
        return
    if not isinstance(value, kinds):
        _fail(errors, text, path, f"Member must be {wanted}, not {describe_kind(value)}")
