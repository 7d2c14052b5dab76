"""Operators whose TVM 0.27 converter departs from ONNX at the edges of their definition.

Each converter computes the edge ONNX defines and leaves the rest to TVM's own converter:
IsInf's sign flags, BitShift by a negative amount or by the bit width or more, float Mod
(fmod=0) with an infinite divisor, ReduceMax/ReduceMin over an empty axis, of all-infinite
values and of bools, SpaceToDepth's CRD mode, ConvTranspose's output_shape,
BatchNormalization's running statistics in training mode, and float16 MatMul/Conv/Softmax sums.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant, constant_value, dtype_of, static_shape
from neo_local.frontends.onnx_converters.tvm_hook import tvm_convert_map


def tvm_converter(bb: Any, node: OnnxNode, **attrs: Any) -> Any:
    """TVM's own converter of ``node`` (attributes overridden by ``attrs``), given its inputs as
    TVM's importer gives them (``onnx_input``: None past the last one) and the params argument
    its ``get_constant`` unpacks as (graph nodes, parameters): both empty, since initializers
    reach converters as constants. (``tvm_hook.call_tvm_converter`` passes a list and None.)"""
    from tvm.relax.frontend.onnx.onnx_frontend import onnx_input

    convert = tvm_convert_map()[node.op_type].get_converter(node.opset)
    return convert(bb, onnx_input(node.inputs), {**node.attrs, **attrs}, [{}, {}])


@register("IsInf", 10)
def is_inf(bb: Any, node: OnnxNode) -> Any:
    """+inf where ``detect_positive``, -inf where ``detect_negative`` (TVM ignores both)."""
    from tvm import relax

    x = node.input(0)
    dtype = dtype_of(bb, x)
    found = [relax.op.equal(x, constant(sign * np.inf, dtype))
             for sign, flag in ((1, "detect_positive"), (-1, "detect_negative")) if int(node.attr(flag, 1))]
    if not found:
        return relax.op.zeros(static_shape(bb, x, "IsInf input"), "bool")
    return found[0] if len(found) == 1 else relax.op.logical_or(*found)


@register("BitShift", 11)
def bit_shift(bb: Any, node: OnnxNode) -> Any:
    """Shifts by an amount outside 0..width-1 give what a full-width shift gives: 0, or -1 for
    a right shift of a negative value (LLVM leaves such shifts undefined)."""
    from tvm import relax

    x, y = node.input(0), node.input(1)
    dtype = dtype_of(bb, x)
    width = np.dtype(dtype).itemsize * 8
    in_range = bb.emit(relax.op.logical_and(
        relax.op.greater_equal(y, constant(0, dtype)), relax.op.less(y, constant(width, dtype))))
    amount = relax.op.where(in_range, y, relax.op.zeros_like(y))
    left = node.attr("direction") == "LEFT"
    shifted = (relax.op.left_shift if left else relax.op.right_shift)(x, amount)
    zero = constant(0, dtype)
    full = zero if left else relax.op.where(relax.op.less(x, zero), constant(-1 if dtype.startswith("int") else 0, dtype), zero)
    return relax.op.where(in_range, shifted, full)


@register("Mod", 10)
def mod(bb: Any, node: OnnxNode) -> Any:
    """Float floor-mod (fmod=0) by ±inf: x where x and the divisor agree in sign (or x is 0),
    else the divisor, as Python and numpy define it (TVM's x - floor(x/y)·y gives NaN)."""
    from tvm import relax

    x, y = node.input(0), node.input(1)
    dtype = dtype_of(bb, x)
    if int(node.attr("fmod", 0)) or not dtype.startswith("float"):
        return tvm_converter(bb, node)
    zero = constant(0, dtype)
    opposite = relax.op.logical_or(
        relax.op.logical_and(relax.op.less(x, zero), relax.op.greater(y, zero)),
        relax.op.logical_and(relax.op.greater(x, zero), relax.op.less(y, zero)))
    finite_x = relax.op.logical_not(relax.op.logical_or(relax.op.isinf(x), relax.op.isnan(x)))
    by_infinity = relax.op.logical_and(relax.op.isinf(y), finite_x)
    return relax.op.where(by_infinity, relax.op.where(opposite, y, x), tvm_converter(bb, node))


def _reduced_shape(node: OnnxNode, shape: tuple[int, ...]) -> tuple[tuple[int, ...], bool] | None:
    """(output shape, whether a reduced axis is empty); None when the axes are not constants."""
    axes_input = node.input(1) if node.opset >= 18 else None
    if axes_input is not None:
        value = constant_value(axes_input)
        if value is None:
            return None
        axes = [int(a) for a in value.reshape(-1)]
    else:
        axes = node.attr("axes", None)
    if not axes:
        if int(node.attr("noop_with_empty_axes", 0)):
            return shape, False
        axes = list(range(len(shape)))
    axes = {int(a) % len(shape) for a in axes}
    keep = int(node.attr("keepdims", 1))
    out = tuple(1 if d in axes else n for d, n in enumerate(shape) if keep or d not in axes)
    return out, any(shape[d] == 0 for d in axes)


#: ops whose values are never -inf (a ReduceMax of them needs no test for rows of -inf: a
#: PointNet's max over points after a relu), and never +inf (a ReduceMin's)
_NEVER_MINUS_INF = ("relax.nn.relu", "relax.sigmoid", "relax.exp", "relax.tanh")
_NEVER_PLUS_INF = ("relax.sigmoid", "relax.tanh")


def _never_the_identity(bb: Any, x: Any, sign: int) -> bool:
    """Whether ``x`` is the value of an op that never gives the reduction's identity (``sign`` as
    ``_extreme_of_empty``'s)."""
    from tvm import relax

    value = bb.lookup_binding(x) if isinstance(x, relax.Var) else x
    ops = _NEVER_PLUS_INF if sign > 0 else _NEVER_MINUS_INF
    return isinstance(value, relax.Call) and getattr(value.op, "name", None) in ops


def _extreme_of_empty(bb: Any, node: OnnxNode, sign: int) -> Any:
    """ReduceMax (sign -1) / ReduceMin (+1) as ONNX defines them where TVM's converter does not:
    over an empty axis the result is the identity (-inf / +inf, the integer extremes); where
    every reduced value is ∓inf the result is ∓inf (TVM starts from the lowest / highest finite
    float, so a fully masked attention row reduced to -FLT_MAX instead of -inf); bool
    reductions (any / all) go through uint8, which TVM reduces."""
    from tvm import relax

    x = node.input(0)
    dtype = dtype_of(bb, x)
    if dtype == "bool":
        as_bytes = dataclasses.replace(node, inputs=(bb.emit(relax.op.astype(x, "uint8")), *node.inputs[1:]))
        return relax.op.astype(bb.emit(_extreme_of_empty(bb, as_bytes, sign)), "bool")
    reduced = _reduced_shape(node, static_shape(bb, x, f"{node.op_type} input"))
    floating = dtype.startswith(("float", "bfloat"))
    if reduced is None or (not reduced[1] and not floating):
        return tvm_converter(bb, node)
    if floating:
        identity = constant(sign * np.inf, dtype)
    else:
        identity = constant(np.iinfo(dtype).max if sign > 0 else np.iinfo(dtype).min, dtype)
    if reduced[1]:
        return relax.op.broadcast_to(identity, reduced[0])
    if _never_the_identity(bb, x, sign):
        return tvm_converter(bb, node)
    # whether each reduced row holds a value other than the identity: a ReduceMax of that test over
    # the node's own axes (input or attribute as its opset has them; a ReduceSum's axes are an input
    # from opset 13, where ReduceMax's stayed an attribute to 17, and it summed the whole tensor)
    real = dataclasses.replace(node, op_type="ReduceMax", inputs=(
        bb.emit(relax.op.astype(relax.op.not_equal(x, identity), "uint8")), *node.inputs[1:]))
    none_real = relax.op.equal(bb.emit(tvm_converter(bb, real)), constant(0, "uint8"))
    return relax.op.where(none_real, identity, bb.emit(tvm_converter(bb, node)))


@register("ReduceMax", 1)
def reduce_max(bb: Any, node: OnnxNode) -> Any:
    return _extreme_of_empty(bb, node, -1)


@register("ReduceMin", 1)
def reduce_min(bb: Any, node: OnnxNode) -> Any:
    return _extreme_of_empty(bb, node, 1)


@register("SpaceToDepth", 1)
def space_to_depth(bb: Any, node: OnnxNode) -> Any:
    """Blocks of ``blocksize``² pixels to channels: depth-column-row (DCR, the default) puts
    the block offset before the channel, CRD after it (TVM knows DCR only)."""
    from tvm import relax

    n, c, h, w = static_shape(bb, node.input(0), "SpaceToDepth input")
    b = int(node.attr("blocksize"))
    blocks = relax.op.reshape(node.input(0), (n, c, h // b, b, w // b, b))
    order = [0, 1, 3, 5, 2, 4] if node.attr("mode", "DCR") == "CRD" else [0, 3, 5, 1, 2, 4]
    return relax.op.reshape(relax.op.permute_dims(blocks, order), (n, c * b * b, h // b, w // b))


@register("ConvTranspose", 1)
def conv_transpose(bb: Any, node: OnnxNode) -> Any:
    """With ``output_shape``: the pads it implies (SAME_UPPER puts the odd one at the end,
    otherwise at the start) and, where it asks for more than the convolution covers, output
    padding, as onnxruntime computes them; TVM's converter then builds it."""
    output_shape = node.attr("output_shape", None)
    if output_shape is None:
        return tvm_converter(bb, node)
    x_shape = static_shape(bb, node.input(0), "ConvTranspose input")
    w_shape = static_shape(bb, node.input(1), "ConvTranspose weights")
    spatial = len(x_shape) - 2
    out = list(output_shape)[-spatial:]
    strides = list(node.attr("strides", None) or [1] * spatial)
    dilations = list(node.attr("dilations", None) or [1] * spatial)
    extra = list(node.attr("output_padding", None) or [0] * spatial)
    begins, ends, padding = [], [], []
    for i in range(spatial):
        covered = (x_shape[2 + i] - 1) * strides[i] + extra[i] + (w_shape[2 + i] - 1) * dilations[i] + 1
        total = max(0, covered - out[i])
        head = total // 2 if node.attr("auto_pad", "NOTSET") == "SAME_UPPER" else total - total // 2
        begins.append(head)
        ends.append(total - head)
        padding.append(extra[i] + max(0, out[i] - covered))
    attrs = {k: v for k, v in node.attrs.items() if k not in ("output_shape", "auto_pad")}
    plain = dataclasses.replace(node, attrs={**attrs, "pads": begins + ends, "output_padding": padding})
    return tvm_converter(bb, plain)


@register("BatchNormalization", 14)
def batch_normalization(bb: Any, node: OnnxNode) -> Any:
    """Training mode: ONNX's running statistics are ``running · momentum + batch · (1 −
    momentum)``, Relax's batch_norm weights them the other way round."""
    if not int(node.attr("training_mode", 0)):
        return tvm_converter(bb, node)
    return tvm_converter(bb, node, momentum=1.0 - float(node.attr("momentum", 0.9)))


def _accumulate_in_float32(bb: Any, node: OnnxNode) -> Any:
    """float16 products summed in float32 and rounded once, as numpy (the ONNX reference) and
    onnxruntime's CPU kernels do; TVM sums in float16 and drifts by a few units in the last
    place over a long reduction. Other types: TVM's converter as it is."""
    from tvm import relax

    if dtype_of(bb, node.input(0)) != "float16":
        return tvm_converter(bb, node)
    wide = tuple(None if v is None else bb.emit(relax.op.astype(v, "float32")) for v in node.inputs)
    return relax.op.astype(bb.emit(tvm_converter(bb, dataclasses.replace(node, inputs=wide))), "float16")


@register("MatMul", 1)
def matmul(bb: Any, node: OnnxNode) -> Any:
    return _accumulate_in_float32(bb, node)


@register("Conv", 1)
def conv(bb: Any, node: OnnxNode) -> Any:
    return _accumulate_in_float32(bb, node)


@register("Softmax", 1)
def softmax(bb: Any, node: OnnxNode) -> Any:
    return _accumulate_in_float32(bb, node)
