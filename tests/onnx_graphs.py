"""Tiny ONNX graphs written with onnx.helper, for frontend and error-path tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def relu_model(shape=(1, 4), name="data", dynamic_batch=False) -> onnx.ModelProto:
    dims = ["N", *shape[1:]] if dynamic_batch else list(shape)
    graph = helper.make_graph(
        [helper.make_node("Relu", [name], ["out"])],
        "relu",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, dims)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def matmul_add_model(seed: int = 0) -> onnx.ModelProto:
    """Two inputs (x [1,8], y [1,4]) and a weight: out = x @ W + y."""
    w = np.random.default_rng(seed).standard_normal((8, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "y"], ["out"])],
        "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def unsupported_ops_model() -> onnx.ModelProto:
    """Uses two operators the importer lacks, not even as ONNX functions (counts 2 and 1), plus
    supported Relu and Reshape."""
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["a"]),
            helper.make_node("Multinomial", ["a"], ["m"]),
            helper.make_node("Reshape", ["a", "shape"], ["r"]),
            helper.make_node("Det", ["r"], ["d1"]),
            helper.make_node("Det", ["r"], ["d2"]),
        ],
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("m", TensorProto.INT32, [1, 1]),
         helper.make_tensor_value_info("d1", TensorProto.FLOAT, [1]),
         helper.make_tensor_value_info("d2", TensorProto.FLOAT, [1])],
        initializer=[numpy_helper.from_array(np.array([1, 2, 2], np.int64), "shape")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def math_functions_model(size: int = 64) -> onnx.ModelProto:
    """The sum of float functions whose kernels call the C math library (powf, sinf, atanf, asinf,
    coshf, ...) on ``x`` [1, size]; the logs and inverse sines take ``0.3 * |x|``."""
    unary = ["Exp", "Tanh", "Erf", "Sigmoid", "Sin", "Cos", "Softplus", "Atan", "Sinh", "Cosh"]
    positive = ["Log", "Asin", "Acos"]
    nodes = [helper.make_node("Abs", ["x"], ["abs"]), helper.make_node("Mul", ["abs", "c"], ["small"])]
    nodes += [helper.make_node(op, ["x"], [op]) for op in unary]
    nodes += [helper.make_node(op, ["small"], [op]) for op in positive]
    nodes += [helper.make_node("Pow", ["small", "p"], ["Pow"]),
              helper.make_node("Sum", [*unary, *positive, "Pow"], ["out"])]
    graph = helper.make_graph(
        nodes,
        "math",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, size])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, size])],
        initializer=[numpy_helper.from_array(np.array(0.3, np.float32), "c"),
                     numpy_helper.from_array(np.array(1.7, np.float32), "p")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path
