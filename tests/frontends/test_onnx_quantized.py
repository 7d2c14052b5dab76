"""Verification tolerance of quantized ONNX graphs: output steps, not a relative error."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from neo_local.frontends.onnx_quantized import quantized_tolerance


def _model(nodes, output_type=TensorProto.FLOAT, output="y"):
    scale = numpy_helper.from_array(np.array(0.05, np.float32), "scale")
    zero = numpy_helper.from_array(np.array(0, np.uint8), "zero")
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info(output, output_type, [1, 4])], [scale, zero],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_float_graph_keeps_the_relative_tolerance():
    assert quantized_tolerance(_model([helper.make_node("Relu", ["x"], ["y"])])) is None


def test_dequantized_output_allows_two_steps_of_its_scale():
    nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["y"])]
    assert quantized_tolerance(_model(nodes)) == pytest.approx(0.1)


def test_integer_output_allows_steps_of_one_and_more_for_deeper_graphs():
    nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zero"], [f"q{i}"]) for i in range(5)]
    nodes.append(helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["y"]))
    assert quantized_tolerance(_model(nodes, TensorProto.UINT8)) == 3.0  # 6 quantized ops: 3 steps
