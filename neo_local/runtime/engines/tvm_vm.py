"""The TVM Relax virtual machine: compiled.so holds the kernels and the VM program."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from neo_local.targets.cpu_features import physical_cores


class TvmVmEngine:
    accepts_any_rows = False  # shapes are fixed at compile time

    def __init__(self, library: Path, dev_type: str, dev_id: int) -> None:
        # the runtime otherwise starts one thread on VMs that report hyperthreads oddly
        os.environ.setdefault("TVM_NUM_THREADS", str(physical_cores()))
        import tvm
        from tvm.runtime.vm import VirtualMachine

        self._tvm = tvm
        self._device = tvm.device(dev_type, dev_id)
        self._vm = VirtualMachine(tvm.runtime.load_module(str(library)), self._device)

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        result = self._vm["main"](*(self._tvm.runtime.tensor(a, self._device) for a in arrays))
        outs = [result] if hasattr(result, "numpy") else list(result)
        return [o.numpy() for o in outs]


def open_engine(folder: Path, meta: Mapping[str, Any], dev_type: str, dev_id: int) -> TvmVmEngine:
    # DLR's dev_type "gpu" names the device of a GPU artifact's kernels (OpenCL for Mali/Intel graphics)
    gpu = meta.get("Target", {}).get("Gpu")
    return TvmVmEngine(folder / meta["Runtime"]["Library"], gpu["TVMTarget"]["kind"] if gpu else dev_type, dev_id)

