"""Transposed convs as plain convs of their output phases, so that the blocked conv steps take them.

TVM's blocked ``ConvertLayout`` fails on ``nn.conv2d_transpose`` ("Layouts must have the same
size"), which sent a UNet with two up-convs to the plain build, and left in NCHW its legalized
loop nest ran 33x onnxruntime's time. Each output pixel y of a transposed conv with stride s
and padding P has a phase r = (y + P) mod s and reads the input at t - m, t = (y + P) div s,
through the kernel taps r + s m (m = 0, 1, ...): per phase, an ordinary conv with a kernel of
ceil(K / s) taps. All s x s phases are one conv over the input (no zeros spread into it: those
cost 4x the multiply-adds at stride 2) with s^2 x the output channels, each phase's kernel
flipped and padded with zero taps where it has fewer (``phase_kernels``); a depth-to-space
(reshape, transpose, reshape, slice: one gather once fused) puts the phases' pixels in place.
One of a 1x1 input is a dense layer (``_from_one_pixel``).
Measured (znver3, 2 threads, in one process), against the zero-spread conv this replaced: a small
UNet (two 2x2 stride-2 up-convs) about 1.0x -> 0.49x onnxruntime; a DCGAN generator (a 100-dim
latent to 4x4, four 4x4 stride-2 up-convs to 64x64) 3.2x -> about 1.0x (median of 7 rounds; 0.96
to 1.54). Groups > 1 and dilation are left to TVM.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from neo_local.backends.cpu_schedule.rewriting import rewrite_functions, static_shape


def phase_kernels(weights: np.ndarray, strides: tuple[int, int]) -> np.ndarray:
    """IOHW transposed-conv weights [C, O, K, K'] as the OIHW kernel of the phase conv,
    [sh sw O, C, ceil(K/sh), ceil(K'/sw)]: output channel (ry sw + rx) O + o holds phase (ry, rx)'s
    taps, tap j at kernel index r + s (M - 1 - j) (flipped), zero past the kernel's end."""
    c, o, kh, kw = weights.shape
    sh, sw = strides
    mh, mw = -(-kh // sh), -(-kw // sw)
    out = np.zeros((sh, sw, o, c, mh, mw), weights.dtype)
    for ry in range(sh):
        for jy in range(mh):
            ky = ry + sh * (mh - 1 - jy)
            for rx in range(sw):
                for jx in range(mw):
                    kx = rx + sw * (mw - 1 - jx)
                    if ky < kh and kx < kw:
                        out[ry, rx, :, :, jy, jx] = weights[:, :, ky, kx].T
    return out.reshape(sh * sw * o, c, mh, mw)


@relax.expr_functor.mutator
class _AsConv(relax.PyExprMutator):
    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802 (TVM's naming)
        call = super().visit_call_(call)
        if call.op != tvm.ir.Op.get("relax.nn.conv2d_transpose"):
            return call
        a = call.attrs
        x, w = call.args
        xs, out = static_shape(x), static_shape(call)
        if ((a.data_layout, a.kernel_layout, a.out_layout) != ("NCHW", "IOHW", "NCHW") or int(a.groups) != 1
                or any(int(d) != 1 for d in a.dilation) or xs is None or out is None
                or not isinstance(w, tvm.ir.expr.Constant) or str(call.ty.dtype) != "float32"):
            return call
        (sh, sw), (top, left) = (int(s) for s in a.strides), (int(p) for p in a.padding[:2])
        if xs[2:] == [1, 1] and top + out[2] <= w.value.shape[2] and left + out[3] <= w.value.shape[3]:
            return self._from_one_pixel(x, w.value.numpy(), out, (top, left))
        kernel = phase_kernels(w.value.numpy(), (sh, sw))
        mh, mw = kernel.shape[2:]
        # phase conv rows t = 0 .. (H_out - 1 + top) div sh, reading the input padded by M - 1 before it
        rows, cols = (out[2] - 1 + top) // sh + 1, (out[3] - 1 + left) // sw + 1
        rows, cols = max(rows, xs[2]), max(cols, xs[3])
        bb, n, o = self.builder_, out[0], out[1]
        phases = bb.emit(relax.op.nn.conv2d(
            x, relax.const(kernel), padding=(mh - 1, mw - 1, rows - xs[2], cols - xs[3]), out_dtype="float32"))
        cells = bb.emit(relax.op.reshape(phases, [n, sh, sw, o, rows, cols]))
        placed = bb.emit(relax.op.permute_dims(cells, [0, 3, 4, 1, 5, 2]))  # [n, o, t, ry, t', rx]
        flat = bb.emit(relax.op.reshape(placed, [n, o, rows * sh, cols * sw]))
        return relax.op.strided_slice(flat, axes=[2, 3], begin=[top, left], end=[top + out[2], left + out[3]])

    def _from_one_pixel(self, x: relax.Expr, weights: np.ndarray, out: list[int], pad: tuple[int, int]
                        ) -> relax.Expr:
        """A transposed conv of a 1x1 input (a generator's latent vector to its first 4x4 map): each
        output pixel is one kernel tap's product, so a dense layer of the input with the taps the
        output keeps (as a conv, 15 of its 16 windows' taps read padding)."""
        n, c = out[0], weights.shape[0]
        (top, left), (o, h, w) = pad, out[1:]
        taps = weights[:, :, top:top + h, left:left + w].reshape(c, o * h * w)
        flat = self.builder_.emit(relax.op.reshape(x, [n, c]))
        dense = self.builder_.emit(relax.op.matmul(flat, relax.const(np.ascontiguousarray(taps)), out_dtype="float32"))
        return relax.op.reshape(dense, [n, o, h, w])


def conv_transpose_as_conv(mod: tvm.IRModule) -> tvm.IRModule:
    """``mod`` with its NCHW float32 transposed convs as convs (module docstring)."""
    return rewrite_functions(_AsConv(mod), mod)
