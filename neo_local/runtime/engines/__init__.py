"""Runtime engines: one per ``Runtime.Kind`` in compiled.meta.

An engine opens the library named in the meta and runs it on a list of arrays in input
order. Adding one is adding a module with an ``open_engine`` function and a line here.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np


class Engine(Protocol):
    #: True when any number of rows (first dimension) can be run, not only the compiled one
    accepts_any_rows: bool

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]: ...


#: Runtime.Kind -> module with ``open_engine(folder, meta, dev_type, dev_id) -> Engine``
ENGINES = {
    "tvm-relax-vm": "neo_local.runtime.engines.tvm_vm",
    "tree-c": "neo_local.runtime.engines.tree",
}


def open_engine(kind: str, folder: Path, meta: Mapping[str, Any], dev_type: str, dev_id: int) -> Engine:
    return importlib.import_module(ENGINES[kind]).open_engine(folder, meta, dev_type, dev_id)
