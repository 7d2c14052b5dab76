"""ONNX LpNormalization (no ONNX function body to inline) and LayerNormalization's extra outputs."""

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


@register("LayerNormalization", 17)
def layer_normalization(bb: Any, node: OnnxNode) -> Any:
    """TVM's converter when only Y is used; with the Mean and InvStdDev outputs (training-style
    graphs), all three computed here, since TVM's converter returns Y alone."""
    from tvm import relax

    x, scale, bias = node.input(0), node.input(1), node.input(2)
    if node.num_outputs == 1:
        return call_tvm_converter(bb, "LayerNormalization", [x, scale, bias], node)
    if int(node.attr("stash_type", 1)) != 1:
        raise ValueError("LayerNormalization: only stash_type 1 (float32 statistics) is implemented")
    ndim = len(static_shape(bb, x, "LayerNormalization input X"))
    axis = int(node.attr("axis", -1)) % ndim
    axes = list(range(axis, ndim))
    x32 = bb.emit(relax.op.astype(x, "float32"))
    mean = bb.emit(relax.op.mean(x32, axis=axes, keepdims=True))
    centred = bb.emit(relax.op.subtract(x32, mean))
    variance = relax.op.mean(relax.op.multiply(centred, centred), axis=axes, keepdims=True)
    epsilon = constant(float(node.attr("epsilon", 1e-5)), "float32")
    inv_std = bb.emit(relax.op.rsqrt(relax.op.add(variance, epsilon)))
    y = relax.op.multiply(relax.op.multiply(centred, inv_std), relax.op.astype(scale, "float32"))
    if bias is not None:
        y = relax.op.add(y, relax.op.astype(bias, "float32"))
    return relax.Tuple([bb.emit(relax.op.astype(y, dtype_of(bb, x))), mean, inv_std])
