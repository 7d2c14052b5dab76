"""The TVM Relax virtual machine: compiled.so holds the kernels and the VM program."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from neo_local.runtime.threads import set_thread_defaults


#: dtypes numpy shares with a CPU tensor through DLPack (others, e.g. bfloat16, go through TVM's copies)
_SHARED_DTYPES = frozenset(f"{kind}{bits}" for kind in ("int", "uint") for bits in (8, 16, 32, 64)) | {
    "float16", "float32", "float64"}


class TvmVmEngine:
    """Runs the VM's ``main``. Inputs are copied into device tensors made on the first run and
    reused, and on the CPU numpy copies them in and out through DLPack views: TVM's own
    ``tensor()``/``copyfrom``/``numpy()`` take 15-50 us each, ~0.1 ms of a 0.3 ms model. One run
    at a time: the VM's frames and those tensors are shared."""

    accepts_any_rows = False  # shapes are fixed at compile time

    def __init__(self, library: Path, dev_type: str, dev_id: int) -> None:
        set_thread_defaults()
        import tvm
        from tvm.runtime.vm import VirtualMachine

        self._tvm = tvm
        self._device = tvm.device(dev_type, dev_id)
        self._cpu = self._device.dlpack_device_type() == tvm.cpu().dlpack_device_type()
        self._vm = VirtualMachine(tvm.runtime.load_module(str(library)), self._device)
        self._main = self._vm["main"]
        self._tensors: list[Any] = []  # the inputs' device tensors
        self._views: list[np.ndarray | None] = []  # numpy views of them, where numpy can share one
        self._made_for: list[tuple[tuple[int, ...], np.dtype]] = []  # numpy's (reading a tensor's: 1 us)
        self._shares: list[bool] = []  # per output: numpy views it (its dtype is fixed; asking costs 0.5 us)
        self._lock = threading.Lock()

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            result = self._main(*self._stage(arrays))
            outs = [result] if hasattr(result, "numpy") else list(result)
            if len(self._shares) != len(outs):
                self._shares = [_numpy_shares(o, self._cpu) for o in outs]
            return [np.from_dlpack(o).copy() if shares else o.numpy() for o, shares in zip(outs, self._shares)]

    def _stage(self, arrays: list[np.ndarray]) -> list[Any]:
        """The device tensors holding ``arrays``, made again where a shape or dtype changed: one
        comparison of (shape, dtype) lists and a copy per input (a dataclass per input, compared
        field by field, took about a microsecond more, a fifteenth of a 15 us model's run)."""
        made_for = [(a.shape, a.dtype) for a in arrays]
        if made_for != self._made_for:
            self._tensors = [self._tvm.runtime.tensor(a, self._device) for a in arrays]
            self._views = [np.from_dlpack(t) if _numpy_shares(t, self._cpu) else None for t in self._tensors]
            self._made_for = made_for
            return self._tensors
        for tensor, view, a in zip(self._tensors, self._views, arrays):
            if view is not None:
                view[...] = a
            else:
                tensor.copyfrom(a)
        return self._tensors


def _numpy_shares(tensor: Any, cpu: bool) -> bool:
    """Whether numpy can view ``tensor``'s memory (a CPU tensor of a dtype numpy has)."""
    return cpu and str(tensor.dtype) in _SHARED_DTYPES


def open_engine(folder: Path, meta: Mapping[str, Any], dev_type: str, dev_id: int) -> TvmVmEngine:
    # DLR's dev_type "gpu" names the device of a GPU artifact's kernels (OpenCL for Mali/Intel graphics)
    gpu = meta.get("Target", {}).get("Gpu")
    return TvmVmEngine(folder / meta["Runtime"]["Library"], gpu["TVMTarget"]["kind"] if gpu else dev_type, dev_id)

