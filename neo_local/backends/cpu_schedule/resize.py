"""Bilinear image resizes in two passes: each input row interpolated along x, then pairs of those
rows along y.

topi's resize computes every output element from four input pixels, its coordinates and weights
recomputed per element, one element at a time (the generic schedule vectorizes no row wider than
64): a segmentation head's 8x upsample of 21 class maps from 32x32 to 256x256 took 2.35 ms, where
onnxruntime's took 0.47. In two passes, their rows in vectors (``schedules._schedule_resize``),
the first (``RESIZE_X``: the input's rows at the output's width, an eighth of the output there)
gathers, but the second (``RESIZE_Y``), the size of the output, reads two whole rows and writes
one: contiguous vectors. The arithmetic is topi's (its coordinate transform, floor, clamping and
lerps in the same order), so the values are the same. NCHW only: in the blocked layout
(``passes._BlockedRegion._resize``) topi's vectors are channels, each pixel's coordinates shared
by a vector, and its one pass was the faster (a 2x upsample of 64 channels at 64x64: 0.19 ms, in
two passes 0.23).
"""

from __future__ import annotations

from typing import Callable

import tvm
from tvm import relax, s_tir, te, tirx
from tvm.topi.image.resize import get_inx

from neo_local.backends.cpu_schedule.rewriting import static_shape

RESIZE_X = "resize_x"
RESIZE_Y = "resize_y"
#: the coordinate transforms computed here (topi's ``get_inx``); tf_crop_and_resize reads a region
MODES = ("half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel")


def _axis(out_size: int, in_size: int, mode: str, i):
    """(first input index, second input index, weight of the second) along one axis, topi's way."""
    where = get_inx(i, tirx.const(in_size, "int32"), tirx.const(out_size, "int32"), mode)
    first = te.floor(where).astype("int32")
    weight = where - first

    def clamp(j):
        return te.max(te.min(j, in_size - 1), 0)

    return clamp(first), clamp(first + 1), weight


def _lerp(a, b, t):
    return a * (1.0 - t) + b * t


def resize_linear(data: te.Tensor, out_hw: tuple[int, int], mode: str) -> te.Tensor:
    """Bilinear resize of NCHW ``data`` to ``out_hw`` in two stages (see the module)."""
    n, c, in_h, in_w = (int(d) for d in data.shape)
    out_h, out_w = out_hw

    def along_x(b, k, y, x):
        x0, x1, t = _axis(out_w, in_w, mode, x)
        return _lerp(data[b, k, y, x0], data[b, k, y, x1], t)

    rows = te.compute((n, c, in_h, out_w), along_x, name=RESIZE_X)

    def along_y(b, k, y, x):
        y0, y1, t = _axis(out_h, in_h, mode, y)
        return _lerp(rows[b, k, y0, x], rows[b, k, y1, x], t)

    return te.compute((n, c, out_h, out_w), along_y, name=RESIZE_Y)


def _applies(call: relax.Call) -> bool:
    a = call.attrs
    return (str(a.method) == "linear" and str(a.coordinate_transformation_mode) in MODES
            and str(a.layout) == "NCHW" and static_shape(call.args[0]) is not None
            and static_shape(call) is not None
            and call.args[0].ty.dtype == "float32" and str(call.ty.dtype) == "float32")


def legalizer() -> Callable[[relax.BlockBuilder, relax.Call], relax.Expr]:
    """``LegalizeOps``' rule for ``image.resize2d``: ``resize_linear`` where it applies, else TVM's."""
    default = tvm.ir.Op.get("relax.image.resize2d").get_attr("FLegalize")

    def legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        if not _applies(call):
            return default(bb, call)
        out = static_shape(call)
        return bb.call_te(resize_linear, call.args[0], (out[2], out[3]),
                          str(call.attrs.coordinate_transformation_mode), primfunc_name_hint="resize2d")

    return legalize


def is_resize(func: tirx.PrimFunc) -> bool:
    """Whether ``func`` holds ``resize_linear``'s two stages: the generic schedule then keeps the
    first a pass of its own (``schedules.schedule_generic``'s ``keep``)."""
    sch = s_tir.Schedule(func)
    names = {sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))}
    return {RESIZE_X, RESIZE_Y} <= names
