"""Seeded XGBoost and scikit-learn models, saved as a user would upload them.

Small fits on synthetic data (a few hundred rows, a handful of features): quick to build, but
deep enough that a wrong split, a wrong base score or a wrong link shows in the outputs.

    booster = xgboost_model("multiclass")           # multi:softprob, 3 classes
    save_xgboost(booster, "model.json")             # .json | .ubj | legacy binary (.model etc.)
    est = sklearn_model("pipeline_scaler_forest")
    save_sklearn(est, "model.joblib")               # .joblib | .pkl
    tree_archive("xgboost", "multiclass", "json", out_dir)  # -> (archive, model file name, model)
"""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

N_FEATURES = 7
N_ROWS = 400

XGBOOST_KINDS = {
    # kind: (params, rounds)
    "multiclass": ({"objective": "multi:softprob", "num_class": 3, "max_depth": 4, "eta": 0.3}, 12),
    "multiclass_softmax": ({"objective": "multi:softmax", "num_class": 3, "max_depth": 3, "eta": 0.3}, 8),
    "binary": ({"objective": "binary:logistic", "max_depth": 4, "eta": 0.3}, 15),
    "regression": ({"objective": "reg:squarederror", "max_depth": 5, "eta": 0.2}, 20),
}

SKLEARN_KINDS = (
    "random_forest_classifier",
    "random_forest_classifier_binary",
    "extra_trees_regressor",
    "gradient_boosting_regressor",
    "gradient_boosting_classifier_binary",
    "gradient_boosting_classifier",
    "hist_gradient_boosting_classifier",
    "hist_gradient_boosting_regressor",
    "logistic_regression",
    "logistic_regression_binary",
    "linear_regression",
    "ridge_multioutput",
    "pipeline_scaler_forest",
    "pipeline_scaler_extra_trees",
    "pipeline_scaler_logistic",
)


def synthetic_data(task: str, seed: int = 0, rows: int = N_ROWS, features: int = N_FEATURES,
                   missing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Features ~ N(0, 1) (shifted and scaled per column, so a scaler has work to do) and a
    target that depends non-linearly on them: ``task`` is regression, binary, multiclass or
    multioutput. ``missing`` is the fraction of features set to NaN."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features))
    score = x[:, 0] * 1.5 - x[:, 1] ** 2 + np.sin(2 * x[:, 2]) + 0.5 * x[:, 3] * x[:, 4] + 0.3 * rng.standard_normal(rows)
    x = x * np.linspace(0.5, 4.0, features) + np.linspace(-3.0, 5.0, features)
    if missing:
        x[rng.random(x.shape) < missing] = np.nan
    if task == "regression":
        y = 10.0 * score + 3.0
    elif task == "binary":
        y = (score > np.median(score)).astype(np.int64)
    elif task == "multiclass":
        y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3])).astype(np.int64)
    elif task == "multioutput":
        y = np.stack([10.0 * score, -2.0 * score + x[:, 5]], axis=1)
    else:
        raise ValueError(f"unknown task {task!r}")
    return x.astype(np.float32), y


def xgboost_model(kind: str, seed: int = 0, missing: float = 0.05, **extra: Any):
    """A trained ``xgboost.Booster`` (trained with some NaN features, so missing values matter);
    ``extra`` are more training parameters (e.g. ``base_score=0.5`` for the legacy format)."""
    import xgboost

    params, rounds = XGBOOST_KINDS[kind]
    params = {**params, **extra}
    task = "multiclass" if params["objective"].startswith("multi") else (
        "binary" if params["objective"].startswith("binary") else "regression")
    x, y = synthetic_data(task, seed, missing=missing)
    return xgboost.train({**params, "seed": seed, "nthread": 1}, xgboost.DMatrix(x, label=y), rounds)


