"""ONNX LpNormalization (no ONNX function body to inline), and the LayerNormalization and
RMSNormalization forms TVM's converters get wrong."""

from __future__ import annotations

from typing import Any

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant, dtype_of, static_shape
from neo_local.frontends.onnx_converters.tvm_hook import call_tvm_converter


@register("LpNormalization", 1)
def lp_normalization(bb: Any, node: OnnxNode) -> Any:
    """x / ‖x‖ₚ along ``axis`` (p = 1 or 2); a zero norm gives zeros, as onnxruntime does."""
    from tvm import relax

    x = node.input(0)
    p = int(node.attr("p", 2))
    if p not in (1, 2):
        raise ValueError(f"LpNormalization: p={p} is not defined by ONNX (1 or 2)")
    axis = int(node.attr("axis", -1))
    magnitude = relax.op.abs(x) if p == 1 else relax.op.multiply(x, x)
    norm = relax.op.sum(magnitude, axis=[axis], keepdims=True)
    if p == 2:
        norm = relax.op.sqrt(norm)
    norm = bb.emit(norm)
    zero = constant(0, dtype_of(bb, x))
    safe = relax.op.where(relax.op.equal(norm, zero), relax.op.ones_like(norm), norm)
    return relax.op.where(relax.op.equal(norm, zero), relax.op.zeros_like(x), relax.op.divide(x, safe))


def _trailing_axes(bb: Any, node: OnnxNode) -> list[int]:
    """The axes from ``axis`` to the last, which Layer/RMSNormalization normalise over."""
    ndim = len(static_shape(bb, node.input(0), f"{node.op_type} input X"))
    return list(range(int(node.attr("axis", -1)) % ndim, ndim))


def _scaled(bb: Any, node: OnnxNode, normalised: Any, scale: Any, bias: Any) -> Any:
    """``normalised · scale (+ bias)`` back in X's dtype (statistics are float32: stash_type 1)."""
    from tvm import relax

    y = relax.op.multiply(normalised, relax.op.astype(scale, "float32"))
    if bias is not None:
        y = relax.op.add(y, relax.op.astype(bias, "float32"))
    return bb.emit(relax.op.astype(y, dtype_of(bb, node.input(0))))


def _float32_statistics(node: OnnxNode) -> None:
    if int(node.attr("stash_type", 1)) != 1:
        raise ValueError(f"{node.op_type}: only stash_type 1 (float32 statistics) is implemented")


def _inv_std(bb: Any, node: OnnxNode, centred: Any, axes: list[int]) -> Any:
    """1 / sqrt(mean(centred², axes) + epsilon), keeping the reduced axes."""
    from tvm import relax

    mean_square = relax.op.mean(relax.op.multiply(centred, centred), axis=axes, keepdims=True)
    epsilon = constant(float(node.attr("epsilon", 1e-5)), "float32")
    return bb.emit(relax.op.rsqrt(relax.op.add(mean_square, epsilon)))


@register("LayerNormalization", 17)
def layer_normalization(bb: Any, node: OnnxNode) -> Any:
    """TVM's converter when only Y is used; with the Mean and InvStdDev outputs (training-style
    graphs), all three computed here, since TVM's converter returns Y alone."""
    from tvm import relax

    x, scale, bias = node.input(0), node.input(1), node.input(2)
    if node.num_outputs == 1:
        return call_tvm_converter(bb, "LayerNormalization", [x, scale, bias], node)
    _float32_statistics(node)
    axes = _trailing_axes(bb, node)
    x32 = bb.emit(relax.op.astype(x, "float32"))
    mean = bb.emit(relax.op.mean(x32, axis=axes, keepdims=True))
    centred = bb.emit(relax.op.subtract(x32, mean))
    inv_std = _inv_std(bb, node, centred, axes)
    return relax.Tuple([_scaled(bb, node, relax.op.multiply(centred, inv_std), scale, bias), mean, inv_std])


@register("RMSNormalization", 23)
def rms_normalization(bb: Any, node: OnnxNode) -> Any:
    """TVM's converter, except over all axes (axis 0), where TVM 0.27's fails to build
    ("Tensor dimension mismatch in read ndim"): computed here then."""
    from tvm import relax

    x, scale = node.input(0), node.input(1)
    axes = _trailing_axes(bb, node)
    if axes[0] != 0:
        return call_tvm_converter(bb, "RMSNormalization", [x, scale], node)
    _float32_statistics(node)
    x32 = bb.emit(relax.op.astype(x, "float32"))
    return _scaled(bb, node, relax.op.multiply(x32, _inv_std(bb, node, x32, axes)), scale, None)
