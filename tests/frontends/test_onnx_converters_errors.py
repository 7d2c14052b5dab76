"""neo-local's converters for ONNX nodes TVM's importer failed to import or build (Pow with
mixed or integer types, EyeLike's dtype, OneHot with run-time values, ConstantOfShape of a
run-time shape, Split into zero-size parts, Upsample nearest): each small graph is imported as
the ONNX frontend imports it, compiled for llvm and compared with onnxruntime."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnx_compare import compile_and_compare, onnx_model, seeded

_TYPES = {"float32": TensorProto.FLOAT, "int32": TensorProto.INT32, "int64": TensorProto.INT64}


def _value(name, dtype, shape):
    return helper.make_tensor_value_info(name, _TYPES[dtype], shape)


@pytest.mark.parametrize("base,exponent", [("float32", "int64"), ("int32", "float32"), ("int64", "int64")])
def test_pow_mixed_and_integer_types(base, exponent):
    model = onnx_model([helper.make_node("Pow", ["x", "y"], ["z"])],
                       [_value("x", base, [4]), _value("y", exponent, [4])], [_value("z", base, [4])], opset=15)
    x = np.array([1.5, 2, 3, -2]).astype(base)
    y = np.array([3, 5, 0.5 if exponent == "float32" else 2, 3]).astype(exponent)
    compile_and_compare(model, {"x": x, "y": y})


def test_eyelike_with_another_dtype_and_offset():
    node = helper.make_node("EyeLike", ["x"], ["y"], dtype=TensorProto.FLOAT, k=1)
    model = onnx_model([node], [_value("x", "int32", [3, 4])], [_value("y", "float32", [3, 4])])
    compile_and_compare(model, {"x": np.zeros((3, 4), "int32")})


def test_onehot_values_as_input_negative_and_out_of_range_indices():
    node = helper.make_node("OneHot", ["indices", "depth", "values"], ["y"], axis=1)
    model = onnx_model([node], [_value("indices", "int64", [2, 3]), _value("values", "float32", [2])],
                       [_value("y", "float32", [2, 5, 3])],
                       [numpy_helper.from_array(np.array(5, "int64"), "depth")], opset=11)
    indices = np.array([[0, -1, 4], [7, -5, 2]], "int64")
    compile_and_compare(model, {"indices": indices, "values": np.array([-2, 3], "float32")})


def test_constant_of_shape_read_at_run_time():
    value = numpy_helper.from_array(np.array([7], "int32"))
    model = onnx_model([helper.make_node("ConstantOfShape", ["shape"], ["y"], value=value)],
                       [_value("shape", "int64", [3])], [_value("y", "int32", [2, 3, 4])])
    compile_and_compare(model, {"shape": np.array([2, 3, 4], "int64")})


def test_split_with_zero_size_parts():
    node = helper.make_node("Split", ["x", "split"], ["a", "b", "c"], axis=1)
    model = onnx_model([node], [_value("x", "float32", [2, 3])],
                       [_value("a", "float32", [2, 0]), _value("b", "float32", [2, 3]), _value("c", "float32", [2, 0])],
                       [numpy_helper.from_array(np.array([0, 3, 0], "int64"), "split")], opset=13)
    compile_and_compare(model, {"x": seeded(2, 3)})


def test_upsample_nearest_with_scales_input():
    node = helper.make_node("Upsample", ["x", "scales"], ["y"], mode="nearest")
    model = onnx_model([node], [_value("x", "float32", [1, 2, 2, 3])], [_value("y", "float32", [1, 2, 4, 4])],
                       [numpy_helper.from_array(np.array([1, 1, 2, 1.5], "float32"), "scales")], opset=9)
    compile_and_compare(model, {"x": seeded(1, 2, 2, 3)})


def test_center_crop_pad_folds_its_pads_then_the_padded_shape():
    """The inlined CenterCropPad reads Shape(Pad(x, pads)); the pads fold first, then a second
    shape inference makes the padded shape static so that the Shape folds too."""
    node = helper.make_node("CenterCropPad", ["x", "shape"], ["y"])
    model = onnx_model([node], [_value("x", "float32", [5, 4, 3])], [_value("y", "float32", [3, 6, 3])],
                       [numpy_helper.from_array(np.array([3, 6, 3], "int64"), "shape")], opset=18)
    compile_and_compare(model, {"x": seeded(5, 4, 3)})


@pytest.mark.parametrize("attrs,out", [
    (dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]), [3, 3]),
    (dict(kernel_shape=[2, 2], storage_order=1, ceil_mode=1, strides=[2, 2]), [3, 3]),
    (dict(kernel_shape=[2, 3], dilations=[2, 1], pads=[1, 0, 0, 1]), [4, 5]),
    (dict(kernel_shape=[2, 3], auto_pad="SAME_LOWER"), [5, 6]),
])
def test_maxpool_with_indices(attrs, out):
    node = helper.make_node("MaxPool", ["x"], ["y", "i"], **attrs)
    model = onnx_model([node], [_value("x", "float32", [2, 3, 5, 6])],
                       [_value("y", "float32", [2, 3, *out]), _value("i", "int64", [2, 3, *out])], opset=12)
    compile_and_compare(model, {"x": seeded(2, 3, 5, 6)})


def test_unsqueeze_with_scalar_axes():
    """onnx's AffineGrid function body unsqueezes with a 0-d axes constant."""
    model = onnx_model([helper.make_node("Unsqueeze", ["x", "axes"], ["y"])], [_value("x", "float32", [2, 3])],
                       [_value("y", "float32", [2, 3, 1])],
                       [numpy_helper.from_array(np.array(-1, "int64"), "axes")], opset=13)
    compile_and_compare(model, {"x": seeded(2, 3)})
