"""SKLEARN frontend: archive rules, the errors a user sees for what does not compile, and that
the calling process never unpickles (a child process does, for the import and the reference)."""

import os
import pickle

import numpy as np
import pytest

from models.tree_models import N_FEATURES, save_sklearn, sklearn_model, synthetic_data
from neo_local.api.errors import JobFailure
from neo_local.frontends import get_frontend
from neo_local.frontends.base import ImportOptions
from neo_local.frontends.tree_common import LinearModel, NativeModel, TreeEnsemble


def _load(model_dir, config=None):
    return get_frontend("SKLEARN").load(model_dir, ImportOptions(data_input_config=config))


def _reason(fn, *args, **kwargs) -> str:
    with pytest.raises(JobFailure) as err:
        fn(*args, **kwargs)
    return err.value.reason


class _Marker:
    """Unpickling it runs code: it writes the unpickling process's pid to ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return exec, (f"import os; open({self.path!r}, 'w').write(str(os.getpid()))",)


class _Exit:
    def __reduce__(self):
        return os._exit, (3,)


def _pickle(obj, path):
    path.write_bytes(pickle.dumps(obj))
    return path


@pytest.fixture
def no_unpickling_here(monkeypatch):
    """Any unpickling in this (the calling) process fails the test."""
    import joblib

    def refuse(*args, **kwargs):
        raise AssertionError("the calling process unpickled a model")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(joblib, "load", refuse)


def test_no_model_file(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    assert _reason(_load, tmp_path) == (
        "ClientError: InputConfiguration: No .joblib, .pkl or .pickle file found in the archive for SKLEARN models. "
        "The archive contains: model.onnx"
    )


def test_two_model_files(tmp_path):
    _pickle({}, tmp_path / "a.pkl")
    _pickle({}, tmp_path / "b.joblib")
    assert _reason(_load, tmp_path) == (
        "ClientError: InputConfiguration: Exactly one .joblib, .pkl or .pickle file is allowed for SKLEARN models, "
        "found 2: a.pkl, b.joblib"
    )


def test_a_pickle_that_is_not_an_estimator(tmp_path, no_unpickling_here):
    _pickle({"weights": [1, 2, 3]}, tmp_path / "model.pkl")
    assert _reason(_load, tmp_path) == (
        "ClientError: InputConfiguration: model.pkl does not hold a scikit-learn estimator: unpickling it gave a dict"
    )


def test_an_unsupported_estimator_is_named(tmp_path, no_unpickling_here):
    from sklearn.svm import SVC

    x, y = synthetic_data("binary", rows=60)
    save_sklearn(SVC().fit(x, y), tmp_path / "model.joblib")
    reason = _reason(_load, tmp_path)
    assert reason.startswith(
        "ClientError: InputConfiguration: scikit-learn estimator SVC in model.joblib is not supported. Supported: "
        "tree ensembles (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, "
    ), reason
    assert reason.endswith("and Pipelines of StandardScaler steps followed by one of these")


def test_an_unsupported_pipeline_step_is_named(tmp_path, no_unpickling_here):
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    x, y = synthetic_data("regression", rows=60)
    save_sklearn(make_pipeline(MinMaxScaler(), LinearRegression()).fit(x, y), tmp_path / "model.pkl")
    assert _reason(_load, tmp_path) == (
        "ClientError: InputConfiguration: Pipeline step 'minmaxscaler' (MinMaxScaler) in model.pkl is not "
        "supported: only StandardScaler steps may come before the final estimator"
    )


def test_an_unfitted_estimator(tmp_path, no_unpickling_here):
    from sklearn.ensemble import RandomForestClassifier

    save_sklearn(RandomForestClassifier(), tmp_path / "model.joblib")
    assert _reason(_load, tmp_path) == (
        "ClientError: InputConfiguration: the RandomForestClassifier in model.joblib is not fitted: fit it before saving"
    )


def test_a_pickle_of_a_class_that_is_not_installed(tmp_path):
    # protocol 0 pickle of an instance of nonexistent_pkg.Model
    (tmp_path / "model.pkl").write_bytes(b"cnonexistent_pkg\nModel\n(tR.")
    assert _reason(_load, tmp_path) == (
        "ClientError: InputConfiguration: model.pkl could not be unpickled: ModuleNotFoundError: "
        "No module named 'nonexistent_pkg'"
    )


def test_unpickling_happens_in_another_process(tmp_path, no_unpickling_here):
    marker = tmp_path / "pid.txt"
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    _pickle(_Marker(marker), model_dir / "model.pkl")
    reason = _reason(_load, model_dir)
    assert reason == (
        "ClientError: InputConfiguration: model.pkl does not hold a scikit-learn estimator: unpickling it gave a "
        "NoneType"
    )
    pid = int(marker.read_text())
    assert pid != os.getpid()


def test_a_pickle_that_kills_its_process(tmp_path):
    _pickle(_Exit(), tmp_path / "model.pkl")
    assert _reason(_load, tmp_path) == (
        "ClientError: InputConfiguration: loading model.pkl failed in the scikit-learn loader process: exit code 3"
    )


def test_pipeline_scaler_forest_imports_as_scaled_trees(tmp_path, no_unpickling_here):
    pipeline = sklearn_model("pipeline_scaler_forest")
    save_sklearn(pipeline, tmp_path / "model.joblib")
    imported = _load(tmp_path)
    ir = imported.ir
    assert isinstance(ir, NativeModel) and isinstance(ir.model, TreeEnsemble)
    assert ir.num_feature == N_FEATURES and ir.finish == "none" and ir.num_output == 3
    (scaler,) = ir.scalers
    np.testing.assert_array_equal(scaler.mean, pipeline[0].mean_)
    np.testing.assert_array_equal(scaler.scale, pipeline[0].scale_)
    assert [(s.name, s.shape, s.dtype) for s in imported.inputs] == [("data", (1, N_FEATURES), "float32")]
    assert [(o.name, o.shape) for o in imported.outputs] == [("probabilities", (1, 3))]
    assert imported.derived == {"DerivedDataInputConfig": '{"data": [1, 7]}'}

    # the reference is the pipeline's own predict_proba, computed in a child process
    x, _ = synthetic_data("multiclass", seed=4, rows=40)
    (got,) = imported.reference({"data": x})
    np.testing.assert_array_equal(got, pipeline.predict_proba(x))


@pytest.mark.parametrize("kind,model_type,finish,link,output", [
    ("gradient_boosting_classifier_binary", TreeEnsemble, "binary_proba", None, ("probabilities", (5, 2))),
    ("logistic_regression_binary", LinearModel, "none", "logistic", ("probabilities", (5, 2))),
    ("ridge_multioutput", LinearModel, "none", "identity", ("predictions", (5, 2))),
])
def test_estimators_and_their_outputs(tmp_path, kind, model_type, finish, link, output):
    save_sklearn(sklearn_model(kind), tmp_path / "model.pkl")
    imported = _load(tmp_path, '{"data": [5, 7]}')
    assert isinstance(imported.ir.model, model_type)
    assert imported.ir.finish == finish
    if link:
        assert imported.ir.model.link == link
    assert [(o.name, o.shape) for o in imported.outputs] == [output]
    assert imported.derived == {}


def test_data_input_config_with_the_wrong_feature_count(tmp_path):
    save_sklearn(sklearn_model("linear_regression"), tmp_path / "model.joblib")
    assert _reason(_load, tmp_path, '{"data": [1, 8]}') == (
        "ClientError: InputConfiguration: DataInputConfig shape [1, 8] for 'data' does not match the model: SKLEARN "
        'models take a 2-D input [rows, features] and this model has 7 features, e.g. {"data": [1, 7]}'
    )
