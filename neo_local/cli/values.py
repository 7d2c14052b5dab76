"""Command-line values -> request values, with the AWS CLI's own machinery.

Each request member becomes an ``awscli.arguments.CLIArgument`` built from the botocore
shape, and values go through the same two steps as in ``aws``: ``load-cli-arg`` (``file://``
and ``fileb://`` values) and ``process-cli-arg`` (awscli's ``ParamShorthandParser``, then
``unpack_cli_arg`` for JSON and scalars). Integers are converted per the model by awscli.

One addition to awscli: inside shorthand, a string member may hold unquoted JSON
(``DataInputConfig={"data":[1,3,224,224]}``, which is what the shell leaves of
``DataInputConfig='{"data":[1,3,224,224]}'``). awscli rejects that; here, only when awscli's
parser fails, such a value is quoted and parsed again.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Mapping

import yaml
from awscli.argprocess import ParamError, ParamShorthandParser, unpack_argument
from awscli.arguments import CLIArgument, ListArgument
from awscli.paramfile import LOCAL_PREFIX_MAP, URIArgumentHandler, get_paramfile
from awscli.shorthand import ShorthandParseError, ShorthandParseSyntaxError
from botocore import xform_name
from botocore.hooks import HierarchicalEmitter, first_non_none_response
from botocore.model import Shape
from botocore.utils import ArgumentGenerator, parse_timestamp

from neo_local.api import service_model

SKELETON_KINDS = ("input", "yaml-input", "output")


class UsageError(Exception):
    """A mistake on the command line: printed with the usage line, exit status 252."""


class _Hooks:
    """The part of an awscli session that argument processing uses."""

    def __init__(self) -> None:
        self.emitter = HierarchicalEmitter()
        self.emitter.register("load-cli-arg", URIArgumentHandler(dict(LOCAL_PREFIX_MAP)))
        self.emitter.register("process-cli-arg", _ShorthandParser())

    def emit_first_non_none_response(self, event_name: str, **kwargs: Any) -> Any:
        return first_non_none_response(self.emitter.emit(event_name, **kwargs))


class _ShorthandParser(ParamShorthandParser):
    """awscli's parser, retried with JSON-looking string members quoted when it fails."""

    def _parse_as_shorthand(self, cli_argument, value, service_id, operation_name):
        try:
            return super()._parse_as_shorthand(cli_argument, value, service_id, operation_name)
        except ParamError as error:
            model = cli_argument.argument_model
            if isinstance(value, list):
                quoted: Any = [quote_json_members(v, model) for v in value]
            else:
                quoted = quote_json_members(value, model)
            if quoted == value:
                raise _clearer(error) from None
            try:
                return super()._parse_as_shorthand(cli_argument, quoted, service_id, operation_name)
            except ParamError:
                raise _clearer(error) from None


def _clearer(error: ParamError) -> ParamError:
    """awscli 1.45 leaves '{self._error_location()}' unformatted in syntax errors."""
    cause = error.__context__
    if isinstance(cause, ShorthandParseSyntaxError):
        message = (f"Expected: '{cause.expected}', received: '{cause.actual}' for input:\n"
                   f"{cause._error_location()}")
        return ParamError(error.cli_name, message)
    return error


def quote_json_members(text: str, model: Shape) -> str:
    """Wrap the unquoted JSON value of each top-level string member in single quotes."""
    if not isinstance(text, str):
        return text
    shape = model.member if model.type_name == "list" else model
    if shape.type_name != "structure":
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = i
        while j < n and text[j] not in "=,{[\"'":
            j += 1
        key = text[i:j].strip()
        if j < n and text[j] == "=" and j + 1 < n and text[j + 1] in "{[":
            member = shape.members.get(key)
            end = _balanced_end(text, j + 1)
            if member is not None and member.type_name == "string" and end is not None:
                raw = text[j + 1:end]
                out.append(text[i:j + 1] + "'" + raw.replace("\\", "\\\\").replace("'", "\\'") + "'")
                i = end
                continue
        # copy up to the next top-level comma
        end = _next_top_level_comma(text, i)
        out.append(text[i:end])
        i = end
        if i < n:
            out.append(",")
            i += 1
    return "".join(out)


