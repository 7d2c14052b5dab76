"""The SageMaker service model shipped inside botocore: the one place that loads it.

Validation and the CLI take operation models and shapes from here, so request shapes,
enums, patterns and limits are botocore's, never retyped. Only botocore's own bundled data
is read (not ``~/.aws/models`` or ``AWS_DATA_PATH``), so a user's local model overrides
cannot change what neo-local accepts.
"""

from __future__ import annotations

import functools
import os

import botocore
from botocore import xform_name
from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

SERVICE_NAME = "sagemaker"

#: The operations neo-local implements, in the service's spelling.
OPERATIONS: tuple[str, ...] = (
    "CreateCompilationJob",
    "DescribeCompilationJob",
    "ListCompilationJobs",
    "StopCompilationJob",
    "DeleteCompilationJob",
)

_BY_ALIAS = {alias: op for op in OPERATIONS for alias in (op, xform_name(op), xform_name(op, "-"))}


@functools.cache
def service_model() -> ServiceModel:
    """botocore's ``sagemaker`` service model (loaded once per process)."""
    data_path = os.path.join(os.path.dirname(botocore.__file__), "data")
    loader = Loader(extra_search_paths=[data_path], include_default_search_paths=False)
    data = loader.load_service_model(SERVICE_NAME, "service-2")
    return ServiceModel(data, service_name=SERVICE_NAME)


def operation_name(operation: str) -> str:
    """'CreateCompilationJob' from 'CreateCompilationJob', 'create_compilation_job' or
    'create-compilation-job'; KeyError for an operation neo-local does not implement."""
    try:
        return _BY_ALIAS[operation]
    except KeyError:
        raise KeyError(f"unknown operation {operation!r}; known: {', '.join(OPERATIONS)}") from None


def operation_model(operation: str) -> OperationModel:
    return service_model().operation_model(operation_name(operation))


def input_shape(operation: str) -> StructureShape:
    shape = operation_model(operation).input_shape
    assert shape is not None
    return shape


def output_shape(operation: str) -> StructureShape | None:
    return operation_model(operation).output_shape


def cli_name(operation: str) -> str:
    """'create-compilation-job' for 'CreateCompilationJob' (awscli's command name)."""
    return xform_name(operation_name(operation), "-")


def python_name(operation: str) -> str:
    """'create_compilation_job' for 'CreateCompilationJob' (boto3's method name)."""
    return xform_name(operation_name(operation))


def shape_named(name: str) -> Shape:
    """A shape of the service model by its name, e.g. 'TargetDevice'."""
    return service_model().shape_for(name)
