"""XGBOOST frontend: which file is the model, its format by content, DataInputConfig against
the model's feature count, outputs per objective, and the reference (XGBoost's own predict)."""

import json
import shutil

import numpy as np
import pytest

from models.tree_models import N_FEATURES, save_xgboost, synthetic_data, xgboost_model
from neo_local.api.errors import JobFailure
from neo_local.frontends import get_frontend
from neo_local.frontends.base import ImportOptions
from neo_local.frontends.tree_common import NativeModel, TreeEnsemble
from neo_local.frontends.xgboost import find_xgboost_file, legacy_objective, sniff_format


@pytest.fixture(scope="module")
def boosters():
    return {kind: xgboost_model(kind) for kind in ("multiclass", "multiclass_softmax", "binary", "regression")}


def _load(model_dir, config=None, **compiler_options):
    return get_frontend("XGBOOST").load(model_dir, ImportOptions(data_input_config=config, compiler_options=compiler_options))


def _reason(fn, *args, **kwargs) -> str:
    with pytest.raises(JobFailure) as err:
        fn(*args, **kwargs)
    return err.value.reason


def test_no_model_file_names_the_accepted_files(tmp_path):
    (tmp_path / "README.txt").write_text("a model")
    (tmp_path / "weights.csv").write_text("1,2")
    assert _reason(_load, tmp_path) == (
        "ClientError: InputConfiguration: No XGBoost model file found in the archive: XGBOOST archives hold exactly "
        "one model, a .json, .ubj, .model, .bin, .xgb or .bst file, or a file with no suffix. "
        "The archive contains: README.txt, weights.csv"
    )


def test_two_model_files_are_refused(tmp_path, boosters):
    save_xgboost(boosters["binary"], tmp_path / "a.json")
    save_xgboost(boosters["binary"], tmp_path / "sub" / "b.ubj")
    assert _reason(_load, tmp_path) == (
        "ClientError: InputConfiguration: Exactly one XGBoost model file (a .json, .ubj, .model, .bin, .xgb or .bst "
        "file, or a file with no suffix) is allowed for XGBOOST models, found 2: a.json, sub/b.ubj"
    )


def test_a_file_with_no_suffix_counts_and_hidden_files_do_not(tmp_path, boosters):
    save_xgboost(boosters["binary"], tmp_path / "model", "ubj")
    (tmp_path / "._model").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork
    (tmp_path / "notes.txt").write_text("not a model")
    assert find_xgboost_file(tmp_path).name == "model"


@pytest.mark.parametrize("name,fmt,expected", [
    ("m.json", "json", "json"),
    ("m.ubj", "ubj", "ubjson"),
    ("m.model", "ubj", "ubjson"),   # what xgboost 3 writes to a .model file
    ("m.bin", "json", "json"),
    ("m.bin", "ubj", "ubjson"),
    ("model", "json", "json"),
    ("m.model", "legacy", "legacy"),
    ("m.xgb", "legacy", "legacy"),
])
def test_format_is_read_from_the_content_not_the_name(tmp_path, boosters, name, fmt, expected):
    path = save_xgboost(boosters["regression"], tmp_path / name, fmt)
    assert sniff_format(path) == expected
    imported = _load(tmp_path)
    assert imported.source_file == name
    assert imported.ir_kind == "tree-c"
    # XGBoost itself reads json/ubj whatever the name (it would guess from the suffix)
    assert (imported.reference is None) == (fmt == "legacy")


def test_legacy_header_gives_the_objective(tmp_path, boosters):
    for kind, objective in (("multiclass", "multi:softprob"), ("binary", "binary:logistic")):
        booster = xgboost_model(kind, base_score=0.5)
        assert legacy_objective(save_xgboost(booster, tmp_path / f"{kind}.model", "legacy")) == objective


def test_legacy_model_has_no_reference_because_xgboost_cannot_read_it(tmp_path):
    save_xgboost(xgboost_model("binary", base_score=0.5), tmp_path / "m.model", "legacy")
    imported = _load(tmp_path)
    assert imported.reference is None
    assert [(o.name, o.shape) for o in imported.outputs] == [("probabilities", (1,))]


