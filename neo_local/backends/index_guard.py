"""Turn out-of-range gather indices into a clear error instead of a segfault.

Every framework's gather/embedding lookup reaches Relax as ``take(..., mode="fast")``, which
reads memory at whatever index it is given: an out-of-vocabulary token id fed to a compiled text
model would crash the user's process. Before each take whose indices are computed at run time,
this pass routes the indices through a small TIR kernel that asserts each one is in range and
copies it through (index tensors are tiny next to the tables they index). A TIR assert compiles
into the kernel itself and raises through the TVM FFI error call that every artifact already
needs, so the check works with the bare runtime on every target; Relax's ``assert_op`` does not
(it needs the compiler library at run time). Models without runtime-indexed lookups (most CNNs)
are returned unchanged.
"""

from __future__ import annotations

import math

import tvm
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator
from tvm.script import tirx as T

_TAKE = tvm.ir.Op.get("relax.take")


def _check_kernel(count: int, extent: int, dtype: str) -> tvm.tirx.PrimFunc:
    """Copy ``count`` indices, raising IndexError on the first outside ``0..extent-1``."""
    message = (
        f"index out of range: a lookup (Gather, embedding) into an axis of {extent} entries got an index "
        f"outside 0..{extent - 1} (negative indices count from the end only where the framework allows them)"
    )

    # Relax's fusion analysis wants an s_tir block body, which the tirx verifier does not know
    @T.prim_func(private=True, check_well_formed=False)
    def check_indices(a: T.Buffer((count,), dtype), b: T.Buffer((count,), dtype)):
        T.func_attr({"tirx.is_scheduled": True, "tirx.noalias": True, "op_pattern": 8})
        with T.sblock("root"):
            for i in range(count):
                with T.sblock("check_indices"):
                    vi = T.axis.spatial(count, i)
                    T.reads(a[vi])
                    T.writes(b[vi])
                    assert a[vi] >= T.cast(0, dtype) and a[vi] < T.cast(extent, dtype), ("IndexError", [message])
                    b[vi] = a[vi]

    return check_indices


def _static_dims(expr: relax.Expr) -> list[int] | None:
    shape = getattr(expr.ty, "shape", None)
    if shape is None or not hasattr(shape, "values"):
        return None
    if not all(isinstance(d, tvm.tirx.IntImm) for d in shape.values):
        return None
    return [int(d) for d in shape.values]


@mutator
class _TakeGuard(PyExprMutator):
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.guarded = 0

    def visit_call_(self, call: relax.Call) -> relax.Expr:
        call = super().visit_call_(call)
        if call.op != _TAKE or call.attrs.mode != "fast" or isinstance(call.args[1], tvm.ir.GenericConst):
            return call
        data, indices = call.args
        data_dims, index_dims = _static_dims(data), _static_dims(indices)
        if data_dims is None or index_dims is None:
            return call  # dynamic shapes: left as TVM builds them
        extent = data_dims[0 if call.attrs.axis is None else int(call.attrs.axis)]
        count, dtype = math.prod(index_dims), indices.ty.dtype
        kernel = self.builder_.add_func(_check_kernel(count, extent, dtype), "neo_check_indices")
        flat = self.builder_.emit(relax.op.reshape(indices, (count,)))
        checked = self.builder_.emit(relax.call_tir(kernel, [flat], relax.TensorType((count,), dtype)))
        self.guarded += 1
        return relax.Call(call.op, [data, relax.op.reshape(checked, index_dims)], call.attrs)


def guard_takes(mod: tvm.IRModule) -> tuple[tvm.IRModule, int]:
    """The module with range-checked indices before runtime-indexed takes, and how many."""
    guard = _TakeGuard(mod)
    for gvar, func in mod.functions_items():
        if isinstance(func, relax.Function):
            guard.builder_.update_func(gvar, guard.visit_expr(func))
    if guard.guarded == 0:
        return mod, 0
    return guard.builder_.get(), guard.guarded