def save_xgboost(booster, path: str | Path, fmt: str | None = None) -> Path:
    """``fmt``: json, ubj or legacy (the pre-1.0 binary format); by default from the suffix
    (.json, .ubj; anything else is written as legacy binary)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = fmt or {".json": "json", ".ubj": "ubj"}.get(path.suffix, "legacy")
    if fmt in ("json", "ubj"):
        path.write_bytes(bytes(booster.save_raw(raw_format=fmt)))
    elif fmt == "legacy":
        path.write_bytes(legacy_binary(booster))
    else:
        raise ValueError(f"unknown XGBoost format {fmt!r}")
    return path


def legacy_binary(booster) -> bytes:
    """The model in XGBoost's old binary format (xgboost >= 3 no longer writes it).

    Layout (xgboost 1.x ``Learner::SaveModel`` without the ``binf`` prefix):
    LearnerModelParamLegacy (136 bytes), objective and booster names (uint64 length + bytes),
    GBTreeModelParam (160 bytes), per tree TreeParam (148 bytes) + nodes (20 bytes each) +
    node stats (16 bytes each), then tree_info (int32 per tree). Only scalar base scores and
    gbtree boosters without categorical splits or vector leaves can be written this way.
    """
    model = json.loads(bytes(booster.save_raw(raw_format="json")))
    learner = model["learner"]
    param = learner["learner_model_param"]
    base = [float(v) for v in str(param["base_score"]).strip("[]").split(",")]
    if len(set(base)) != 1:
        raise ValueError(f"the legacy format has one base score; this model has {base}")
    gbm = learner["gradient_booster"]
    if gbm["name"] != "gbtree":
        raise ValueError(f"only gbtree boosters, not {gbm['name']}")
    trees = gbm["model"]["trees"]
    out = bytearray()
    out += struct.pack(
        "<fIiiiIIIi25i", base[0], int(param["num_feature"]), int(param["num_class"]), 0, 0, 1, 7,
        int(param.get("num_target", 1)), int(param.get("boost_from_average", 1)), *([0] * 25),
    )
    for name in (learner["objective"]["name"], gbm["name"]):
        out += struct.pack("<Q", len(name)) + name.encode()
    num_group = max(1, int(param["num_class"]))
    out += struct.pack("<iiiiqii32i", len(trees), 1, int(param["num_feature"]), 0, 0, num_group, 0, *([0] * 32))
    for tree in trees:
        tp = tree["tree_param"]
        if int(tp.get("size_leaf_vector", 1)) > 1 or any(tree.get("split_type", [])):
            raise ValueError("vector leaves and categorical splits have no legacy encoding")
        n = int(tp["num_nodes"])
        out += struct.pack("<6i31i", 1, n, 0, 0, int(tp["num_feature"]), 0, *([0] * 31))
        left, right, parents = tree["left_children"], tree["right_children"], tree["parents"]
        for i in range(n):
            parent = parents[i]
            if parent == 2147483647 or parent < 0:  # the root
                parent_field = -1
            else:
                parent_field = parent | (1 << 31) if left[parent] == i else parent
            sindex = tree["split_indices"][i] | (int(tree["default_left"][i]) << 31)
            cleft, cright = (left[i], right[i]) if left[i] != -1 else (-1, -1)
            out += struct.pack("<iiiIf", _i32(parent_field), cleft, cright, sindex & 0xFFFFFFFF,
                               tree["split_conditions"][i])
        for i in range(n):
            is_leaf = left[i] == -1
            out += struct.pack("<fffi", tree["loss_changes"][i], tree["sum_hessian"][i], tree["base_weights"][i],
                               0 if is_leaf else 2)
    out += struct.pack(f"<{len(trees)}i", *gbm["model"]["tree_info"])
    return bytes(out)


def _i32(value: int) -> int:
    return value - (1 << 32) if value >= (1 << 31) else value


def sklearn_model(kind: str, seed: int = 0):
    """A fitted scikit-learn estimator or Pipeline of ``kind`` (see ``SKLEARN_KINDS``)."""
    from sklearn import ensemble, linear_model
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    builders: dict[str, tuple[str, Any]] = {
        "random_forest_classifier": ("multiclass", lambda: ensemble.RandomForestClassifier(
            n_estimators=20, max_depth=6, random_state=seed)),
        "random_forest_classifier_binary": ("binary", lambda: ensemble.RandomForestClassifier(
            n_estimators=15, max_depth=5, random_state=seed)),
        "extra_trees_regressor": ("regression", lambda: ensemble.ExtraTreesRegressor(
            n_estimators=15, max_depth=6, random_state=seed)),
        "gradient_boosting_regressor": ("regression", lambda: ensemble.GradientBoostingRegressor(
            n_estimators=30, max_depth=3, random_state=seed)),
        "gradient_boosting_classifier_binary": ("binary", lambda: ensemble.GradientBoostingClassifier(
            n_estimators=20, max_depth=3, random_state=seed)),
        "gradient_boosting_classifier": ("multiclass", lambda: ensemble.GradientBoostingClassifier(
            n_estimators=10, max_depth=3, random_state=seed)),
        "hist_gradient_boosting_classifier": ("multiclass", lambda: ensemble.HistGradientBoostingClassifier(
            max_iter=15, random_state=seed)),
        "hist_gradient_boosting_regressor": ("regression", lambda: ensemble.HistGradientBoostingRegressor(
            max_iter=20, random_state=seed)),
        "logistic_regression": ("multiclass", lambda: linear_model.LogisticRegression(max_iter=1000)),
        "logistic_regression_binary": ("binary", lambda: linear_model.LogisticRegression(max_iter=1000)),
        "linear_regression": ("regression", lambda: linear_model.LinearRegression()),
        "ridge_multioutput": ("multioutput", lambda: linear_model.Ridge(alpha=0.5)),
        "pipeline_scaler_forest": ("multiclass", lambda: make_pipeline(
            StandardScaler(), ensemble.RandomForestClassifier(n_estimators=20, max_depth=6, random_state=seed))),
        "pipeline_scaler_extra_trees": ("regression", lambda: make_pipeline(
            StandardScaler(), ensemble.ExtraTreesRegressor(n_estimators=15, max_depth=6, random_state=seed))),
        "pipeline_scaler_logistic": ("multiclass", lambda: make_pipeline(
            StandardScaler(), linear_model.LogisticRegression(max_iter=1000))),
    }
    if kind not in builders:
        raise ValueError(f"unknown sklearn model kind {kind!r}; known: {', '.join(builders)}")
    task, make = builders[kind]
    x, y = synthetic_data(task, seed)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small fits; OpenMP workers only contend on a busy machine
        return make().fit(x, y)


def save_sklearn(estimator, path: str | Path) -> Path:
    """``.joblib`` with joblib.dump, anything else (``.pkl``) with pickle."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".joblib":
        import joblib

        joblib.dump(estimator, path)
    else:
        with path.open("wb") as f:
            pickle.dump(estimator, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


class TreeArchive(NamedTuple):
    archive: Path      # the .tar.gz a user uploads
    model_file: str    # the model file's name inside it
    model: Any         # the xgboost.Booster or fitted estimator, to compare with


def tree_archive(framework: str, kind: str, fmt: str, out_dir: str | Path, seed: int = 0) -> TreeArchive:
    """Build, save and pack one model: ``framework`` xgboost (fmt json|ubj|legacy) or sklearn
    (fmt joblib|pkl)."""
    from models.export import make_archive

    out_dir = Path(out_dir)
    if framework == "xgboost":
        name = f"{kind}.{ {'json': 'json', 'ubj': 'ubj', 'legacy': 'model'}[fmt] }"
        # the legacy format holds one base score: fix it instead of letting xgboost fit one per class
        extra = {"base_score": 0.5} if fmt == "legacy" else {}
        model = xgboost_model(kind, seed, **extra)
        model_file = save_xgboost(model, out_dir / "files" / name, fmt)
    elif framework == "sklearn":
        model = sklearn_model(kind, seed)
        model_file = save_sklearn(model, out_dir / "files" / f"{kind}.{fmt}")
    else:
        raise ValueError(f"unknown framework {framework!r}")
    archive = make_archive([model_file], out_dir / f"{kind}-{fmt}.tar.gz")
    return TreeArchive(archive, model_file.name, model)
