"""Matmuls reshaped and padded into shapes the matmul schedule takes.

``schedules.schedule_matmul`` takes a product of at least 2 rows whose columns fill whole
vectors; dlight's generic schedules took the rest. torch's ``MultiheadAttention`` exports its
projections as [L, 1, E] @ [E, 3E]: L one-row products in a batch loop (a ViT's QKV projection,
197 x 192 x 576, took 11 ms a layer that way, 0.3 ms as one product); a ViT's attention scores
have 197 columns. Here a float32 product with static shapes:

- ``x[..., 1, K] @ C[K, N]`` with leading dims multiplies ``x`` as [rows, K] (one product) and is
  reshaped back;
- of 2 rows or more, whose columns do not fill whole vectors, gets zero columns up to a multiple
  of the lanes (a constant's at compile time, a computed value's by a pad that fuses into its
  producer), sliced off the product.

Rows are ``dot_matmul.computed_rows``' (in the legalization); one-row dense layers become convs
before this (``passes.dense_as_conv``).
"""

from __future__ import annotations

import math

import numpy as np
import tvm
from tvm import relax

from neo_local.backends.cpu_schedule.rewriting import rewrite_functions, static_shape


def _padded(expr: relax.Expr, extra: int, bb: relax.BlockBuilder) -> relax.Expr:
    """``expr`` with ``extra`` zero columns (last axis) more."""
    if not extra:
        return expr
    if isinstance(expr, tvm.ir.expr.Constant):
        data = expr.value.numpy()
        return relax.const(np.pad(data, [(0, 0)] * (data.ndim - 1) + [(0, extra)]), str(data.dtype))
    widths = [0] * (2 * len(static_shape(expr)))
    widths[-1] = extra
    return bb.emit(relax.op.nn.pad(expr, widths))


@relax.expr_functor.mutator
class _MatmulShapes(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule, lanes: int):
        super().__init__(mod)
        self.lanes = lanes

    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802 (TVM's naming)
        call = super().visit_call_(call)
        if call.op != tvm.ir.Op.get("relax.matmul") or any(str(e.ty.dtype) != "float32" for e in (call, *call.args)):
            return call
        (x, w), bb = call.args, self.builder_
        xs, ws, out = static_shape(x), static_shape(w), static_shape(call)
        if xs is None or ws is None or out is None or len(xs) < 2 or len(ws) < 2:
            return call
        n = ws[-1]
        flat = len(ws) == 2 and len(xs) > 2 and xs[-2] == 1 and math.prod(xs[:-2]) > 1
        extra = -n % self.lanes if flat or xs[-2] > 1 else 0  # a one-row product stays a GEMV
        if not extra and not flat:
            return call
        if flat:
            x = bb.emit(relax.op.reshape(x, [math.prod(xs[:-1]), xs[-1]]))
        y = relax.op.matmul(x, _padded(w, extra, bb))
        if extra:
            rank = 2 if flat else len(out)
            y = relax.op.strided_slice(bb.emit(y), axes=[rank - 1], begin=[0], end=[n])
        return relax.op.reshape(bb.emit(y), out) if flat else y


def matmul_shapes(mod: tvm.IRModule, lanes: int) -> tvm.IRModule:
    """``mod`` with its matmuls in the shapes the module docstring gives."""
    return rewrite_functions(_MatmulShapes(mod, lanes), mod)
