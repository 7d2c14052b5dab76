"""Dropout in training mode and RoiAlign's max mode are refused by name; their inference forms match."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from neo_local.api.errors import JobFailure
from onnx_compare import compile_and_compare, onnx_model, run_compiled, seeded


def _dropout(training: bool, ratio: float):
    inits = [numpy_helper.from_array(np.array(ratio, np.float32), "ratio"),
             numpy_helper.from_array(np.array(training), "training_mode")]
    return onnx_model([helper.make_node("Dropout", ["x", "ratio", "training_mode"], ["y"], seed=0)],
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], inits, opset=13)


def test_dropout_in_training_mode_is_refused_and_its_inference_forms_match():
    with pytest.raises(JobFailure, match="Dropout with training_mode true is not supported: it draws random masks"):
        run_compiled(_dropout(True, 0.5), {"x": seeded(2, 3)})
    compile_and_compare(_dropout(False, 0.5), {"x": seeded(2, 3)})
    compile_and_compare(_dropout(True, 0.0), {"x": seeded(2, 3)})  # a zero ratio draws nothing


def _roi_align(mode: str):
    rois = numpy_helper.from_array(np.array([[0.5, 0.5, 3.5, 3.5]], np.float32), "rois")
    index = numpy_helper.from_array(np.zeros(1, np.int64), "index")
    return onnx_model([helper.make_node("RoiAlign", ["x", "rois", "index"], ["y"], mode=mode, output_height=2,
                                        output_width=2, sampling_ratio=2)],
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2, 2])], [rois, index], opset=16)


def test_roi_align_max_mode_is_refused_and_avg_matches():
    with pytest.raises(JobFailure, match="RoiAlign with mode 'max' is not supported"):
        run_compiled(_roi_align("max"), {"x": seeded(1, 2, 6, 6)})
    compile_and_compare(_roi_align("avg"), {"x": seeded(1, 2, 6, 6)})
