"""Integer-arithmetic ONNX operators of quantized models: QLinearConv, QLinearMatMul, ConvInteger.

They are computed as onnxruntime computes them: zero points subtracted in int32, an exact int32
convolution or matmul (plus the int32 bias), then requantized in float32 with the combined scale
``x_scale · w_scale / y_scale``, rounded half to even, the output zero point added and the result
saturated to the output type. Rewriting them as DequantizeLinear → float op → QuantizeLinear
would round differently in the last bit. The convolution itself is TVM's Conv converter on int32
operands (auto_pad, strides, dilations, groups as for float Conv).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import dtype_of, static_shape
from neo_local.frontends.onnx_converters.tvm_hook import call_tvm_converter


def _along(bb: Any, value: Any, axis: int, ndim: int) -> Any:
    """A scalar stays; a 1-D per-channel/row/column ``value`` is reshaped to broadcast along
    ``axis`` of an ``ndim``-D tensor."""
    from tvm import relax

    if len(static_shape(bb, value, "quantization parameter")) == 0:
        return value
    shape = [1] * ndim
    shape[axis] = -1
    return relax.op.reshape(value, shape)


def _centered(bb: Any, x: Any, zero_point: Any, axis: int) -> Any:
    """``x - zero_point`` in int32 (no zero point: x in int32)."""
    from tvm import relax

    x32 = relax.op.astype(x, "int32")
    if zero_point is None:
        return bb.emit(x32)
    ndim = len(static_shape(bb, x, "quantized input"))
    return bb.emit(relax.op.subtract(x32, _along(bb, relax.op.astype(zero_point, "int32"), axis, ndim)))


def _requantize(bb: Any, acc: Any, scale: Any, zero_point: Any) -> Any:
    """round_half_even(acc · scale) + zero_point, saturated to the zero point's type."""
    from tvm import relax

    out_dtype = dtype_of(bb, zero_point)
    info = np.iinfo(out_dtype)
    y = relax.op.round(relax.op.multiply(relax.op.astype(acc, "float32"), scale))
    y = relax.op.add(y, relax.op.astype(zero_point, "float32"))
    return relax.op.astype(relax.op.clip(y, float(info.min), float(info.max)), out_dtype)


def _f32(x: Any) -> Any:
    from tvm import relax

    return relax.op.astype(x, "float32")


def _combined_scale(bb: Any, x_scale: Any, w_scale: Any, y_scale: Any, w_axis: int, ndim: int) -> Any:
    """x_scale · w_scale / y_scale in float32, ``w_scale`` per channel along ``w_axis``."""
    from tvm import relax

    return bb.emit(relax.op.divide(relax.op.multiply(_f32(x_scale), _along(bb, _f32(w_scale), w_axis, ndim)), _f32(y_scale)))


def _int_conv(bb: Any, node: OnnxNode, x: Any, x_zp: Any, w: Any, w_zp: Any) -> Any:
    """The int32 convolution of the zero-point-centred operands (w's zero point per output channel)."""
    return bb.emit(call_tvm_converter(bb, "Conv", [_centered(bb, x, x_zp, 1), _centered(bb, w, w_zp, 0), None], node))


@register("ConvInteger", 10)
def conv_integer(bb: Any, node: OnnxNode) -> Any:
    """int32 convolution of (x - x_zero_point) and (w - w_zero_point)."""
    return _int_conv(bb, node, node.input(0), node.input(2), node.input(1), node.input(3))


@register("QLinearConv", 10)
def qlinear_conv(bb: Any, node: OnnxNode) -> Any:
    """Quantized convolution with int32 bias, per-tensor or per-output-channel weight scale."""
    from tvm import relax

    x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias = (node.input(i) for i in range(9))
    acc = _int_conv(bb, node, x, x_zp, w, w_zp)
    ndim = len(static_shape(bb, x, "QLinearConv input x"))
    if bias is not None:
        acc = relax.op.add(acc, _along(bb, relax.op.astype(bias, "int32"), 1, ndim))
    return _requantize(bb, acc, _combined_scale(bb, x_scale, w_scale, y_scale, 1, ndim), y_zp)


@register("QLinearMatMul", 10)
def qlinear_matmul(bb: Any, node: OnnxNode) -> Any:
    """Quantized matmul; a's scale/zero point per tensor or per row, b's per tensor or per column."""
    from tvm import relax

    a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp = (node.input(i) for i in range(8))
    a_ndim = len(static_shape(bb, a, "QLinearMatMul input a"))
    b_ndim = len(static_shape(bb, b, "QLinearMatMul input b"))
    acc = relax.op.matmul(_centered(bb, a, a_zp, a_ndim - 2), _centered(bb, b, b_zp, b_ndim - 1), out_dtype="int32")
    row_scale = _along(bb, a_scale, a_ndim - 2, a_ndim)
    return _requantize(bb, bb.emit(acc), _combined_scale(bb, row_scale, b_scale, y_scale, b_ndim - 1, b_ndim), y_zp)