def _scan(text: str, start: int, stop_at_comma: bool) -> int | None:
    """Walk ``text`` from ``start`` respecting quotes and brackets. With ``stop_at_comma``,
    return the index of the next comma outside brackets (or the end); otherwise the index
    just past the bracket group opening at ``start`` (None if it never closes)."""
    depth, i, quote = 0, start, None
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0 and not stop_at_comma:
                return i + 1
        elif ch == "," and depth <= 0 and stop_at_comma:
            return i
        i += 1
    return len(text) if stop_at_comma else None


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the bracket group opening at ``start`` (quotes respected)."""
    return _scan(text, start, stop_at_comma=False)


def _next_top_level_comma(text: str, start: int) -> int:
    return _scan(text, start, stop_at_comma=True)  # type: ignore[return-value]


_HOOKS = _Hooks()


def cli_arguments(operation: str) -> dict[str, CLIArgument]:
    """awscli argument objects for every member of the operation's input, by member name."""
    op_model = service_model.operation_model(operation)
    shape = op_model.input_shape
    arguments: dict[str, CLIArgument] = {}
    for name, member in shape.members.items():
        cls = ListArgument if member.type_name == "list" else CLIArgument
        arguments[name] = cls(
            name=xform_name(name, "-"),
            argument_model=member,
            operation_model=op_model,
            event_emitter=_HOOKS.emitter,
            is_required=name in shape.required_members,
            serialized_name=name,
        )
    return arguments


def unpack(operation: str, argument: CLIArgument, raw: Any, params: dict[str, Any]) -> None:
    """Convert one command-line value as awscli does and add it to ``params``."""
    try:
        value = unpack_argument(_HOOKS, service_model.SERVICE_NAME, service_model.cli_name(operation),
                                argument, raw, None)
        argument.add_to_params(params, value)
    except ParamError as e:
        raise UsageError(str(e)) from None
    except ShorthandParseError as e:
        raise UsageError(f"Error parsing parameter '{argument.cli_name}': {e}") from None
    except (ValueError, TypeError, IndexError) as e:
        raise UsageError(f"Error parsing parameter '{argument.cli_name}': {e}") from None
    key = argument._serialized_name
    if key in params:
        params[key] = convert_timestamps(argument.argument_model, params[key], argument.cli_name)


def convert_timestamps(shape: Shape, value: Any, cli_name: str) -> Any:
    """Timestamp members as timezone-aware datetimes (awscli leaves them as text)."""
    kind = shape.type_name
    if kind == "timestamp" and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            parsed = parse_timestamp(value)
        except (ValueError, TypeError, OverflowError) as e:
            raise UsageError(f"Error parsing parameter '{cli_name}': invalid timestamp {value!r}: {e}") from None
        # botocore sends a naive time as UTC; say so in the value
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=_dt.timezone.utc)
    if kind == "structure" and isinstance(value, dict):
        return {k: (convert_timestamps(shape.members[k], v, cli_name) if k in shape.members else v)
                for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [convert_timestamps(shape.member, v, cli_name) for v in value]
    return value


def load_cli_input(text: str, fmt: str) -> dict[str, Any]:
    """The value of --cli-input-json / --cli-input-yaml (literal or file://path)."""
    option = f"--cli-input-{fmt}"
    try:
        loaded = get_paramfile(text, LOCAL_PREFIX_MAP)
    except Exception as e:  # awscli's ResourceLoadingError and friends
        raise UsageError(f"Error parsing parameter '{option}': {e}") from None
    source = text if loaded is None else loaded
    try:
        data = json.loads(source) if fmt == "json" else yaml.safe_load(source)
    except (ValueError, yaml.YAMLError) as e:
        kind = "JSON" if fmt == "json" else "YAML"
        raise UsageError(f"Error parsing parameter '{option}': Invalid {kind}: {e}\n"
                         f"{kind} received: {source}") from None
    if not isinstance(data, dict):
        raise UsageError(f"Error parsing parameter '{option}': the input must be an object of "
                         f"request parameters, got {type(data).__name__}")
    return _plain_dates(data)


def _plain_dates(value: Any) -> Any:
    """YAML reads 2024-05-01 as a date; requests carry datetimes."""
    if isinstance(value, dict):
        return {k: _plain_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_dates(v) for v in value]
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc)
    return value


def input_skeleton(operation: str, kind: str) -> str:
    """What ``--generate-cli-skeleton input|yaml-input`` prints (as awscli does)."""
    shape = service_model.input_shape(operation)
    skeleton = _plain(ArgumentGenerator().generate_skeleton(shape))
    if kind == "yaml-input":
        return yaml.safe_dump(skeleton, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return json.dumps(skeleton, indent=4, default=_iso) + "\n"


def output_skeleton(operation: str) -> dict[str, Any]:
    """A sample response (``--generate-cli-skeleton output``), as awscli's stubbed call."""
    shape = service_model.output_shape(operation)
    if shape is None:
        return {}
    return _plain(ArgumentGenerator(use_member_names=True).generate_skeleton(shape))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _iso(value: Any) -> str:
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
