"""The TVM Relax virtual machine: compiled.so holds the kernels and the VM program."""

from __future__ import annotations

import threading
from dataclasses import dataclass
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
        self._staged: list[_Staged | None] = []
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
        """The device tensors holding ``arrays`` (made again where a shape or dtype changed)."""
        if len(self._staged) != len(arrays):
            self._staged = [None] * len(arrays)
        for i, a in enumerate(arrays):
            staged = self._staged[i]
            if staged is None or staged.shape != a.shape or staged.dtype != a.dtype:
                self._staged[i] = _Staged.of(self._tvm.runtime.tensor(a, self._device), a, self._cpu)
            elif staged.view is not None:
                np.copyto(staged.view, a)
            else:
                staged.tensor.copyfrom(a)
        return [s.tensor for s in self._staged]


@dataclass(frozen=True)
class _Staged:
    """An input's device tensor, a numpy view of its memory where numpy can share it, and the
    shape and dtype it was made for (numpy's: reading the tensor's costs about 1 us a run)."""

    tensor: Any
    view: np.ndarray | None
    shape: tuple[int, ...]
    dtype: np.dtype

    @classmethod
    def of(cls, tensor: Any, array: np.ndarray, cpu: bool) -> "_Staged":
        return cls(tensor, np.from_dlpack(tensor) if _numpy_shares(tensor, cpu) else None, array.shape, array.dtype)


def _numpy_shares(tensor: Any, cpu: bool) -> bool:
    """Whether numpy can view ``tensor``'s memory (a CPU tensor of a dtype numpy has)."""
    return cpu and str(tensor.dtype) in _SHARED_DTYPES


def open_engine(folder: Path, meta: Mapping[str, Any], dev_type: str, dev_id: int) -> TvmVmEngine:
    # DLR's dev_type "gpu" names the device of a GPU artifact's kernels (OpenCL for Mali/Intel graphics)
    gpu = meta.get("Target", {}).get("Gpu")
    return TvmVmEngine(folder / meta["Runtime"]["Library"], gpu["TVMTarget"]["kind"] if gpu else dev_type, dev_id)

