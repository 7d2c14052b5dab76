"""How far a quantized ONNX model's compiled outputs may be from onnxruntime's.

Both sides compute the same integers, but where a rescaled value lands on a rounding tie,
onnxruntime (fixed-point requantization in MLAS) and TVM (float32) may round it one step apart,
and later layers carry such steps on. As for TFLite (``base.quantized_tolerance_for``),
verification of a quantized graph allows one output step per two quantized operators, at least
2; float graphs keep the relative tolerance (``None``).
"""

from __future__ import annotations

from typing import Any

from neo_local.frontends.base import quantized_tolerance_for

#: operators that requantize (each may round a tie differently)
QUANTIZED_OPS = frozenset({
    "QuantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear",
})


def quantized_tolerance(model: Any) -> float | None:
    """The absolute output error verification allows for ``model`` (an onnx ModelProto); None
    when it has no quantized operators. An output step is 1 for an integer output and the scale
    of the DequantizeLinear a float output comes from (the largest scale in the graph when the
    output is computed after it)."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    integer_types = {getattr(TensorProto, t) for t in ("INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64")}

    nodes = list(model.graph.node)
    quantized = sum(n.op_type in QUANTIZED_OPS for n in nodes)
    if not quantized:
        return None
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in nodes:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].HasField("t"):
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    def scale(node: Any) -> float | None:
        value = constants.get(node.input[1]) if len(node.input) > 1 else None
        return float(np.max(np.abs(value))) if value is not None and value.size else None

    scales = [s for n in nodes if n.op_type in ("QuantizeLinear", "DequantizeLinear") for s in [scale(n)] if s]
    largest = max(scales, default=1.0)
    producer = {out: n for n in nodes for out in n.output}
    steps = []
    for output in model.graph.output:
        elem_type = output.type.tensor_type.elem_type
        if elem_type in integer_types:
            steps.append(1.0)
            continue
        node = producer.get(output.name)
        step = scale(node) if node is not None and node.op_type == "DequantizeLinear" else None
        steps.append(step or largest)
    return quantized_tolerance_for(quantized, max(steps))

