"""Runtime-indexed lookups raise IndexError on out-of-range indices instead of reading past
the table (TVM's take in "fast" mode does no check at all)."""

import numpy as np
import pytest
import tvm
from tvm import relax

from neo_local.backends.index_guard import guard_takes


def _lookup_module(mode: str = "fast", constant_indices: bool = False) -> tvm.IRModule:
    table = relax.const(np.arange(40, dtype="float32").reshape(10, 4))
    bb = relax.BlockBuilder()
    ids = relax.Var("ids", relax.TensorType((2, 3), "int64"))
    with bb.function("main", [ids]):
        with bb.dataflow():
            index = relax.const(np.array([1, 2], dtype="int64")) if constant_indices else ids
            out = bb.emit_output(relax.op.take(table, index, axis=0, mode=mode))
        bb.emit_func_output(out)
    return bb.get()


def _run(mod: tvm.IRModule, ids: np.ndarray) -> np.ndarray:
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(ids)).numpy()


def test_runtime_indices_are_checked_and_results_unchanged():
    mod, guarded = guard_takes(_lookup_module())
    assert guarded == 1
    ids = np.array([[0, 9, 3], [4, 5, 6]], dtype=np.int64)
    np.testing.assert_array_equal(_run(mod, ids), np.arange(40, dtype=np.float32).reshape(10, 4)[ids])


@pytest.mark.parametrize("bad", [10, -1, 1 << 40])
def test_out_of_range_index_raises_index_error(bad):
    mod, _ = guard_takes(_lookup_module())
    ids = np.array([[0, 1, 2], [3, bad, 5]], dtype=np.int64)
    with pytest.raises(IndexError, match=r"axis of 10 entries got an index outside 0\.\.9"):
        _run(mod, ids)


@pytest.mark.parametrize("kwargs", [{"constant_indices": True}, {"mode": "clip"}])
def test_lookups_that_cannot_go_out_of_range_are_left_alone(kwargs):
    mod = _lookup_module(**kwargs)
    guarded_mod, guarded = guard_takes(mod)
    assert guarded == 0 and guarded_mod is mod
