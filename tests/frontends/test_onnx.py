"""ONNX frontend: archive rules, DataInputConfig against the graph, derived shapes, operators."""

import json

import pytest

from neo_local.api.errors import JobFailure
from neo_local.frontends import get_frontend
from neo_local.frontends.base import ImportOptions
from neo_local.frontends.onnx import resolve_inputs
from onnx_graphs import matmul_add_model, relu_model, save, unsupported_ops_model

MODEL_INPUTS = [("x", (1, 8), "float32"), ("y", (1, 4), "float32")]


def _load(tmp_path, model, config=None):
    save(model, tmp_path / "model.onnx")
    return get_frontend("ONNX").load(tmp_path, ImportOptions(data_input_config=config))


def test_static_shapes_are_derived_and_reported(tmp_path):
    imported = _load(tmp_path, matmul_add_model())
    assert [(s.name, s.shape, s.dtype) for s in imported.inputs] == [("x", (1, 8), "float32"), ("y", (1, 4), "float32")]
    assert json.loads(imported.derived["DerivedDataInputConfig"]) == {"x": [1, 8], "y": [1, 4]}
    assert [(o.name, o.shape) for o in imported.outputs] == [("out", (1, 4))]


def test_given_config_is_not_reported_as_derived(tmp_path):
    imported = _load(tmp_path, matmul_add_model(), '{"x": [1, 8], "y": [1, 4]}')
    assert imported.derived == {}


def test_dict_order_follows_the_model():
    specs, _ = resolve_inputs(MODEL_INPUTS, '{"y": [1, 4], "x": [1, 8]}')
    assert [s.name for s in specs] == ["x", "y"]


def test_list_form_maps_to_inputs_in_order():
    specs, derived = resolve_inputs(MODEL_INPUTS, "[[1, 8], [1, 4]]")
    assert [(s.name, s.shape) for s in specs] == [("x", (1, 8)), ("y", (1, 4))]
    assert derived is None


def test_unknown_input_name_lists_the_models_inputs():
    with pytest.raises(JobFailure) as err:
        resolve_inputs(MODEL_INPUTS, '{"data": [1, 8]}')
    assert err.value.reason == (
        "ClientError: InputConfiguration: Input 'data' in DataInputConfig is not an input of the model. "
        "The model's inputs are: x [1, 8] float32, y [1, 4] float32"
    )


def test_shape_that_contradicts_the_model():
    with pytest.raises(JobFailure, match=r"DataInputConfig shape \[1, 9\] for 'x' does not match the model's input shape \[1, 8\]"):
        resolve_inputs(MODEL_INPUTS, '{"x": [1, 9]}')


def test_dynamic_dims_need_a_shape(tmp_path):
    with pytest.raises(JobFailure, match=r"Input 'data' has dynamic dimensions \['\?', 4\]; give its shape in DataInputConfig"):
        _load(tmp_path, relu_model(dynamic_batch=True))
    imported = _load(tmp_path, relu_model(dynamic_batch=True), '{"data": [3, 4]}')
    assert imported.inputs[0].shape == (3, 4)
    assert imported.outputs[0].shape == (3, 4)


def test_shape_string_that_is_not_json(tmp_path):
    with pytest.raises(JobFailure) as err:
        _load(tmp_path, relu_model(), '{"data": [1, 4]')
    assert err.value.reason.startswith("ClientError: InputConfiguration: DataInputConfig is not valid JSON")


def test_unsupported_operators_are_listed(tmp_path):
    with pytest.raises(JobFailure) as err:
        _load(tmp_path, unsupported_ops_model())
    assert err.value.reason == (
        "ClientError: InputConfiguration: model.onnx uses operators the compiler does not support: "
        "Det (2 nodes), Multinomial (1 node)"
    )


def test_two_model_files(tmp_path):
    save(relu_model(), tmp_path / "a.onnx")
    save(relu_model(), tmp_path / "b.onnx")
    with pytest.raises(JobFailure) as err:
        get_frontend("ONNX").load(tmp_path, ImportOptions())
    assert err.value.reason == (
        "ClientError: InputConfiguration: Exactly one .onnx file is allowed for ONNX models, found 2: a.onnx, b.onnx"
    )


def test_no_model_file(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(JobFailure) as err:
        get_frontend("ONNX").load(tmp_path, ImportOptions())
    assert err.value.reason == (
        "ClientError: InputConfiguration: No .onnx file found in the archive for ONNX models. "
        "The archive contains: readme.txt"
    )


def test_corrupt_onnx_file(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(JobFailure, match="model.onnx is not a valid ONNX model"):
        get_frontend("ONNX").load(tmp_path, ImportOptions())


def test_reference_runs_onnxruntime(tmp_path):
    import numpy as np

    imported = _load(tmp_path, relu_model())
    out = imported.reference({"data": np.array([[-1, 2, -3, 4]], dtype=np.float32)})
    assert out[0].tolist() == [[0, 2, 0, 4]]
