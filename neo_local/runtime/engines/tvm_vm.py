"""The TVM Relax virtual machine: compiled.so holds the kernels and the VM program."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from neo_local.runtime.threads import set_thread_defaults


#: dtypes numpy shares with a CPU tensor through DLPack (others, e.g. bfloat16, go through TVM's copies)
_SHARED_DTYPES = frozenset(f"{kind}{bits}" for kind in ("int", "uint") for bits in (8, 16, 32, 64)) | {
    "float16", "float32", "float64"}


class TvmVmEngine:
    """Runs the VM's ``main``. Each input is copied into a device tensor made once, of the shape
    and dtype the meta declares (``DLRModel`` conforms the inputs to them); on the CPU numpy copies
    inputs in and outputs out through DLPack views: TVM's own ``tensor()``/``copyfrom``/``numpy()``
    take 15-50 us each, ~0.1 ms of a 0.3 ms model. One run at a time: the VM's frames and those
    tensors are shared."""

    accepts_any_rows = False  # shapes are fixed at compile time

    def __init__(self, library: Path, dev_type: str, dev_id: int, inputs: Sequence[tuple[Sequence[int], str]]) -> None:
        set_thread_defaults()
        import tvm
        from tvm.runtime.vm import VirtualMachine

        self._device = tvm.device(dev_type, dev_id)
        self._cpu = self._device.dlpack_device_type() == tvm.cpu().dlpack_device_type()
        self._vm = VirtualMachine(tvm.runtime.load_module(str(library)), self._device)
        self._main = self._vm["main"]
        self._tensors = [tvm.runtime.empty(tuple(shape), dtype, self._device) for shape, dtype in inputs]
        # numpy views of them, where numpy can share one
        self._views = [np.from_dlpack(t) if _numpy_shares(t, self._cpu) else None for t in self._tensors]
        self._outputs: Callable[[Any], list[np.ndarray]] | None = None  # made on the first run
        self._lock = threading.Lock()

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The outputs for ``arrays``, of the declared shapes and dtypes. Each step of the common
        case costs a fraction of a microsecond, which a 15 us model notices: the run took 2.9 us
        more than the VM's call when it compared every input's (shape, dtype) with the last run's
        and looked at each output's kind and dtype again (TFLite int8 CNN, znver4)."""
        with self._lock:
            for view, tensor, a in zip(self._views, self._tensors, arrays):
                if view is not None:
                    view[...] = a
                else:
                    tensor.copyfrom(a)
            result = self._main(*self._tensors)
            if self._outputs is None:
                self._outputs = _output_copier(result, self._cpu)
            return self._outputs(result)


def _output_copier(result: Any, cpu: bool) -> Callable[[Any], list[np.ndarray]]:
    """How to copy the VM's result out, decided once (its kind and dtypes are fixed): a tensor or a
    tuple of them, each through a numpy view where numpy can share it."""
    if hasattr(result, "numpy"):
        if _numpy_shares(result, cpu):
            return lambda r: [np.from_dlpack(r).copy()]
        return lambda r: [r.numpy()]
    shares = [_numpy_shares(o, cpu) for o in result]
    return lambda r: [np.from_dlpack(o).copy() if s else o.numpy() for o, s in zip(r, shares)]


def _numpy_shares(tensor: Any, cpu: bool) -> bool:
    """Whether numpy can view ``tensor``'s memory (a CPU tensor of a dtype numpy has)."""
    return cpu and str(tensor.dtype) in _SHARED_DTYPES


def open_engine(folder: Path, meta: Mapping[str, Any], dev_type: str, dev_id: int) -> TvmVmEngine:
    # DLR's dev_type "gpu" names the device of a GPU artifact's kernels (OpenCL for Mali/Intel graphics)
    gpu = meta.get("Target", {}).get("Gpu")
    inputs = [(i["shape"], i["dtype"]) for i in meta["Model"]["Inputs"]]
    return TvmVmEngine(folder / meta["Runtime"]["Library"], gpu["TVMTarget"]["kind"] if gpu else dev_type, dev_id, inputs)

