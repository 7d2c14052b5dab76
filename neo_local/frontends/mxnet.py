"""MXNet: ``<name>-symbol.json`` plus ``<name>-NNNN.params`` (NNNN: the epoch), as
``mx.model.save_checkpoint`` and Gluon's ``HybridBlock.export`` write them.

The mxnet package does not install next to numpy 2, so both files are read directly
(``mxnet_format``) and the graph is translated op by op into ONNX (``mxnet_ops``), which the
shared ONNX importer turns into Relax. Going through ONNX rather than emitting Relax directly
keeps one tested import path for every framework and gives the job a runnable reference for
verification: onnxruntime running that ONNX graph. That reference is neo-local's own
translation, not MXNet, and the verification record says so (``reference_label``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from neo_local.api.errors import client_error, unsupported_error
from neo_local.frontends import register
from neo_local.frontends.archive_rules import archive_files, find_model_file
from neo_local.frontends.base import Frontend, ImportedModel, ImportOptions, TensorSpec
from neo_local.frontends.data_input import parse_data_input_config, shapes_by_name
from neo_local.frontends.mxnet_format import FormatError, Symbol, parse_symbol, read_ndarray_list
from neo_local.frontends.onnx_builder import ShapeError, translation_reference
from neo_local.frontends.mxnet_ops import convert_symbol, label_variables, needed_nodes, unsupported
from neo_local.frontends.onnx_import import import_onnx

SYMBOL_SUFFIX = "-symbol.json"


@register
class MxnetFrontend(Frontend):
    framework = "MXNET"
    suffixes = (SYMBOL_SUFFIX, ".params")
    requires = ("onnx", "onnxruntime")
    framework_versions = ("1.8",)  # Neo's FrameworkVersion for MXNet; models saved by 1.8 or earlier
    reader = "neo-local's own reader of MXNet symbol and params files (the mxnet package is not used)"

    def load(self, model_dir: Path, options: ImportOptions) -> ImportedModel:
        symbol_path = find_model_file(model_dir, (SYMBOL_SUFFIX,), self.framework)
        params_path = find_params_file(model_dir, symbol_path)
        symbol = read_symbol(symbol_path)
        params = read_params(params_path)
        missing = unsupported(symbol)
        if missing:
            raise unsupported_error(symbol_path.name, "operators", missing, "node")
        dtype = str(options.compiler_options.get("dtype", "float32"))
        inputs = resolve_inputs(symbol, params, options.data_input_config, symbol_path.name, params_path.name, dtype)
        model = _translate(symbol, _as_input_dtype(params, dtype), inputs, symbol_path.name)
        mod, outputs = import_onnx(model, inputs, symbol_path.name)
        reference, label = translation_reference(model, self.framework)
        return ImportedModel(
            ir=mod,
            inputs=inputs,
            outputs=outputs,
            reference=reference,
            reference_label=label,
            source_file=symbol_path.name,
        )


def find_params_file(model_dir: Path, symbol_path: Path) -> Path:
    """The one ``<prefix>-NNNN.params`` beside ``<prefix>-symbol.json``."""
    prefix = symbol_path.name[: -len(SYMBOL_SUFFIX)]
    pattern = re.compile(re.escape(prefix) + r"-(\d{4,})\.params", re.IGNORECASE)
    all_params = [p for p in archive_files(model_dir) if p.name.lower().endswith(".params")]
    matching = [p for p in all_params if p.parent == symbol_path.parent and pattern.fullmatch(p.name)]
    rel = lambda p: str(p.relative_to(model_dir))  # noqa: E731
    if len(matching) == 1:
        return matching[0]
    if not matching:
        others = ", ".join(rel(p) for p in all_params) or "none"
        raise client_error(
            "InputConfiguration",
            f"No parameters file for {rel(symbol_path)}: expected {prefix}-NNNN.params beside it "
            f"(NNNN is the epoch, e.g. {prefix}-0000.params). The archive's .params files: {others}",
        )
    raise client_error(
        "InputConfiguration",
        f"Exactly one {prefix}-NNNN.params file is allowed beside {rel(symbol_path)}, found {len(matching)}: "
        f"{', '.join(rel(p) for p in matching)}. Keep only the epoch to compile",
    )


def read_symbol(path: Path) -> Symbol:
    try:
        return parse_symbol(path.read_text(encoding="utf-8"))
    except (FormatError, UnicodeDecodeError) as exc:
        raise client_error("InputConfiguration", f"{path.name} is not an MXNet symbol file: {exc}") from None


def read_params(path: Path) -> dict:
    try:
        items = read_ndarray_list(path.read_bytes())
    except FormatError as exc:
        raise client_error("InputConfiguration", f"{path.name} is not an MXNet parameters file: {exc}") from None
    # "arg:" and "aux:" prefixes (save_checkpoint); Gluon's save_parameters writes bare names
    return {re.sub(r"^(arg|aux):", "", name): array for name, array in items}


def _as_input_dtype(params: dict, dtype: str) -> dict:
    """Floating-point parameters in the inputs' float type (float16/float64 checkpoints exist)."""
    if np.dtype(dtype).kind != "f":
        return params
    return {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in params.items()}


def resolve_inputs(
    symbol: Symbol, params: dict, data_input_config: str | None, source: str, params_name: str, dtype: str
) -> tuple[TensorSpec, ...]:
    """Input specs for the symbol's variables that have no parameters (and are not labels)."""
    labels = label_variables(symbol)
    needed = needed_nodes(symbol)
    names = [
        symbol.nodes[i].name for i in symbol.arg_nodes
        if i in needed and i not in labels and symbol.nodes[i].name not in params
    ]
    listing = ", ".join(names) or "none"
    example = "{" + ", ".join(f'"{n}": [1, 3, 224, 224]' for n in names[:2]) + "}"
    given = parse_data_input_config(data_input_config)
    if given is None:
        raise client_error(
            "InputConfiguration",
            f"DataInputConfig is required for MXNET models: give the shape of each input of {source}, "
            f"e.g. {example}. The symbol's inputs (variables without parameters in {params_name}) are: {listing}",
        )
    shapes = shapes_by_name(
        given, names, source, listing,
        f"The symbol's inputs (variables without parameters in {params_name}) are: {listing}",
    )
    for name in names:
        if name not in shapes:
            raise client_error(
                "InputConfiguration",
                f"Input '{name}' of {source} has no parameters in {params_name} and no shape in DataInputConfig; "
                f"give the shape of every input: {listing}",
            )
    return tuple(TensorSpec(name, tuple(shapes[name]), dtype) for name in names)


def _translate(symbol: Symbol, params: dict, inputs: tuple[TensorSpec, ...], source: str):
    """The ONNX model for the symbol; shape problems become a ClientError naming the shapes."""
    try:
        builder, outputs = convert_symbol(symbol, params, [(s.name, s.shape, s.dtype) for s in inputs], source)
        return builder.model(outputs)
    except ShapeError as exc:  # onnx shape inference: shapes that do not fit the weights
        shapes = ", ".join(f"{s.name} {list(s.shape)}" for s in inputs)
        raise client_error(
            "InputConfiguration",
            f"{source} could not be translated with the input shapes {shapes}: {exc}",
        ) from exc
