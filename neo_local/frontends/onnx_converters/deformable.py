"""ONNX DeformConv (2-D): bilinear sampling at the offset kernel positions, then a grouped
convolution written as a matmul over the sampled columns.

Each sampling point (y, x) reads its four neighbours with ``gather_elements`` on the flattened
image; neighbours outside the image count as zero, which is ONNX's definition (GridSample with
zero padding and aligned corners).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant, dtype_of, index, static_shape


def _kernel_positions(kernel: tuple[int, int], out: tuple[int, int], strides: Any, dilations: Any,
                      pads: Any) -> tuple[np.ndarray, np.ndarray]:
    """Undeformed sampling rows [K, oH, 1] and columns [K, 1, oW] (K = kh * kw, row-major)."""
    (kh, kw), (oh, ow) = kernel, out
    ki, kj = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    rows = ki.reshape(-1, 1, 1) * dilations[0] + np.arange(oh).reshape(1, -1, 1) * strides[0] - pads[0]
    cols = kj.reshape(-1, 1, 1) * dilations[1] + np.arange(ow).reshape(1, 1, -1) * strides[1] - pads[1]
    return rows, cols


@register("DeformConv", 19)
def deform_conv(bb: Any, node: OnnxNode) -> Any:
    """ONNX DeformConv on 4-D inputs; ``group``, ``offset_group``, mask and bias included."""
    from tvm import relax

    x, w, offset, bias, mask = (node.input(i) for i in range(5))
    n, c, h, width = static_shape(bb, x, "DeformConv input X")
    oc, cg, kh, kw = static_shape(bb, w, "DeformConv input W")
    oh, ow = static_shape(bb, offset, "DeformConv input offset")[2:]
    group, offset_group = int(node.attr("group", 1)), int(node.attr("offset_group", 1))
    k, dtype, op = kh * kw, dtype_of(bb, x), relax.op
    rows, cols = _kernel_positions((kh, kw), (oh, ow), node.attr("strides", (1, 1)), node.attr("dilations", (1, 1)),
                                   node.attr("pads", (0, 0, 0, 0)))
    offsets = bb.emit(op.reshape(offset, [n, offset_group, k, 2, oh, ow]))
    y = bb.emit(op.add(index(bb, offsets, 0, axis=3), constant(rows, dtype)))  # [n, G, K, oh, ow]
    xs = bb.emit(op.add(index(bb, offsets, 1, axis=3), constant(cols, dtype)))
    y0, x0 = bb.emit(op.floor(y)), bb.emit(op.floor(xs))
    dy, dx = bb.emit(op.subtract(y, y0)), bb.emit(op.subtract(xs, x0))
    image = bb.emit(op.reshape(x, [n, offset_group, c // offset_group, h * width]))
    points = [n, offset_group, 1, k * oh * ow]
    sampled = None
    for ry, rx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        yc, xc = op.add(y0, constant(ry, dtype)), op.add(x0, constant(rx, dtype))
        weight = op.multiply(dy if ry else op.subtract(constant(1, dtype), dy),
                             dx if rx else op.subtract(constant(1, dtype), dx))
        inside = op.logical_and(_within(yc, h, dtype), _within(xc, width, dtype))
        weight = bb.emit(op.where(inside, weight, op.zeros_like(weight)))
        flat = op.add(op.multiply(op.clip(yc, 0, h - 1), constant(width, dtype)), op.clip(xc, 0, width - 1))
        flat = op.reshape(op.astype(flat, "int64"), points)
        flat = bb.emit(op.broadcast_to(flat, [n, offset_group, c // offset_group, k * oh * ow]))
        term = op.multiply(op.gather_elements(image, flat, axis=3), op.reshape(weight, points))
        sampled = term if sampled is None else op.add(sampled, term)
    if mask is not None:
        sampled = op.multiply(sampled, op.reshape(mask, points))
    columns = bb.emit(op.reshape(sampled, [n, group, cg * k, oh * ow]))
    kernels = op.reshape(w, [1, group, oc // group, cg * k])
    out = op.reshape(op.matmul(kernels, columns), [n, oc, oh, ow])
    return out if bias is None else op.add(out, op.reshape(bias, [1, oc, 1, 1]))


def _within(coordinate: Any, size: int, dtype: str) -> Any:
    from tvm import relax

    return relax.op.logical_and(relax.op.greater_equal(coordinate, constant(0, dtype)),
                                relax.op.less(coordinate, constant(size, dtype)))
