"""The ONNX pre-pass: constant subgraphs and Constant nodes become initializers, n-ary Sum
becomes Adds; each graph is compiled with TVM and compared with onnxruntime."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from neo_local.frontends.base import TensorSpec
from neo_local.frontends.onnx_import import import_onnx
from neo_local.frontends.onnx_prepass import prepass
from onnx_compare import compile_and_compare, onnx_model, seeded


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _ops(model):
    return [n.op_type for n in model.graph.node]


def test_reshape_shape_from_a_constant_value_ints():
    model = onnx_model(
        [helper.make_node("Constant", [], ["s"], value_ints=[4, -1]), helper.make_node("Reshape", ["x", "s"], ["y"])],
        [_f32("x", [2, 3, 4])], [_f32("y", [4, 6])],
    )
    rewritten = prepass(model)
    assert _ops(rewritten) == ["Reshape"]
    assert numpy_helper.to_array(rewritten.graph.initializer[0]).tolist() == [4, -1]
    compile_and_compare(model, {"x": seeded(2, 3, 4)})


def test_reduce_axes_from_a_concat_of_constants():
    model = onnx_model(
        [
            helper.make_node("Constant", [], ["a0"], value_ints=[0]),
            helper.make_node("Constant", [], ["a1"], value=numpy_helper.from_array(np.array([2], np.int64))),
            helper.make_node("Concat", ["a0", "a1"], ["axes"], axis=0),
            helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0),
        ],
        [_f32("x", [2, 3, 4])], [_f32("y", [3])],
    )
    assert _ops(prepass(model)) == ["ReduceSum"]
    compile_and_compare(model, {"x": seeded(2, 3, 4)})


def test_shape_of_an_initializer_feeds_reshape():
    w = numpy_helper.from_array(np.zeros((6, 4), np.float32), "w")
    model = onnx_model(
        [
            helper.make_node("Shape", ["w"], ["ws"]),
            helper.make_node("Constant", [], ["one"], value_int=1),
            helper.make_node("Unsqueeze", ["one", "zero"], ["one1"]),
            helper.make_node("Slice", ["ws", "zero", "one1"], ["rows"]),
            helper.make_node("Constant", [], ["m1"], value_ints=[-1]),
            helper.make_node("Concat", ["rows", "m1"], ["shape"], axis=0),
            helper.make_node("Reshape", ["x", "shape"], ["y"]),
        ],
        [_f32("x", [2, 3, 4])], [_f32("y", [6, 4])],
        initializers=[w, numpy_helper.from_array(np.array([0], np.int64), "zero")],
    )
    assert _ops(prepass(model)) == ["Reshape"]
    compile_and_compare(model, {"x": seeded(2, 3, 4)})


def test_unsqueeze_axes_and_pad_pads_from_constant_arithmetic():
    model = onnx_model(
        [
            helper.make_node("Constant", [], ["two"], value_int=2),
            helper.make_node("Constant", [], ["one"], value_ints=[1]),
            helper.make_node("Mul", ["one", "two"], ["axes"]),  # [2]
            helper.make_node("Unsqueeze", ["x", "axes"], ["u"]),  # [2, 3, 1]
            helper.make_node("Constant", [], ["p"], value_ints=[0, 1, 0, 0, 1, 0]),
            helper.make_node("Cast", ["p"], ["pf"], to=TensorProto.FLOAT),
            helper.make_node("Cast", ["pf"], ["pads"], to=TensorProto.INT64),
            helper.make_node("Pad", ["u", "pads"], ["y"]),
        ],
        [_f32("x", [2, 3])], [_f32("y", [2, 5, 1])],
    )
    assert _ops(prepass(model)) == ["Unsqueeze", "Pad"]
    compile_and_compare(model, {"x": seeded(2, 3)})


def test_constant_value_float_and_value_floats():
    model = onnx_model(
        [
            helper.make_node("Constant", [], ["k"], value_float=2.5),
            helper.make_node("Constant", [], ["b"], value_floats=[1.0, -1.0, 0.5]),
            helper.make_node("Mul", ["x", "k"], ["m"]),
            helper.make_node("Add", ["m", "b"], ["y"]),
        ],
        [_f32("x", [2, 3])], [_f32("y", [2, 3])],
    )
    assert _ops(prepass(model)) == ["Mul", "Add"]
    compile_and_compare(model, {"x": seeded(2, 3)})


def test_sum_of_three_becomes_adds():
    model = onnx_model(
        [helper.make_node("Sum", ["a", "b", "c"], ["y"])],
        [_f32("a", [2, 3]), _f32("b", [1, 3]), _f32("c", [2, 1])], [_f32("y", [2, 3])],
    )
    rewritten = prepass(model)
    assert _ops(rewritten) == ["Add", "Add"]
    assert rewritten.graph.node[-1].output[0] == "y"
    compile_and_compare(model, {"a": seeded(2, 3), "b": seeded(1, 3) + 1, "c": seeded(2, 1) - 1})


def test_shape_of_a_static_input_folds_to_its_compiled_shape():
    model = onnx_model(
        [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("ConstantOfShape", ["s"], ["z"]),
         helper.make_node("Add", ["x", "z"], ["y"])],
        [_f32("x", [2, 3])], [_f32("y", [2, 3])],
    )
    assert _ops(prepass(model, {"x": (2, 3)})) == ["Add"]
    compile_and_compare(model, {"x": seeded(2, 3)})


def test_nothing_that_reads_a_graph_input_is_folded():
    """axes computed from a graph input, and an initializer that is also a graph input
    (an overridable default): both stay as they are; inputs and outputs never change."""
    model = onnx_model(
        [
            helper.make_node("Constant", [], ["one"], value_ints=[1]),
            helper.make_node("Add", ["ax", "one"], ["axes"]),
            helper.make_node("Unsqueeze", ["x", "axes"], ["u"]),
            helper.make_node("Mul", ["d", "d"], ["dd"]),
            helper.make_node("Mul", ["u", "dd"], ["y"]),
        ],
        [_f32("x", [2, 3]), helper.make_tensor_value_info("ax", TensorProto.INT64, [1]), _f32("d", [])],
        [_f32("y", [2, 1, 3])],
        initializers=[numpy_helper.from_array(np.array(2.0, np.float32), "d")],
    )
    rewritten = prepass(model)
    assert _ops(rewritten) == ["Add", "Unsqueeze", "Mul", "Mul"]
    assert [v.name for v in rewritten.graph.input] == ["x", "ax", "d"]
    assert [v.name for v in rewritten.graph.output] == ["y"]
    assert model.graph.node[0].op_type == "Constant"  # the argument is not modified


def test_a_folded_graph_output_stays_a_constant_node():
    model = onnx_model(
        [helper.make_node("Constant", [], ["c"], value_floats=[1.0, 2.0]), helper.make_node("Neg", ["c"], ["y"]),
         helper.make_node("Relu", ["x"], ["z"])],
        [_f32("x", [2])], [_f32("y", [2]), _f32("z", [2])],
    )
    rewritten = prepass(model)
    assert _ops(rewritten) == ["Constant", "Relu"]
    assert [v.name for v in rewritten.graph.output] == ["y", "z"]
    compile_and_compare(model, {"x": seeded(2)})


@pytest.mark.parametrize("with_prepass", [False, True])
def test_prepass_is_what_makes_constant_subgraph_axes_importable(with_prepass):
    from neo_local.api.errors import JobFailure

    model = onnx_model(
        [helper.make_node("Constant", [], ["a"], value_ints=[1]), helper.make_node("Neg", ["a"], ["na"]),
         helper.make_node("Neg", ["na"], ["axes"]), helper.make_node("ReduceMax", ["x", "axes"], ["y"])],
        [_f32("x", [2, 3])], [_f32("y", [2, 1])], opset=18,
    )
    specs = (TensorSpec("x", (2, 3), "float32"),)
    if with_prepass:
        import_onnx(model, specs, "m.onnx")
    else:
        with pytest.raises(JobFailure, match="could not be imported"):
            import_onnx(model, specs, "m.onnx", prepass=False)


def test_shape_of_a_static_input_as_the_graph_output():
    model = onnx_model(
        [helper.make_node("Shape", ["x"], ["y"], start=1)],
        [_f32("x", [2, 3, 4])], [helper.make_tensor_value_info("y", TensorProto.INT64, [2])],
    )
    rewritten = prepass(model, {"x": (2, 3, 4)})
    assert _ops(rewritten) == ["Constant"]
    compile_and_compare(model, {"x": seeded(2, 3, 4)})
