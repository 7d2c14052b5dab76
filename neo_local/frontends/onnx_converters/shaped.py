"""ONNX ConstantOfShape, Split and Upsample where TVM 0.27's converters fail on shapes ONNX allows.

ConstantOfShape with a shape read at run time (TVM leaves a ``broadcast_to`` to an unknown shape
that no pass lowers), Split into zero-size parts (TVM's ``split`` wants strictly increasing
split points), Upsample's nearest mode on any rank with scales given as an input, and
Unsqueeze with scalar axes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant, constant_value, static_shape
from neo_local.frontends.onnx_converters.semantics import tvm_converter


@register("ConstantOfShape", 9)
def constant_of_shape(bb: Any, node: OnnxNode) -> Any:
    """A shape known only at run time is matched to fresh symbolic dimensions, so the
    ``broadcast_to`` lowers like any dynamically shaped op."""
    from tvm import relax
    from tvm.relax.frontend.onnx.onnx_frontend import _tensor_to_shape_expr, get_numpy

    shape = node.input(0)
    if constant_value(shape) is not None or not isinstance(bb.normalize(shape).ty, relax.TensorType):
        return tvm_converter(bb, node)
    rank = static_shape(bb, shape, "ConstantOfShape input")[0]
    matched = _tensor_to_shape_expr(bb, shape, rank, "dim")
    value = node.attr("value")
    fill = get_numpy(value).reshape(()) if value is not None else np.zeros((), "float32")
    return relax.op.broadcast_to(constant(fill, str(fill.dtype)), matched)


def _split_sizes(node: OnnxNode) -> list[int] | None:
    """The explicit split sizes (attribute before opset 13, a constant input from 13), if any."""
    if node.opset < 13:
        sizes = node.attr("split")
        return list(sizes) if sizes else None
    given = node.input(1)
    value = None if given is None else constant_value(given)
    return None if value is None else [int(v) for v in value.reshape(-1)]


@register("Split", 1)
def split(bb: Any, node: OnnxNode) -> Any:
    """Explicit sizes with a zero among them become one slice per output; other splits go to
    TVM's converter."""
    from tvm import relax

    sizes = _split_sizes(node)
    if sizes is None or all(sizes):
        return tvm_converter(bb, node, tvm_custom={"num_outputs": node.num_outputs})
    x = node.input(0)
    axis = int(node.attr("axis", 0)) % len(static_shape(bb, x, "Split input"))
    ends = np.cumsum(sizes).tolist()
    starts = [0, *ends[:-1]]
    return relax.Tuple([bb.emit(relax.op.strided_slice(x, axes=[axis], begin=[b], end=[e]))
                        for b, e in zip(starts, ends)])


@register("Upsample", 9)
def upsample(bb: Any, node: OnnxNode) -> Any:
    """Nearest mode: output index ``o`` along an axis reads input index ``floor(o / scale)``
    (one constant-index take per scaled axis); linear mode goes to TVM's converter, which
    reads the scales as an attribute."""
    from tvm import relax

    x, scales = node.input(0), constant_value(node.input(1))
    if scales is None:
        raise ValueError("Upsample: scales computed at run time are not supported (they set the output shape)")
    mode = node.attr("mode", "nearest")
    if mode != "nearest":
        return tvm_converter(bb, node, scales=[float(s) for s in scales])
    shape = static_shape(bb, x, "Upsample input")
    for axis, (size, scale) in enumerate(zip(shape, scales.tolist())):
        if scale == 1:
            continue
        taken = np.minimum(np.floor(np.arange(int(size * scale)) / scale), size - 1).astype("int64")
        x = bb.emit(relax.op.take(x, constant(taken, "int64"), axis=axis))
    return x


@register("Unsqueeze", 13)
def unsqueeze(bb: Any, node: OnnxNode) -> Any:
    """A scalar constant ``axes`` (onnx's own AffineGrid function body writes one) is read as
    the one-element list onnxruntime takes it for; TVM's converter iterates over it."""
    axes = None if node.input(1) is None else constant_value(node.input(1))
    if axes is not None and axes.ndim == 0:
        node = dataclasses.replace(node, inputs=(node.input(0), constant(axes.reshape(1), "int64")))
    return tvm_converter(bb, node)
