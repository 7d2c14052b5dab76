"""Backends build an ImportedModel for a TargetSpec into the files of an artifact.

Which backend builds a model depends on both sides: Relax IR goes to the target's backend
(TVM for CPU targets); a model in another IR (e.g. tree-model C sources) goes to the backend
of that IR, which must be able to build for the target. Adding a backend is adding a module
with a ``build`` function and a line in ``_BACKENDS``. A backend that converts the framework's
own model (Core ML) also has a reader in ``_SOURCE_READERS``, used instead of the frontend's
Relax import.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from neo_local.backends.base import BuiltModel
from neo_local.frontends.base import Frontend, ImportedModel, ImportOptions
from neo_local.targets.spec import TargetSpec

Build = Callable[[ImportedModel, TargetSpec, Path], BuiltModel]

#: backend name -> module defining ``build(model, target, out_dir) -> BuiltModel``
_BACKENDS = {
    "tvm": "neo_local.backends.tvm_relax",
    "tree-c": "neo_local.backends.treelite_c",
    "coreml": "neo_local.backends.coreml",
}

#: backend name -> module defining ``load(frontend, model_dir, options) -> ImportedModel``
_SOURCE_READERS = {
    "coreml": "neo_local.backends.coreml_source",
}


def import_model(frontend: Frontend, target: TargetSpec, model_dir: Path, options: ImportOptions) -> ImportedModel:
    """The model as the target's backend takes it: the frontend's import, or the backend's own reader."""
    reader = _SOURCE_READERS.get(target.backend)
    if reader is None:
        return frontend.load(model_dir, options)
    return importlib.import_module(reader).load(frontend, model_dir, options)


def select_backend(model: ImportedModel, target: TargetSpec) -> Build:
    """The build function for this model on this target."""
    name = target.backend if model.ir_kind == "relax" else model.ir_kind
    return importlib.import_module(_BACKENDS[name]).build


__all__ = ["Build", "BuiltModel", "import_model", "select_backend"]
