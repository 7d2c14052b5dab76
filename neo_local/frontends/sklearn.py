"""SKLEARN: one pickled estimator (``.joblib``, ``.pkl`` or ``.pickle``), compiled to native code.

Unpickling runs arbitrary code, and ``neo_local.compile()`` runs this frontend in the caller's
process: so this process never unpickles. A short-lived child
(``python -m neo_local.frontends.sklearn_loader``) loads the file and writes back plain data
(JSON, a numpy .npz without pickles, treelite's serialized trees); the reference used to
verify the artifact is computed in such a child too.

What compiles (everything else is a ClientError naming the estimator's class):

- tree ensembles: RandomForest/ExtraTrees classifiers and regressors, GradientBoosting and
  HistGradientBoosting classifiers and regressors (through treelite -> tl2cgen C);
- linear models: LinearRegression, Ridge, Lasso, ElasticNet (and their CV forms),
  SGDRegressor, BayesianRidge, HuberRegressor; LogisticRegression(CV) (C written by the
  backend: x @ coef.T + intercept, then the logistic or softmax link);
- Pipelines of StandardScaler steps before one of those (the scaling runs in the generated C,
  in float64 rounded to float32 per step as sklearn does on float32 data).

The artifact gives what the estimator gives: ``predict_proba`` for classifiers (output
"probabilities", [rows, classes], in ``classes_`` order) and ``predict`` for regressors
(output "predictions", [rows] or [rows, targets]). Input: "data" [rows, features] float32.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import neo_local
from neo_local.api.errors import client_error, internal_error
from neo_local.frontends import register
from neo_local.frontends.archive_rules import find_model_file
from neo_local.frontends.base import Frontend, ImportedModel, ImportOptions
from neo_local.frontends.tree_common import (
    IR_KIND,
    LinearModel,
    NativeModel,
    Scaler,
    TreeEnsemble,
    check_dtype_option,
    output_spec,
    resolve_tree_input,
)

SUFFIXES = (".joblib", ".pkl", ".pickle")
LOADER = "neo_local.frontends.sklearn_loader"
#: unpickling and converting a model should take seconds; a child that hangs is stopped
LOADER_TIMEOUT_S = 600


@register
class SklearnFrontend(Frontend):
    framework = "SKLEARN"
    suffixes = SUFFIXES
    requires = ("scikit-learn", "treelite")

    def load(self, model_dir: Path, options: ImportOptions) -> ImportedModel:
        check_dtype_option(options.compiler_options, self.framework)
        path = find_model_file(model_dir, self.suffixes, self.framework)
        with tempfile.TemporaryDirectory(prefix="neo-local-sklearn-") as tmp:
            out = Path(tmp)
            run_loader(["convert", str(path), str(out)], path.name)
            try:
                info = json.loads((out / "model.json").read_text())
            except (OSError, ValueError) as exc:
                raise internal_error(f"the scikit-learn loader wrote no readable result for {path.name}: {exc}") from exc
            if not info.get("ok"):
                raise client_error("InputConfiguration", str(info.get("error")))
            with np.load(out / "arrays.npz", allow_pickle=False) as arrays:
                ir = _native_model(info, {k: arrays[k] for k in arrays.files}, out)
        spec, derived = resolve_tree_input(ir.num_feature, options.data_input_config, self.framework)
        name = "probabilities" if info["classifier"] else "predictions"
        output = output_spec(name, spec.shape[0], info["columns"])
        if ir.num_output != (info["columns"] or 1):
            raise internal_error(
                f"{info['estimator']}: the compiled model would give {ir.num_output} values a row, "
                f"scikit-learn gives {info['columns'] or 1}"
            )
        return ImportedModel(
            ir=ir,
            inputs=(spec,),
            outputs=(output,),
            reference=_reference(path, spec.name),
            derived={"DerivedDataInputConfig": derived} if derived else {},
            source_file=path.name,
            ir_kind=IR_KIND,
        )


def _native_model(info: dict[str, Any], arrays: dict[str, np.ndarray], out: Path) -> NativeModel:
    scalers = tuple(Scaler(arrays[f"mean_{i}"], arrays[f"scale_{i}"]) for i in range(info["scalers"]))
    finish = "none"
    if info["kind"] == "trees":
        outputs = int(info["tree_outputs"])
        model: TreeEnsemble | LinearModel = TreeEnsemble((out / "trees.bin").read_bytes(), outputs)
        if info["classifier"] and outputs == 1 and len(info["classes"]) == 2:
            finish = "binary_proba"  # one sigmoid output -> [1 - p, p]
    else:
        model = LinearModel(arrays["coef"], arrays["intercept"], info["link"])
    return NativeModel(
        num_feature=int(info["num_feature"]),
        model=model,
        scalers=scalers,
        finish=finish,
        description=f"scikit-learn {info['estimator']}, {info['num_feature']} features",
    )


def run_loader(args: list[str], model_name: str) -> None:
    """Run the loader child; a crash (the pickle's code may exit or kill it) is the model's fault."""
    root = str(Path(neo_local.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    # one OpenMP thread: the child predicts a few rows, and idle OpenMP workers spinning on a
    # busy machine cost more than they save (HistGradientBoosting predicts with OpenMP)
    env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else ""), "OMP_NUM_THREADS": "1"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", LOADER, *args], capture_output=True, text=True, env=env, timeout=LOADER_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise client_error(
            "InputConfiguration", f"loading {model_name} took longer than {LOADER_TIMEOUT_S} s and was stopped"
        ) from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise client_error(
            "InputConfiguration", f"loading {model_name} failed in the scikit-learn loader process: {tail}"
        )


def _reference(model_file: Path, input_name: str):
    """The estimator's own predict_proba / predict, in a child process like the import."""

    def predict(feeds):
        with tempfile.TemporaryDirectory(prefix="neo-local-sklearn-ref-") as tmp:
            inputs, outputs = Path(tmp) / "inputs.npz", Path(tmp) / "outputs.npz"
            np.savez(inputs, data=np.asarray(feeds[input_name], dtype=np.float32))
            run_loader(["predict", str(model_file), str(inputs), str(outputs)], model_file.name)
            with np.load(outputs, allow_pickle=False) as data:
                return [data["arr_0"]]

    return predict
