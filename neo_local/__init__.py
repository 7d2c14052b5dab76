"""neo-local: SageMaker Neo's CreateCompilationJob on your own machines.

The functions below take and return what boto3's sagemaker client takes and returns.
"""

from __future__ import annotations

__version__ = "0.1.0"

from neo_local.api.service import (  # noqa: E402
    create_compilation_job,
    delete_compilation_job,
    describe_compilation_job,
    list_compilation_jobs,
    stop_compilation_job,
)
from neo_local.inprocess import compile  # noqa: E402,A004

__all__ = [
    "compile",
    "create_compilation_job",
    "delete_compilation_job",
    "describe_compilation_job",
    "list_compilation_jobs",
    "stop_compilation_job",
]
