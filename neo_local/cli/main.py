"""``neo-local``: the SageMaker compilation-job commands of ``aws sagemaker``, run locally.

Exit statuses follow the AWS CLI: 0 success, 252 a command-line mistake (usage on stderr),
254 an error answer from the service, 255 anything else (1 for ``run`` failures and for a
``--wait`` whose job did not complete; 130 when interrupted).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import traceback
from typing import Any

from botocore.exceptions import ClientError

EXIT_USAGE = 252
EXIT_SERVICE = 254
EXIT_OTHER = 255
EXIT_JOB_FAILED = 1
EXIT_INTERRUPTED = 130


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _global_options(suppress: bool) -> argparse.ArgumentParser:
    """--output/--query/--debug, accepted before or after the command as in ``aws``."""
    default = argparse.SUPPRESS if suppress else None
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--output", choices=("json", "text", "table"),
                        default=default if suppress else "json",
                        help="output format (default json)")
    parent.add_argument("--query", default=default, help="JMESPath query applied to the result")
    parent.add_argument("--region", default=default,
                        help="the region named in job ARNs (sets AWS_REGION for this command)")
    parent.add_argument("--debug", action="store_true", default=default if suppress else False,
                        help="show tracebacks of internal errors")
    return parent


def version_string() -> str:
    import botocore

    from neo_local import __version__

    return f"neo-local/{__version__} Python/{platform.python_version()} botocore/{botocore.__version__}"


def build_parser() -> argparse.ArgumentParser:
    from neo_local.cli.benchmark import add_benchmark_parser
    from neo_local.cli.operations import add_operation_parsers
    from neo_local.cli.rpc_server import add_rpc_server_parser
    from neo_local.cli.run import add_run_parser

    parser = _ArgumentParser(
        prog="neo-local",
        description="SageMaker Neo's compilation-job API on your own machine.",
        parents=[_global_options(suppress=False)],
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=version_string())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    sub.required = True
    parents = [_global_options(suppress=True)]
    add_operation_parsers(sub, parents)
    add_run_parser(sub, parents)
    add_benchmark_parser(sub, parents)
    add_rpc_server_parser(sub, parents)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) if isinstance(e.code, int) else EXIT_USAGE
    debug = bool(getattr(ns, "debug", False))
    if getattr(ns, "region", None):
        os.environ["AWS_REGION"] = ns.region
    try:
        if getattr(ns, "operation", None):
            from neo_local.cli.commands import run_operation

            return run_operation(ns)
        return ns.handler(ns)
    except _usage_errors() as e:
        _subparser_usage(parser, ns.command)
        sys.stderr.write(f"neo-local {ns.command}: error: {e}\n")
        return EXIT_USAGE
    except ClientError as e:
        from neo_local.cli.output import service_error_message

        operation = getattr(ns, "operation", None) or e.operation_name
        sys.stderr.write("\n" + service_error_message(e, operation) + "\n")
        return EXIT_SERVICE
    except KeyboardInterrupt:
        sys.stderr.write("\nInterrupted.\n")
        return EXIT_INTERRUPTED
    except _run_failures() as e:
        sys.stderr.write(f"neo-local {ns.command}: {e}\n")
        return EXIT_JOB_FAILED
    except Exception as e:  # a fault of neo-local itself, not of the command line
        if debug:
            traceback.print_exc()
        else:
            sys.stderr.write(f"\n{type(e).__name__}: {e}\n(run with --debug for the traceback)\n")
        return EXIT_OTHER


def _usage_errors() -> tuple[type[Exception], ...]:
    from neo_local.cli.values import UsageError

    return (UsageError,)


def _run_failures() -> tuple[type[Exception], ...]:
    from neo_local.cli.run import RunFailed

    return (RunFailed,)


def _subparser_usage(parser: argparse.ArgumentParser, command: str | None) -> None:
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        choices: Any = getattr(action, "choices", None)
        if choices and command in choices:
            choices[command].print_usage(sys.stderr)
            return
    parser.print_usage(sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
