"""Operator forms TVM 0.27 computes differently from ONNX and neo-local does not implement: the
import stops with the operator and the form named instead of compiling a different function."""

from __future__ import annotations

from typing import Any

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant_value
from neo_local.frontends.onnx_converters.semantics import tvm_converter


@register("Dropout", 12)
def dropout(bb: Any, node: OnnxNode) -> Any:
    """Training mode draws a random mask, which TVM's converter ignores (it is the identity)."""
    training = node.input(2)
    ratio = node.input(1)
    if training is not None and _maybe_true(training) and _maybe_true(ratio, absent=True):
        raise ValueError("Dropout with training_mode true is not supported: it draws random masks; export the "
                         "model for inference (eval mode), where Dropout is the identity")
    return tvm_converter(bb, node)


@register("RoiAlign", 10)
def roi_align(bb: Any, node: OnnxNode) -> Any:
    """ONNX's max mode takes the maximum of the bilinear samples' weighted values; TVM's differs."""
    if node.attr("mode", "avg") == "max":
        raise ValueError("RoiAlign with mode 'max' is not supported: TVM's max pooling of the samples differs "
                         "from ONNX's definition; mode 'avg' is")
    return tvm_converter(bb, node)


def _maybe_true(expr: Any, absent: bool = False) -> bool:
    """Whether an optional operand may be non-zero: absent ones count as ``absent``, run-time ones as true."""
    if expr is None:
        return absent
    value = constant_value(expr)
    return value is None or bool(value.any())
