"""ONNX LpNormalization (not a function op in ONNX, so the pre-pass cannot inline it)."""

from __future__ import annotations

from typing import Any

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant, dtype_of


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
