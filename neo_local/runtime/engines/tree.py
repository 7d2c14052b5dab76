"""Tree and linear models (Runtime.Kind ``tree-c``): compiled.so is plain C (libc, libm).

It is opened with ctypes; neither treelite nor tl2cgen is needed on the device. The ABI is
``neo_predict(const float* data, int64_t rows, float* out)`` and friends (see
``neo_local.backends.treelite_c``). Any number of rows runs, whatever rows compiled.meta
records; NaN features are missing values.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from neo_local.runtime.model import ArtifactError as TreeEngineError

ABI_VERSION = 1


class TreeEngine:
    #: DLRModel lets the first (rows) dimension of the input differ from compiled.meta's
    accepts_any_rows = True

    def __init__(self, library: Path, meta: Mapping[str, Any]) -> None:
        try:
            lib = ctypes.CDLL(str(library), mode=ctypes.RTLD_LOCAL)
        except OSError as exc:
            raise TreeEngineError(f"cannot load {library.name}: {exc}") from exc
        for name in ("neo_abi_version", "neo_num_feature", "neo_num_output"):
            getattr(lib, name).restype = ctypes.c_int32
            getattr(lib, name).argtypes = []
        version = lib.neo_abi_version()
        if version != ABI_VERSION:
            raise TreeEngineError(
                f"{library.name} has tree-c ABI version {version}; this runtime reads version {ABI_VERSION}"
            )
        self._predict = lib.neo_predict
        self._predict.restype = ctypes.c_int32
        self._predict.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
        self._lib = lib
        self.num_feature = int(lib.neo_num_feature())
        self.num_output = int(lib.neo_num_output())
        outputs = meta["Model"]["Outputs"]
        if len(outputs) != 1:
            raise TreeEngineError(f"a tree-c artifact has one output, compiled.meta lists {len(outputs)}")
        # [rows] or [rows, num_output], as the framework's predict returns it
        self._one_column = len(outputs[0]["shape"]) == 1
        if self._one_column and self.num_output != 1:
            raise TreeEngineError(f"compiled.meta's output is 1-D but the library gives {self.num_output} values a row")

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        if len(arrays) != 1:
            raise TreeEngineError(f"a tree-c model takes one input, got {len(arrays)}")
        data = np.ascontiguousarray(arrays[0], dtype=np.float32)
        if data.ndim != 2 or data.shape[1] != self.num_feature:
            raise TreeEngineError(f"input must be [rows, {self.num_feature}] float32, got {list(data.shape)}")
        rows = data.shape[0]
        out = np.empty((rows, self.num_output), dtype=np.float32)
        if rows:
            status = self._predict(data.ctypes.data, rows, out.ctypes.data)
            if status != 0:
                raise TreeEngineError(f"neo_predict failed with status {status} (out of memory)")
        return [out.reshape(rows) if self._one_column else out]


def open_engine(folder: Path, meta: Mapping[str, Any], dev_type: str, dev_id: int) -> TreeEngine:
    if dev_type != "cpu":
        raise TreeEngineError(f"tree-c artifacts run on the cpu, not {dev_type}")
    return TreeEngine(folder / meta["Runtime"]["Library"], meta)
