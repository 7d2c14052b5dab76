"""Casts TVM converts wrongly are refused with the types named; the others still match onnxruntime."""

import numpy as np
import pytest
from onnx import TensorProto, helper

from neo_local.api.errors import JobFailure
from onnx_compare import compile_and_compare, onnx_model, run_compiled, seeded


def _cast(to: int, source: int = TensorProto.FLOAT):
    return onnx_model([helper.make_node("Cast", ["x"], ["y"], to=to)],
                      [helper.make_tensor_value_info("x", source, [2, 3])],
                      [helper.make_tensor_value_info("y", to, [2, 3])], opset=21)


@pytest.mark.parametrize("to, name", [(TensorProto.FLOAT8E4M3FN, "float8_e4m3fn"),
                                      (TensorProto.FLOAT8E5M2, "float8_e5m2"),
                                      (TensorProto.BFLOAT16, "bfloat16"), (TensorProto.INT4, "int4")])
def test_a_cast_tvm_gets_wrong_is_refused_naming_both_types(to, name):
    with pytest.raises(JobFailure, match=f"Cast from float32 to {name} is not supported: TVM's conversion"):
        run_compiled(_cast(to), {"x": seeded(2, 3)})


def test_other_casts_still_go_through_tvm_and_match():
    compile_and_compare(_cast(TensorProto.FLOAT16), {"x": seeded(2, 3)}, rtol=1e-3, atol=1e-3)
    compile_and_compare(_cast(TensorProto.INT32), {"x": seeded(2, 3) * 10})
    like = onnx_model([helper.make_node("CastLike", ["x", "t"], ["y"])],
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]),
                       helper.make_tensor_value_info("t", TensorProto.DOUBLE, [1])],
                      [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [4])], opset=21)
    compile_and_compare(like, {"x": seeded(4), "t": np.zeros(1)})
