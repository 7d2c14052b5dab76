"""Errors in the SageMaker API's shape.

Request errors subclass botocore's ClientError, so code written against boto3's sagemaker
client (``except ClientError as e: e.response["Error"]["Code"]``) ports unchanged.
A job that fails carries a FailureReason string instead: ``JobFailure``.
"""

from __future__ import annotations

from typing import Mapping

from botocore.exceptions import ClientError


class ApiError(ClientError):
    """An error answer to an API call, with the service's error code."""

    code = "InternalFailure"
    http_status = 500

    def __init__(self, message: str, operation: str = "CompilationJob") -> None:
        response = {
            "Error": {"Code": self.code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": self.http_status},
        }
        super().__init__(response, operation)
        self.message = message


class ValidationException(ApiError):
    code = "ValidationException"
    http_status = 400


class ResourceInUse(ApiError):
    code = "ResourceInUse"
    http_status = 400


class ResourceNotFound(ApiError):
    code = "ResourceNotFound"
    http_status = 400


class JobFailure(Exception):
    """Ends a job as FAILED; ``reason`` is the FailureReason the user reads.

    ``ClientError: <Area>: ...`` is the user's to fix, ``InternalError: ...`` is ours.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def client_error(area: str, message: str) -> JobFailure:
    """A failure caused by the request or the model, e.g. area='InputConfiguration'."""
    return JobFailure(f"ClientError: {area}: {message}")


def unsupported_error(source: str, what: str, counts: Mapping[str, int], unit: str) -> JobFailure:
    """All the operators (or layers) a model uses that the compiler lacks, with their counts,
    e.g. ``model.onnx uses operators the compiler does not support: Celu (2 nodes), ...``."""
    listing = ", ".join(f"{name} ({n} {unit}{'s' if n > 1 else ''})" for name, n in sorted(counts.items()))
    return client_error("InputConfiguration", f"{source} uses {what} the compiler does not support: {listing}")


def internal_error(message: str) -> JobFailure:
    """A failure of neo-local itself, never caused by user input."""
    return JobFailure(f"InternalError: {message}")


def exception_line(exc: BaseException, last: bool = True) -> str:
    """One line of an exception's message for a FailureReason (TVM puts it last, torch first)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return exc.__class__.__name__
    return lines[-1] if last else lines[0]


def tvm_error_line(exc: BaseException) -> str:
    """The line of a TVM error that says what failed: TVM appends the offending IR as TVMScript,
    whose last lines are comments ("# Metadata omitted ...")."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return lines[-1] if lines else exception_line(exc)
