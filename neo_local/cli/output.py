"""Printing results and errors as the AWS CLI does (its own formatters)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

import jmespath
from awscli.formatter import get_formatter
from botocore.exceptions import ClientError
from jmespath.exceptions import JMESPathError

from neo_local.cli.values import UsageError

OUTPUT_FORMATS = ("json", "text", "table")


def compile_query(expression: str | None) -> Any:
    if expression is None:
        return None
    try:
        return jmespath.compile(expression)
    except JMESPathError as e:
        raise UsageError(f"argument --query: Bad value for --query: {expression}: {e}") from None


def print_result(command_name: str, response: Any, output: str = "json", query: Any = None,
                 stream: TextIO | None = None) -> None:
    """``response`` formatted like ``aws``: json (indent 4, ISO 8601 times), text or table;
    ``query`` a compiled JMESPath expression (or None)."""
    if output not in OUTPUT_FORMATS:
        raise UsageError(f"argument --output: invalid choice: {output!r} (choose from {', '.join(OUTPUT_FORMATS)})")
    if isinstance(response, dict):
        response = dict(response)  # the formatter drops ResponseMetadata in place
    args = argparse.Namespace(query=query, color="off")
    formatter = get_formatter(output, args)
    formatter(command_name, response, stream or sys.stdout)


def service_error_message(error: ClientError, operation: str) -> str:
    """``An error occurred (Code) when calling the Operation operation: message``."""
    err = error.response.get("Error", {})
    code = err.get("Code", "Unknown")
    message = err.get("Message", str(error))
    return f"An error occurred ({code}) when calling the {operation} operation: {message}"
