"""End to end for tree and linear models: XGBoost and scikit-learn models packed as a user
would, compiled through ``neo_local.compile`` for ml_c4, run in a fresh process and compared
with the framework's own prediction on the same rows."""

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

import neo_local
from models.tree_models import N_FEATURES, synthetic_data, tree_archive
from neo_local.api.errors import JobFailure
from neo_local.verify import compare, run_artifact

ROWS = 256
#: float32 sums of many trees / dot products: relative to the output's magnitude
TOLERANCE = 1e-5


def _compile(archive: Path, framework: str, out: Path, config: str | None = None, target: str = "ml_c4") -> Path:
    inp = {"S3Uri": f"file://{archive}", "Framework": framework}
    if config:
        inp["DataInputConfig"] = config
    return Path(neo_local.compile(InputConfig=inp, OutputConfig={"S3OutputLocation": str(out), "TargetDevice": target}))


def _meta(artifact: Path) -> dict:
    with tarfile.open(artifact) as tar:
        assert sorted(tar.getnames()) == ["compiled.meta", "compiled.so"]
        return json.load(tar.extractfile("compiled.meta"))


def _rows(task: str, missing: bool) -> np.ndarray:
    x, _ = synthetic_data(task, seed=11, rows=ROWS)
    if missing:
        x[::5, 0] = np.nan
        x[2::7, 4] = np.nan
    return x


def _check(name, expected, actual, record_property):
    max_abs, max_rel = compare([expected], actual)
    record_property("max_abs_error", max_abs)
    print(f"{name}: max abs error {max_abs:.3g}, max rel error {max_rel:.3g}")
    assert max_rel < TOLERANCE, f"max abs {max_abs:.3g}, rel {max_rel:.3g}"


@pytest.mark.parametrize("kind,fmt", [
    ("multiclass", "json"), ("multiclass", "ubj"), ("multiclass", "legacy"),
    ("binary", "json"), ("binary", "ubj"), ("binary", "legacy"),
    ("regression", "json"), ("regression", "ubj"),
    ("multiclass_softmax", "ubj"),
])
def test_xgboost_matches_booster_predict(kind, fmt, tmp_path, record_property):
    import xgboost

    archive, model_file, booster = tree_archive("xgboost", kind, fmt, tmp_path / "in")
    artifact = _compile(archive, "XGBOOST", tmp_path / "out")
    assert artifact == tmp_path / "out" / f"{kind}-{fmt}-ml_c4.tar.gz"
    x = _rows("regression", missing=True)  # NaN = missing, as XGBoost reads it
    actual = run_artifact(artifact, {"data": x}, tmp_path / "run")
    _check(f"xgboost {kind} ({fmt})", booster.predict(xgboost.DMatrix(x)), actual, record_property)

    meta = _meta(artifact)
    assert meta["Runtime"]["Kind"] == "tree-c"
    assert meta["Model"]["SourceFile"] == model_file
    assert meta["Model"]["Inputs"] == [{"name": "data", "shape": [1, N_FEATURES], "dtype": "float32"}]
    output = {"multiclass": ("probabilities", [1, 3]), "binary": ("probabilities", [1]),
              "regression": ("predictions", [1]), "multiclass_softmax": ("predicted_class", [1])}[kind]
    assert [(o["name"], o["shape"]) for o in meta["Model"]["Outputs"]] == [output]
    assert meta["Compiler"]["treelite"] == "4.8.1" and meta["Compiler"]["tl2cgen"] == "1.0.0"
    assert "-march=haswell" in meta["Compiler"]["cc-flags"]
    # xgboost 3.2 cannot read the legacy binary format: nothing to compare with in the job
    assert meta["Verification"]["status"] == ("skipped" if fmt == "legacy" else "passed")


@pytest.mark.parametrize("kind,fmt", [
    ("random_forest_classifier", "joblib"),
    ("gradient_boosting_regressor", "pkl"),
    ("logistic_regression", "joblib"),
    ("pipeline_scaler_forest", "pkl"),
    ("hist_gradient_boosting_classifier", "joblib"),
])
def test_sklearn_matches_the_estimator(kind, fmt, tmp_path, record_property):
    archive, _, estimator = tree_archive("sklearn", kind, fmt, tmp_path / "in")
    artifact = _compile(archive, "SKLEARN", tmp_path / "out", config=f'{{"data": [8, {N_FEATURES}]}}')
    x = _rows("regression", missing=False)
    actual = run_artifact(artifact, {"data": x}, tmp_path / "run")  # 256 rows into an artifact compiled for 8
    classifier = hasattr(estimator, "predict_proba")
    expected = estimator.predict_proba(x) if classifier else estimator.predict(x)
    _check(f"sklearn {kind} ({fmt})", expected, actual, record_property)

    meta = _meta(artifact)
    assert meta["Model"]["Inputs"] == [{"name": "data", "shape": [8, N_FEATURES], "dtype": "float32"}]
    (output,) = meta["Model"]["Outputs"]
    assert output["name"] == ("probabilities" if classifier else "predictions")
    assert output["shape"] == [8, *expected.shape[1:]]
    assert meta["Verification"]["status"] == "passed"
    assert meta["Verification"]["max_rel_error"] < TOLERANCE


def test_failure_reasons_reach_the_user(tmp_path):
    from models.export import make_archive

    archive = tree_archive("xgboost", "binary", "json", tmp_path / "in").archive
    with pytest.raises(JobFailure) as err:
        _compile(archive, "XGBOOST", tmp_path / "out", config='{"data": [1, 3]}')
    assert err.value.reason == (
        "ClientError: InputConfiguration: DataInputConfig shape [1, 3] for 'data' does not match the model: "
        'XGBOOST models take a 2-D input [rows, features] and this model has 7 features, e.g. {"data": [1, 7]}'
    )
    (tmp_path / "notes.txt").write_text("no model here")
    with pytest.raises(JobFailure) as err:
        _compile(make_archive([tmp_path / "notes.txt"], tmp_path / "empty.tar.gz"), "SKLEARN", tmp_path / "out")
    assert err.value.reason == (
        "ClientError: InputConfiguration: No .joblib, .pkl or .pickle file found in the archive for SKLEARN models. "
        "The archive contains: notes.txt"
    )


def test_ml_c5_artifact_is_built_but_not_run_on_a_host_without_avx512(tmp_path):
    from neo_local.targets.cpu_features import missing_on_host

    archive = tree_archive("sklearn", "logistic_regression", "joblib", tmp_path / "in").archive
    meta = _meta(_compile(archive, "SKLEARN", tmp_path / "out", target="ml_c5"))
    assert "-march=skylake-avx512" in meta["Compiler"]["cc-flags"]
    assert "avx512f" in meta["Target"]["CpuFeatures"]
    expected = "skipped" if missing_on_host(("avx512f",)) else "passed"
    assert meta["Verification"]["status"] == expected
