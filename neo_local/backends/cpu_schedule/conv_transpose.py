"""Transposed convs as plain convs over the input spread out with zeros, so that the blocked conv
steps take them.

TVM's blocked ``ConvertLayout`` fails on ``nn.conv2d_transpose`` ("Layouts must have the same
size"), which sent a UNet with two up-convs to the plain build, and left in NCHW its legalized
loop nest ran 33x onnxruntime's time. A transposed conv with stride s is the conv of its input
with s - 1 zeros put between neighbouring pixels, padded by kernel - 1 - padding on each side
(plus the output padding at the end), by the kernel flipped in both axes with its in and out
channels swapped. The zeros cost multiply-adds (4x the transposed conv's own at stride 2), but
the conv runs on the blocked schedules; groups > 1, dilation and a padding wider than the kernel
are left to TVM.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from neo_local.backends.cpu_schedule.rewriting import rewrite_functions, static_shape


def _spread(bb: relax.BlockBuilder, x: relax.Expr, shape: list[int], strides: tuple[int, int]) -> relax.Expr:
    """[N, C, H, W] with s - 1 zeros between neighbours along H and W: [N, C, (H-1)sh+1, (W-1)sw+1]."""
    n, c, h, w = shape
    sh, sw = strides
    cells = bb.emit(relax.op.reshape(x, [n, c, h, 1, w, 1]))
    padded = bb.emit(relax.op.nn.pad(cells, [0, 0, 0, 0, 0, 0, 0, sh - 1, 0, 0, 0, sw - 1]))
    flat = bb.emit(relax.op.reshape(padded, [n, c, h * sh, w * sw]))
    return bb.emit(relax.op.strided_slice(flat, axes=[2, 3], begin=[0, 0], end=[(h - 1) * sh + 1, (w - 1) * sw + 1]))


@relax.expr_functor.mutator
class _AsConv(relax.PyExprMutator):
    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802 (TVM's naming)
        call = super().visit_call_(call)
        if call.op != tvm.ir.Op.get("relax.nn.conv2d_transpose"):
            return call
        a = call.attrs
        x, w = call.args
        xs = static_shape(x)
        if ((a.data_layout, a.kernel_layout, a.out_layout) != ("NCHW", "IOHW", "NCHW") or int(a.groups) != 1
                or any(int(d) != 1 for d in a.dilation) or xs is None or not isinstance(w, tvm.ir.expr.Constant)
                or str(call.ty.dtype) != "float32"):
            return call
        weights = w.value.numpy()
        kh, kw = weights.shape[2:]
        top, left, bottom, right = (int(p) for p in a.padding)
        extra_h, extra_w = (int(p) for p in a.output_padding)
        padding = (kh - 1 - top, kw - 1 - left, kh - 1 - bottom + extra_h, kw - 1 - right + extra_w)
        if min(padding) < 0:
            return call
        kernel = np.ascontiguousarray(weights.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
        spread = _spread(self.builder_, x, xs, tuple(int(s) for s in a.strides))
        return relax.op.nn.conv2d(spread, relax.const(kernel), padding=padding, out_dtype="float32")


def conv_transpose_as_conv(mod: tvm.IRModule) -> tvm.IRModule:
    """``mod`` with its NCHW float32 transposed convs as convs (module docstring)."""
    return rewrite_functions(_AsConv(mod), mod)