@pytest.mark.parametrize("kind,output", [
    ("multiclass", ("probabilities", (1, 3))),
    ("multiclass_softmax", ("predicted_class", (1,))),
    ("binary", ("probabilities", (1,))),
    ("regression", ("predictions", (1,))),
])
def test_inputs_and_outputs_follow_the_objective(tmp_path, boosters, kind, output):
    save_xgboost(boosters[kind], tmp_path / "model.json")
    imported = _load(tmp_path)
    assert [(s.name, s.shape, s.dtype) for s in imported.inputs] == [("data", (1, N_FEATURES), "float32")]
    assert [(o.name, o.shape, o.dtype) for o in imported.outputs] == [(*output, "float32")]
    assert json.loads(imported.derived["DerivedDataInputConfig"]) == {"data": [1, N_FEATURES]}
    ir = imported.ir
    assert isinstance(ir, NativeModel) and isinstance(ir.model, TreeEnsemble)
    assert ir.num_feature == N_FEATURES
    assert ir.finish == ("argmax" if kind == "multiclass_softmax" else "none")
    assert ir.num_output == (3 if kind == "multiclass" else 1)


def test_reference_is_xgboosts_own_prediction_with_nan_as_missing(tmp_path, boosters):
    import xgboost

    save_xgboost(boosters["multiclass"], tmp_path / "model.ubj")
    imported = _load(tmp_path)
    x, _ = synthetic_data("multiclass", seed=3, rows=50)
    x[::3, 1] = np.nan
    (got,) = imported.reference({"data": x})
    expected = boosters["multiclass"].predict(xgboost.DMatrix(x))
    assert got.shape == (50, 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_data_input_config_consistent_with_the_model(tmp_path, boosters):
    save_xgboost(boosters["binary"], tmp_path / "model.json")
    imported = _load(tmp_path, '{"features": [16, 7]}')
    assert [(s.name, s.shape) for s in imported.inputs] == [("features", (16, 7))]
    assert imported.outputs[0].shape == (16,)
    assert imported.derived == {}
    imported = _load(tmp_path, "[[4, 7]]")
    assert [(s.name, s.shape) for s in imported.inputs] == [("data", (4, 7))]


def test_data_input_config_with_the_wrong_feature_count(tmp_path, boosters):
    save_xgboost(boosters["binary"], tmp_path / "model.json")
    assert _reason(_load, tmp_path, '{"data": [1, 6]}') == (
        "ClientError: InputConfiguration: DataInputConfig shape [1, 6] for 'data' does not match the model: XGBOOST "
        'models take a 2-D input [rows, features] and this model has 7 features, e.g. {"data": [1, 7]}'
    )
    assert "DataInputConfig shape [1, 1, 7] for 'data' does not match" in _reason(_load, tmp_path, '{"data": [1, 1, 7]}')


def test_data_input_config_with_two_inputs(tmp_path, boosters):
    save_xgboost(boosters["binary"], tmp_path / "model.json")
    assert _reason(_load, tmp_path, '{"a": [1, 7], "b": [1, 7]}') == (
        "ClientError: InputConfiguration: XGBOOST models take one input [rows, features]; DataInputConfig lists 2: "
        'a, b. Give one, e.g. {"data": [1, 7]}, or leave DataInputConfig out'
    )


def test_a_dtype_other_than_float32_is_refused(tmp_path, boosters):
    save_xgboost(boosters["binary"], tmp_path / "model.json")
    assert _reason(_load, tmp_path, None, DTYPE="int64") == (
        "ClientError: InputConfiguration: XGBOOST models take float32 input; CompilerOptions DTYPE int64 is not "
        "supported for them"
    )
    assert _load(tmp_path, None, DTYPE="float32").inputs[0].dtype == "float32"


def test_a_file_that_is_not_a_model(tmp_path):
    (tmp_path / "model.json").write_text('{"learner": {"not": "a model"}}')
    reason = _reason(_load, tmp_path)
    assert reason.startswith(
        "ClientError: InputConfiguration: model.json is not an XGBoost model treelite can read (read as JSON): "
    ), reason
    shutil.rmtree(tmp_path)
    tmp_path.mkdir()
    (tmp_path / "model.bin").write_bytes(b"\x00" * 64)
    assert _reason(_load, tmp_path).startswith(
        "ClientError: InputConfiguration: model.bin is not an XGBoost model treelite can read (read as legacy binary): "
    )


def test_reference_for_a_model_with_named_features(tmp_path):
    """Models trained on DataFrames check feature names at predict time; the artifact's input is
    positional, so the reference passes the model's own names."""
    import xgboost

    x, y = synthetic_data("regression", rows=100)
    names = [f"f_{c}" for c in "abcdefg"]
    booster = xgboost.train({"max_depth": 3}, xgboost.DMatrix(x, label=y, feature_names=names), 5)
    save_xgboost(booster, tmp_path / "model.json")
    imported = _load(tmp_path)
    (got,) = imported.reference({"data": x[:10]})
    np.testing.assert_array_equal(got, booster.predict(xgboost.DMatrix(x[:10], feature_names=names)))
