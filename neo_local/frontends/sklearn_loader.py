"""Unpickle a scikit-learn model in a process of its own.

Unpickling runs whatever code the pickle names, so the SKLEARN frontend never does it in the
process that asked for the compile (``neo_local.compile()`` runs the pipeline in the caller's
process): it runs this module as a short-lived child, which writes only plain data back.

    python -m neo_local.frontends.sklearn_loader convert MODEL OUT_DIR
        OUT_DIR/model.json   {"ok": true, ...description...} or {"ok": false, "error": "..."}
        OUT_DIR/arrays.npz   scaler means/scales, linear coefficients (read with allow_pickle=False)
        OUT_DIR/trees.bin    the tree ensemble as treelite's serialized bytes
    python -m neo_local.frontends.sklearn_loader predict MODEL INPUTS.npz OUTPUTS.npz
        the estimator's own predict_proba (classifiers) or predict (regressors) on INPUTS["data"]

A user error (not an estimator, an unsupported one) is reported in model.json with exit
code 0; any other exit is a crash of the child, reported by the parent with its stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

TREE_ESTIMATORS = (
    "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor",
    "GradientBoostingClassifier", "GradientBoostingRegressor",
    "HistGradientBoostingClassifier", "HistGradientBoostingRegressor",
)
LINEAR_REGRESSORS = (
    "LinearRegression", "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet", "ElasticNetCV",
    "SGDRegressor", "BayesianRidge", "HuberRegressor",
)
LINEAR_CLASSIFIERS = ("LogisticRegression", "LogisticRegressionCV")
SUPPORTED = (
    f"tree ensembles ({', '.join(TREE_ESTIMATORS)}), linear regressors ({', '.join(LINEAR_REGRESSORS)}), "
    f"{' and '.join(LINEAR_CLASSIFIERS)}, and Pipelines of StandardScaler steps followed by one of these"
)


class UserError(Exception):
    """The model is not one neo-local compiles; the message goes to the user."""


def _sklearn_class(obj: Any, names: tuple[str, ...]) -> str | None:
    """The class name if ``obj`` is exactly one of scikit-learn's ``names`` (no subclasses:
    a subclass may predict differently)."""
    cls = type(obj)
    if cls.__name__ in names and cls.__module__.startswith("sklearn."):
        return cls.__name__
    return None


def _qualname(obj: Any) -> str:
    """``RandomForestClassifier`` for scikit-learn's and Python's own classes, ``module.Class`` else."""
    cls = type(obj)
    if cls.__module__ == "builtins" or cls.__module__.startswith("sklearn."):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def load(model_file: Path) -> Any:
    import joblib  # reads joblib files and plain pickles alike

    try:
        return joblib.load(model_file)
    except Exception as exc:  # whatever the pickle's code raises
        line = (str(exc).strip().splitlines() or [""])[0]
        raise UserError(f"{model_file.name} could not be unpickled: {type(exc).__name__}: {line}") from exc


def split(obj: Any, model_name: str) -> tuple[list[Any], Any]:
    """(StandardScaler steps, final estimator); UserError for anything else."""
    from sklearn.base import BaseEstimator

    if not isinstance(obj, BaseEstimator):
        raise UserError(f"{model_name} does not hold a scikit-learn estimator: unpickling it gave a {_qualname(obj)}")
    if type(obj).__name__ != "Pipeline" or not type(obj).__module__.startswith("sklearn."):
        return [], obj
    steps = [(name, step) for name, step in obj.steps if step is not None and step != "passthrough"]
    if not steps:
        raise UserError(f"the Pipeline in {model_name} has no estimator")
    scalers = []
    for name, step in steps[:-1]:
        if _sklearn_class(step, ("StandardScaler",)) is None:
            raise UserError(
                f"Pipeline step '{name}' ({type(step).__name__}) in {model_name} is not supported: only StandardScaler "
                "steps may come before the final estimator"
            )
        scalers.append(step)
    return scalers, steps[-1][1]


def describe(obj: Any) -> str:
    if type(obj).__name__ == "Pipeline":
        return "Pipeline(" + ", ".join(type(s).__name__ for _, s in obj.steps) + ")"
    return type(obj).__name__


def convert(model_file: Path, out_dir: Path) -> dict[str, Any]:
    from sklearn.base import is_classifier
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    obj = load(model_file)
    scalers, estimator = split(obj, model_file.name)
    name = type(estimator).__name__
    kind = (
        "trees" if _sklearn_class(estimator, TREE_ESTIMATORS)
        else "linear" if _sklearn_class(estimator, LINEAR_REGRESSORS + LINEAR_CLASSIFIERS)
        else None
    )
    if kind is None:
        raise UserError(
            f"scikit-learn estimator {_qualname(estimator)} in {model_file.name} is not supported. Supported: {SUPPORTED}"
        )
    try:
        for step in (*scalers, estimator):
            check_is_fitted(step)
    except NotFittedError:
        raise UserError(f"the {describe(obj)} in {model_file.name} is not fitted: fit it before saving") from None
    num_feature = int(getattr(scalers[0] if scalers else estimator, "n_features_in_"))
    classifier = bool(is_classifier(estimator))
    # the shape the framework's own prediction has, found by calling it
    probe = predict(obj, classifier, np.zeros((2, num_feature), dtype=np.float32))
    if not isinstance(probe, np.ndarray):
        raise UserError(f"{name} in {model_file.name} predicts several outputs (multi-output); not supported")
    columns = None if probe.ndim == 1 else int(probe.shape[1])

    arrays: dict[str, np.ndarray] = {}
    for i, scaler in enumerate(scalers):
        mean = scaler.mean_ if scaler.with_mean else None
        scale = scaler.scale_ if scaler.with_std else None
        arrays[f"mean_{i}"] = np.zeros(num_feature) if mean is None else np.asarray(mean, dtype=np.float64)
        arrays[f"scale_{i}"] = np.ones(num_feature) if scale is None else np.asarray(scale, dtype=np.float64)
    result: dict[str, Any] = {
        "ok": True,
        "estimator": describe(obj),
        "kind": kind,
        "classifier": classifier,
        "num_feature": num_feature,
        "columns": columns,
        "scalers": len(scalers),
    }
    if classifier:
        result["classes"] = [c.item() if hasattr(c, "item") else str(c) for c in estimator.classes_]
    if kind == "trees":
        result.update(_trees(estimator, model_file.name, out_dir))
    else:
        arrays.update(_linear(estimator, classifier, result))
    np.savez(out_dir / "arrays.npz", **arrays)
    return result


def _trees(estimator: Any, model_name: str, out_dir: Path) -> dict[str, Any]:
    import treelite
    import treelite.sklearn

    try:
        model = treelite.sklearn.import_model(estimator)
    except Exception as exc:  # TreeliteError, NotImplementedError for custom init estimators, ...
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise UserError(f"treelite cannot import the {type(estimator).__name__} in {model_name}: {line}") from exc
    header = model.get_header_accessor()
    outputs = int(header.get_field("num_target")[0]) * int(np.max(header.get_field("num_class")))
    (out_dir / "trees.bin").write_bytes(bytes(model.serialize_bytes()))
    return {"tree_outputs": outputs, "num_tree": int(model.num_tree)}


def _linear(estimator: Any, classifier: bool, result: dict[str, Any]) -> dict[str, np.ndarray]:
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    intercept = np.broadcast_to(np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64)), (coef.shape[0],))
    if classifier:
        result["link"] = "logistic" if coef.shape[0] == 1 else "softmax"
    else:
        result["link"] = "identity"
    return {"coef": coef, "intercept": np.ascontiguousarray(intercept)}


def predict(obj: Any, classifier: bool, data: np.ndarray) -> Any:
    """What the artifact reproduces: predict_proba for classifiers, predict for regressors."""
    return obj.predict_proba(data) if classifier else obj.predict(data)


def main(argv: list[str]) -> int:
    if argv[:1] == ["convert"] and len(argv) == 3:
        model_file, out_dir = Path(argv[1]), Path(argv[2])
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            result = convert(model_file, out_dir)
        except UserError as exc:
            result = {"ok": False, "error": str(exc)}
        (out_dir / "model.json").write_text(json.dumps(result))
        return 0
    if argv[:1] == ["predict"] and len(argv) == 4:
        from sklearn.base import is_classifier

        model_file, inputs, outputs = map(Path, argv[1:])
        obj = load(model_file)
        _, estimator = split(obj, model_file.name)
        with np.load(inputs, allow_pickle=False) as data:
            x = data["data"]
        np.savez(outputs, np.asarray(predict(obj, bool(is_classifier(estimator)), x)))
        return 0
    print("usage: python -m neo_local.frontends.sklearn_loader convert MODEL OUT_DIR | "
          "predict MODEL INPUTS.npz OUTPUTS.npz", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
