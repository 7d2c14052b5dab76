"""Frontends, one per Framework value of the API.

``_MODULES`` maps each Framework value to the module that implements it; the module defines
a ``Frontend`` subclass decorated with ``@register``. Only the framework a job needs is
imported (TensorFlow alone takes seconds). Adding a framework is adding one module and one
line here.
"""

from __future__ import annotations

import importlib

from neo_local.api.errors import client_error
from neo_local.frontends.base import Frontend

_REGISTRY: dict[str, type[Frontend]] = {}

_MODULES = {
    "ONNX": "neo_local.frontends.onnx",
    "PYTORCH": "neo_local.frontends.pytorch",
    "TENSORFLOW": "neo_local.frontends.tensorflow",
    "KERAS": "neo_local.frontends.keras",
    "TFLITE": "neo_local.frontends.tflite",
    "MXNET": "neo_local.frontends.mxnet",
    "DARKNET": "neo_local.frontends.darknet",
    "XGBOOST": "neo_local.frontends.xgboost",
    "SKLEARN": "neo_local.frontends.sklearn",
}


def register(cls: type[Frontend]) -> type[Frontend]:
    """Class decorator: register a frontend under its Framework value (twice is an error)."""
    if cls.framework in _REGISTRY:
        raise ValueError(f"Framework {cls.framework} is registered twice: {_REGISTRY[cls.framework]} and {cls}")
    if _MODULES.get(cls.framework) != cls.__module__:
        raise ValueError(f"Framework {cls.framework} must be defined in {_MODULES.get(cls.framework)}, not {cls.__module__}")
    _REGISTRY[cls.framework] = cls
    return cls


def _load(framework: str) -> type[Frontend]:
    importlib.import_module(_MODULES[framework])
    return _REGISTRY[framework]


def frontends() -> dict[str, type[Frontend]]:
    """All frontends by Framework value (imports every frontend module)."""
    return {framework: _load(framework) for framework in _MODULES}


def get_frontend(framework: str) -> Frontend:
    """The frontend for ``framework``; a ClientError lists the supported ones."""
    if framework not in _MODULES:
        raise client_error(
            "InputConfiguration",
            f"Framework {framework} is not supported by neo-local yet. Supported: {', '.join(sorted(_MODULES))}",
        )
    return _load(framework)()
