"""The five API commands, with flags derived from the botocore input shapes.

``build_request(operation, argv)`` turns command-line words into the request dict that
boto3's sagemaker client would take, without calling anything: the CLI and the tests use it.
"""

from __future__ import annotations

import argparse
import json
import re
import textwrap
from typing import Any, Callable

from awscli.argprocess import ParamShorthandDocGen

from neo_local.api import service_model
from neo_local.api.jsonish import parse_jsonish
from neo_local.cli import values
from neo_local.cli.values import UsageError

_DEST = "param__"


def add_operation_parsers(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    for operation in service_model.OPERATIONS:
        model = service_model.operation_model(operation)
        parser = subparsers.add_parser(
            service_model.cli_name(operation),
            help=_first_sentence(model.documentation),
            description=textwrap.fill(_strip_html(model.documentation), width=100),
            parents=parents,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        add_arguments(parser, operation)
        if operation == "CreateCompilationJob":
            parser.add_argument(
                "--wait", action="store_true",
                help="block until the job ends, showing its log and status changes on stderr; "
                     "print the final description; exit 1 unless the job COMPLETED")
            add_tuning_flags(parser)
        parser.set_defaults(operation=operation)


#: the tuning flags of create-compilation-job and the CompilerOptions tuning keys they set
_TUNING_FLAGS = {"tune_trials": "trials", "tune_minutes": "minutes", "tuning_records": "records", "tune_rpc": "rpc"}


def add_tuning_flags(parser: argparse.ArgumentParser) -> None:
    """Shortcuts for CompilerOptions {"tuning": {...}} (they override what --output-config gives)."""
    group = parser.add_argument_group("tuning of the CPU schedules (CompilerOptions tuning)")
    group.add_argument("--tune-trials", type=int, metavar="N",
                       help="tune the CPU kernels with at most N timed candidates over the whole model")
    group.add_argument("--tune-minutes", type=float, metavar="M", help="tune for at most M minutes")
    group.add_argument("--tuning-records", metavar="PATH",
                       help="the tuning records database (JSON lines) to read and add to "
                            "(default ~/.cache/neo-local/tuning/records.jsonl or $NEO_LOCAL_TUNING_RECORDS)")
    group.add_argument("--tune-rpc", metavar="HOST:PORT",
                       help="time the candidates on the device behind this neo-local rpc-server")


def merge_tuning_flags(ns: argparse.Namespace, params: dict[str, Any]) -> None:
    """Write the tuning flags given into OutputConfig.CompilerOptions' "tuning" object."""
    given = {key: getattr(ns, flag) for flag, key in _TUNING_FLAGS.items() if getattr(ns, flag, None) is not None}
    if not given:
        return
    output = params.get("OutputConfig")
    if not isinstance(output, dict):
        raise UsageError("the tuning flags need --output-config")
    text = output.get("CompilerOptions")
    try:
        options = parse_jsonish(text, "CompilerOptions") if text else {}
    except ValueError as e:
        raise UsageError(f"--output-config CompilerOptions: {e}") from None
    if not isinstance(options, dict) or not isinstance(options.get("tuning", {}), dict):
        raise UsageError("the tuning flags need CompilerOptions (and its tuning) to be a JSON object")
    options["tuning"] = {**options.get("tuning", {}), **given}
    output["CompilerOptions"] = json.dumps(options)


def add_arguments(parser: argparse.ArgumentParser, operation: str) -> None:
    """One flag per input member (kebab-case as awscli), plus the cli-input/skeleton flags."""
    docgen = ParamShorthandDocGen()
    for name, argument in values.cli_arguments(operation).items():
        model = argument.argument_model
        kind = model.type_name
        help_text = f"({kind}{', required' if argument.required else ''}) " \
                    f"{_first_sentence(model.documentation)}"
        if docgen.supports_shorthand(model):
            example = docgen.generate_shorthand_example(
                argument, service_model.SERVICE_NAME, service_model.cli_name(operation))
            if example:
                help_text += f" Shorthand: {example}"
        enum = getattr(model, "enum", None)
        if enum:
            help_text += f" One of: {', '.join(enum)}."
        parser.add_argument(
            argument.cli_name,
            dest=_DEST + name,
            nargs="*" if kind == "list" else None,
            metavar="VALUE",
            help=help_text.replace("%", "%%"),
        )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cli-input-json", metavar="JSON",
                       help="Request parameters as JSON (literal or file://path); "
                            "flags on the command line override them.")
    group.add_argument("--cli-input-yaml", metavar="YAML",
                       help="Request parameters as YAML (literal or file://path).")
    parser.add_argument("--generate-cli-skeleton", nargs="?", const="input",
                        choices=values.SKELETON_KINDS,
                        help="Print a request skeleton (input, yaml-input) or a sample "
                             "response (output) instead of calling the service.")


def request_from_namespace(operation: str, ns: argparse.Namespace, *,
                           check_required: bool = True) -> dict[str, Any]:
    """The request dict from parsed arguments: flags override --cli-input-json/yaml."""
    params: dict[str, Any] = {}
    arguments = values.cli_arguments(operation)
    for name, argument in arguments.items():
        raw = getattr(ns, _DEST + name, None)
        if raw is None:
            continue
        values.unpack(operation, argument, raw, params)
    for fmt in ("json", "yaml"):
        text = getattr(ns, f"cli_input_{fmt}", None)
        if text is not None:
            members = service_model.input_shape(operation).members
            for key, value in values.load_cli_input(text, fmt).items():
                if key in params:  # the command line wins
                    continue
                if key in members:
                    value = values.convert_timestamps(members[key], value, f"--cli-input-{fmt}")
                params[key] = value
    if operation == "CreateCompilationJob":
        merge_tuning_flags(ns, params)
    if check_required:
        missing = [a.cli_name for n, a in arguments.items() if a.required and params.get(n) is None]
        if missing:
            raise UsageError(f"the following arguments are required: {', '.join(missing)}")
    return params


def build_request(operation: str, argv: list[str]) -> dict[str, Any]:
    """Parse ``argv`` (the words after the command name) into the request dict.

    Raises UsageError for anything the command line gets wrong.
    """
    parser = _StandaloneParser(prog=f"neo-local {service_model.cli_name(operation)}", allow_abbrev=False)
    add_arguments(parser, operation)
    return request_from_namespace(operation, parser.parse_args(argv))


class _StandaloneParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def service_function(operation: str) -> Callable[..., dict[str, Any]]:
    """The neo_local.api.service function behind an operation (looked up at call time)."""
    from neo_local.api import service

    return getattr(service, service_model.python_name(operation))


_TAG = re.compile(r"<[^>]+>")


def _strip_html(text: str) -> str:
    return re.sub(r"\s+", " ", _TAG.sub("", text or "")).strip()


def _first_sentence(text: str) -> str:
    plain = _strip_html(text)
    end = plain.find(". ")
    return plain if end < 0 else plain[: end + 1]
