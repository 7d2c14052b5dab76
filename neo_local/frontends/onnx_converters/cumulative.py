"""ONNX CumProd (opset 26; TVM 0.27 converts CumSum only)."""

from __future__ import annotations

from typing import Any

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant_value


@register("CumProd", 26)
def cum_prod(bb: Any, node: OnnxNode) -> Any:
    """Cumulative product along a constant ``axis``; ``exclusive`` and ``reverse`` as ONNX says."""
    from tvm import relax

    axis_value = constant_value(node.input(1))
    if axis_value is None or axis_value.size != 1:
        raise ValueError("CumProd: the axis must be a constant scalar")
    axis = int(axis_value.reshape(-1)[0])
    reverse = bool(node.attr("reverse", 0))
    data = bb.emit(relax.op.flip(node.input(0), axis)) if reverse else node.input(0)
    result = bb.emit(relax.op.cumprod(data, axis, exclusive=bool(node.attr("exclusive", 0))))
    return relax.op.flip(result, axis) if reverse else result
