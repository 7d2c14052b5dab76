"""What the XGBOOST and SKLEARN frontends hand to the ``tree-c`` backend, and the input rules
they share.

The IR (``ImportedModel.ir_kind == "tree-c"``) is a ``NativeModel``: a tree ensemble as a
serialized treelite model, or a linear model as coefficients, with the StandardScaler steps
applied before it and the last step that turns the model's outputs into what the framework's
own ``predict``/``predict_proba`` returns. The backend turns it into C and builds it for the
target; nothing in here knows about targets.

Inputs: one 2-D float32 input ``[rows, features]``. ``rows`` comes from DataInputConfig when
given, else ``DEFAULT_ROWS``; the compiled library takes any number of rows either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Union

import numpy as np

from neo_local.api.errors import client_error
from neo_local.frontends.base import TensorSpec
from neo_local.frontends.data_input import format_data_input_config, parse_data_input_config

IR_KIND = "tree-c"
DEFAULT_INPUT = "data"
#: rows recorded in the input shape when DataInputConfig is not given (any row count runs)
DEFAULT_ROWS = 1


@dataclass(frozen=True)
class Scaler:
    """``x -> (x - mean) / scale`` per feature, as sklearn's StandardScaler computes it on
    float32 data (each step in float64, rounded to float32)."""

    mean: np.ndarray   # float64 [features]
    scale: np.ndarray  # float64 [features]


@dataclass(frozen=True)
class TreeEnsemble:
    """A treelite model (``treelite.Model.serialize_bytes()``); ``outputs`` is how many values
    its generated ``predict`` writes per row (num_target * max num_class)."""

    treelite: bytes
    outputs: int


@dataclass(frozen=True)
class LinearModel:
    """``z = x @ coef.T + intercept`` in float64, then ``link``: identity (regressors),
    logistic (binary classifiers: one column z, probabilities [1 - p, p]) or softmax."""

    coef: np.ndarray       # float64 [outputs, features]
    intercept: np.ndarray  # float64 [outputs]
    link: str = "identity"

    @property
    def outputs(self) -> int:
        return int(self.coef.shape[0])


#: how the model's per-row values become the artifact's output
FINISHES = ("none", "binary_proba", "argmax")


@dataclass(frozen=True)
class NativeModel:
    """A model the ``tree-c`` backend compiles to one C function over rows.

    ``finish``: "none" (the model's values as they are), "binary_proba" (one probability p ->
    [1 - p, p], as sklearn's predict_proba gives for binary classifiers), "argmax" (the index of
    the largest value, as XGBoost's multi:softmax predicts class indices).
    """

    num_feature: int
    model: Union[TreeEnsemble, LinearModel]
    scalers: tuple[Scaler, ...] = ()
    finish: str = "none"
    description: str = ""

    def __post_init__(self) -> None:
        if self.finish not in FINISHES:
            raise ValueError(f"finish must be one of {FINISHES}, not {self.finish!r}")
        if isinstance(self.model, LinearModel) and self.model.link == "logistic" and self.finish != "none":
            raise ValueError("a logistic linear model already returns [1 - p, p]")

    @property
    def num_output(self) -> int:
        """Values per row in the compiled library's output."""
        if self.finish == "argmax":
            return 1
        if self.finish == "binary_proba":
            return 2
        if isinstance(self.model, LinearModel) and self.model.link == "logistic":
            return 2
        return self.model.outputs


def resolve_tree_input(
    num_feature: int, options_data_input_config: str | None, framework: str
) -> tuple[TensorSpec, str | None]:
    """The one input ``[rows, num_feature]`` float32 and the derived DataInputConfig, if derived.

    DataInputConfig is optional; given, it names one 2-D input whose second dimension is the
    model's feature count: ``{"data": [N, F]}`` or ``[[N, F]]``.
    """
    given = parse_data_input_config(options_data_input_config)
    example = f'{{"{DEFAULT_INPUT}": [{DEFAULT_ROWS}, {num_feature}]}}'
    if given is None:
        spec = TensorSpec(DEFAULT_INPUT, (DEFAULT_ROWS, num_feature), "float32")
        return spec, format_data_input_config([(spec.name, spec.shape)])
    if len(given) != 1:
        listed = ", ".join(name or f"input{i}" for i, (name, _) in enumerate(given))
        raise client_error(
            "InputConfiguration",
            f"{framework} models take one input [rows, features]; DataInputConfig lists {len(given)}: {listed}. "
            f"Give one, e.g. {example}, or leave DataInputConfig out",
        )
    name, shape = given[0]
    name = name or DEFAULT_INPUT
    if len(shape) != 2 or shape[1] != num_feature:
        raise client_error(
            "InputConfiguration",
            f"DataInputConfig shape {list(shape)} for '{name}' does not match the model: {framework} models take "
            f"a 2-D input [rows, features] and this model has {num_feature} features, e.g. {example}",
        )
    return TensorSpec(name, (int(shape[0]), num_feature), "float32"), None


def check_dtype_option(compiler_options: Mapping[str, Any], framework: str) -> None:
    """Tree and linear models read float32 features; another DTYPE is refused, not ignored."""
    for key in ("DTYPE", "dtype"):
        value = compiler_options.get(key)
        if value is not None and str(value) not in ("float32", "float"):
            raise client_error(
                "InputConfiguration",
                f"{framework} models take float32 input; CompilerOptions {key} {value} is not supported for them",
            )


def output_spec(name: str, rows: int, columns: int | None) -> TensorSpec:
    """``[rows]`` when ``columns`` is None, else ``[rows, columns]``; float32."""
    return TensorSpec(name, (rows,) if columns is None else (rows, columns), "float32")
