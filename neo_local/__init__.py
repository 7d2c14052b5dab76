"""neo-local: SageMaker Neo's CreateCompilationJob on your own machines.

The functions below take and return what boto3's sagemaker client takes and returns. They are
imported on first use, so that ``neo_local.runtime`` (on a device, and in the compile's own
verification process) loads without the API layer and botocore.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "compile": "neo_local.inprocess",
    "create_compilation_job": "neo_local.api.service",
    "delete_compilation_job": "neo_local.api.service",
    "describe_compilation_job": "neo_local.api.service",
    "list_compilation_jobs": "neo_local.api.service",
    "stop_compilation_job": "neo_local.api.service",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'neo_local' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
