"""Constant folding with unoptimized builds (neo_local.backends.cpu_schedule.constant_folding)."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

import tvm_ffi  # noqa: E402
from tvm import relax, te  # noqa: E402

from neo_local.backends.cpu_schedule.constant_folding import BUILD_FUNCTION, fold_constants  # noqa: E402


def _module(w: np.ndarray) -> tvm.IRModule:
    """main(x) = x + permute_dims(w): the transpose of a constant, legalized to a kernel."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((2, 3, 4), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            moved = bb.emit(relax.op.permute_dims(relax.const(w), [2, 0, 1]))
            out = bb.emit_output(relax.op.add(x, moved))
        bb.emit_func_output(out)
    return relax.transform.LegalizeOps()(bb.get())


def test_folds_with_unoptimized_builds_then_restores_the_build_function():
    real = tvm_ffi.get_global_func(BUILD_FUNCTION)
    levels = []

    def spy(func, target):
        levels.append(int(tvm.target.Target(target).export().get("opt-level", -1)))
        return real(func, target)

    w = np.arange(24, dtype="float32").reshape(3, 4, 2)
    tvm_ffi.register_global_func(BUILD_FUNCTION, spy, override=True)
    try:
        folded = fold_constants(_module(w))
        a = te.placeholder((4,), name="a")
        tvm_ffi.get_global_func(BUILD_FUNCTION)(te.create_prim_func([a, te.compute((4,), lambda i: a[i] + 1)]),
                                               tvm.target.Target("llvm"))
    finally:
        tvm_ffi.register_global_func(BUILD_FUNCTION, real, override=True)
    assert levels == [0, -1], levels  # the fold's kernel at opt-level 0; afterwards the spy as it was
    constants, calls = [], []

    def visit(e) -> None:
        if isinstance(e, tvm.ir.expr.GenericConst):
            constants.append(e.value.numpy())
        elif isinstance(e, relax.Call) and e.op.name == "relax.call_tir":
            calls.append(e)

    relax.analysis.post_order_visit(folded["main"], visit)
    assert len(calls) == 1 and len(constants) == 1  # only the add is left to run
    assert (constants[0] == w.transpose(2, 0, 1)).all()
