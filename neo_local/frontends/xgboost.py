"""XGBOOST: one saved Booster; compiled to native code through treelite and tl2cgen.

Archive rule: exactly one model file, named ``*.json``, ``*.ubj``, ``*.model``, ``*.bin``,
``*.xgb``, ``*.bst`` or with no suffix at all. Its format is read from its first bytes, not
its name (XGBoost 3 writes UBJSON to a ``.model`` file): JSON, UBJSON, or the legacy binary
format of XGBoost < 2 (which treelite reads; XGBoost 3.2 itself no longer can, so a legacy
model has no reference and the job's verification is "skipped").

DataInputConfig is optional: the model knows its feature count. Given, it must be one 2-D
shape ``{"data": [rows, num_feature]}`` (any input name). The artifact's output is what
``Booster.predict`` returns: probabilities for binary:logistic ([rows]) and multi:softprob
([rows, classes]), the class index for multi:softmax ([rows]), values otherwise.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from neo_local.api.errors import client_error, exception_line
from neo_local.frontends import register
from neo_local.frontends.archive_rules import archive_files
from neo_local.frontends.base import Frontend, ImportedModel, ImportOptions
from neo_local.frontends.tree_common import (
    IR_KIND,
    NativeModel,
    TreeEnsemble,
    check_dtype_option,
    output_spec,
    resolve_tree_input,
)

SUFFIXES = (".json", ".ubj", ".model", ".bin", ".xgb", ".bst")
_ACCEPTED = "a .json, .ubj, .model, .bin, .xgb or .bst file, or a file with no suffix"


def find_xgboost_file(model_dir: Path) -> Path:
    """Exactly one XGBoost model file in the archive; a ClientError names what was found."""
    files = archive_files(model_dir)
    matches = [p for p in files if p.suffix.lower() in SUFFIXES or p.suffix == ""]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        listing = ", ".join(str(p.relative_to(model_dir)) for p in files[:20]) or "nothing"
        raise client_error(
            "InputConfiguration",
            f"No XGBoost model file found in the archive: XGBOOST archives hold exactly one model, {_ACCEPTED}. "
            f"The archive contains: {listing}",
        )
    names = ", ".join(str(p.relative_to(model_dir)) for p in matches)
    raise client_error(
        "InputConfiguration",
        f"Exactly one XGBoost model file ({_ACCEPTED}) is allowed for XGBOOST models, found {len(matches)}: {names}",
    )


def sniff_format(path: Path) -> str:
    """``json``, ``ubjson`` or ``legacy`` from the file's first bytes."""
    with path.open("rb") as f:
        head = f.read(64).lstrip()
    if head.startswith(b"{"):
        return "json" if head[1:].lstrip().startswith(b'"') else "ubjson"
    return "legacy"


def legacy_objective(path: Path) -> str | None:
    """The objective name in a legacy binary model's header (None where it cannot be read)."""
    try:
        with path.open("rb") as f:
            data = f.read(4096)
        offset = 4 if data.startswith(b"binf") else 0
        offset += 136  # LearnerModelParamLegacy
        (length,) = struct.unpack_from("<Q", data, offset)
        if not 0 < length < 256:
            return None
        return data[offset + 8: offset + 8 + length].decode("ascii")
    except (OSError, struct.error, UnicodeDecodeError):
        return None


@register
class XGBoostFrontend(Frontend):
    framework = "XGBOOST"
    suffixes = SUFFIXES
    requires = ("xgboost", "treelite")

    def load(self, model_dir: Path, options: ImportOptions) -> ImportedModel:
        import treelite

        check_dtype_option(options.compiler_options, self.framework)
        path = find_xgboost_file(model_dir)
        fmt = sniff_format(path)
        try:
            if fmt == "legacy":
                tl_model = treelite.frontend.load_xgboost_model_legacy_binary(str(path))
            else:
                tl_model = treelite.frontend.load_xgboost_model(str(path), format_choice=fmt)
        except Exception as exc:  # treelite raises TreeliteError from C++ with the parser's message
            raise client_error(
                "InputConfiguration",
                f"{path.name} is not an XGBoost model treelite can read (read as {_FORMAT_NAMES[fmt]}): "
                f"{exception_line(exc)}",
            ) from exc
        header = tl_model.get_header_accessor()
        num_feature = int(header.get_field("num_feature")[0])
        num_target = int(header.get_field("num_target")[0])
        num_class = int(np.max(header.get_field("num_class")))
        outputs = num_target * num_class

        booster = _booster(path) if fmt != "legacy" else None
        objective = _objective(booster) if booster is not None else legacy_objective(path)
        spec, derived = resolve_tree_input(num_feature, options.data_input_config, self.framework)
        rows = spec.shape[0]
        finish = "argmax" if objective == "multi:softmax" else "none"
        if finish == "argmax":
            out = output_spec("predicted_class", rows, None)
        else:
            name = "probabilities" if objective in ("binary:logistic", "multi:softprob") else "predictions"
            out = output_spec(name, rows, None if outputs == 1 else outputs)
        ir = NativeModel(
            num_feature=num_feature,
            model=TreeEnsemble(treelite=bytes(tl_model.serialize_bytes()), outputs=outputs),
            finish=finish,
            description=f"XGBoost {objective or 'unknown objective'}, {tl_model.num_tree} trees, "
                        f"{num_feature} features ({_FORMAT_NAMES[fmt]})",
        )
        return ImportedModel(
            ir=ir,
            inputs=(spec,),
            outputs=(out,),
            reference=_reference(booster, spec.name) if booster is not None else None,
            derived={"DerivedDataInputConfig": derived} if derived else {},
            source_file=path.name,
            ir_kind=IR_KIND,
        )


_FORMAT_NAMES = {"json": "JSON", "ubjson": "UBJSON", "legacy": "legacy binary"}


def _booster(path: Path):
    """XGBoost's own Booster for the reference (None if XGBoost cannot read what treelite did).

    Read from the bytes, not the file name: XGBoost guesses a file's format from its suffix.
    """
    import xgboost

    try:
        booster = xgboost.Booster()
        booster.load_model(bytearray(path.read_bytes()))
        return booster
    except xgboost.core.XGBoostError:
        return None


def _objective(booster) -> str | None:
    import json

    try:
        return json.loads(booster.save_config())["learner"]["objective"]["name"]
    except (KeyError, ValueError):
        return None


def _reference(booster, input_name: str):
    """XGBoost's ``Booster.predict`` on the same rows (NaN = missing), as float32."""

    def predict(feeds):
        import xgboost

        data = np.asarray(feeds[input_name], dtype=np.float32)
        # a model trained on a DataFrame checks the names (and categorical types) of its features
        matrix = xgboost.DMatrix(
            data, missing=np.nan, feature_names=booster.feature_names, feature_types=booster.feature_types,
            enable_categorical=bool(booster.feature_types and "c" in booster.feature_types),
        )
        return [np.asarray(booster.predict(matrix), dtype=np.float32)]

    return predict
