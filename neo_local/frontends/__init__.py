"""Frontends, one per Framework value of the API, registered by decorator.

Adding a framework is adding one module that defines a ``Frontend`` subclass decorated with
``@register`` and listing it in ``_MODULES``.
"""

from __future__ import annotations

import importlib

from neo_local.api.errors import client_error
from neo_local.frontends.base import Frontend

_REGISTRY: dict[str, type[Frontend]] = {}

#: modules that define frontends; imported on first lookup so that registration is explicit
_MODULES = ("neo_local.frontends.onnx", "neo_local.frontends.pytorch")


def register(cls: type[Frontend]) -> type[Frontend]:
    """Class decorator: register a frontend under its Framework value (twice is an error)."""
    if cls.framework in _REGISTRY:
        raise ValueError(f"Framework {cls.framework} is registered twice: {_REGISTRY[cls.framework]} and {cls}")
    _REGISTRY[cls.framework] = cls
    return cls


def frontends() -> dict[str, type[Frontend]]:
    """All registered frontends by Framework value."""
    for module in _MODULES:
        importlib.import_module(module)
    return dict(_REGISTRY)


def get_frontend(framework: str) -> Frontend:
    """The frontend for ``framework``; a ClientError lists the supported ones."""
    table = frontends()
    cls = table.get(framework)
    if cls is None:
        raise client_error(
            "InputConfiguration",
            f"Framework {framework} is not supported by neo-local yet. Supported: {', '.join(sorted(table))}",
        )
    return cls()
