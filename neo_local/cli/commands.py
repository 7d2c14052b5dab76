"""Running one API command: build the request, call the service, print the answer."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from neo_local.cli import output, values
from neo_local.cli.operations import request_from_namespace, service_function
from neo_local.cli.wait import TERMINAL_STATUSES, default_read_log, wait_for_job

EXIT_JOB_DID_NOT_COMPLETE = 1


def run_operation(ns: argparse.Namespace) -> int:
    operation = ns.operation
    query = output.compile_query(getattr(ns, "query", None))
    fmt = getattr(ns, "output", None) or "json"
    skeleton = getattr(ns, "generate_cli_skeleton", None)
    if skeleton in ("input", "yaml-input"):
        sys.stdout.write(values.input_skeleton(operation, skeleton))
        return 0
    request = request_from_namespace(operation, ns)
    if skeleton == "output":
        from neo_local.api.validation import validate_operation

        validate_operation(operation, request)
        output.print_result(operation, values.output_skeleton(operation), fmt, query)
        return 0
    response = service_function(operation)(**request)
    if operation == "CreateCompilationJob" and getattr(ns, "wait", False):
        return _wait(ns, request, response, fmt, query)
    output.print_result(operation, response, fmt, query)
    return 0


def _wait(ns: argparse.Namespace, request: dict[str, Any], response: dict[str, Any],
          fmt: str, query: Any) -> int:
    name = request["CompilationJobName"]
    sys.stderr.write(f"[neo-local] created {response.get('CompilationJobArn', name)}\n")
    describe = service_function("DescribeCompilationJob")
    try:
        final = wait_for_job(name, describe, default_read_log())
    except KeyboardInterrupt:
        sys.stderr.write(
            f"\n[neo-local] stopped waiting; job {name} keeps running. Stop it with: "
            f"neo-local stop-compilation-job --compilation-job-name {name}\n")
        raise
    output.print_result("DescribeCompilationJob", final, fmt, query)
    status = final.get("CompilationJobStatus")
    assert status in TERMINAL_STATUSES
    return 0 if status == "COMPLETED" else EXIT_JOB_DID_NOT_COMPLETE

