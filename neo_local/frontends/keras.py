"""KERAS: one .h5 or .keras file (Sequential or functional, one or more inputs).

Neo's rule: the model is NHWC (channels last) but DataInputConfig is NCHW (channels first),
and the compiled model takes input in the layout DataInputConfig gave. So the model is wrapped
in a tf.function that takes NCHW (NCDHW for 5-D inputs) and transposes to the model's layout
before calling it; that function goes TF -> ONNX (tf2onnx ``from_function``; its ``from_keras``
fails on Keras 3 Sequential models) -> Relax. Inputs of rank 2 and 3 (tokens, sequences,
vectors) have no channel axis to move and are taken as given. Input names are the model's
input layer names, as the user writes them in DataInputConfig.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from neo_local.api.errors import client_error, exception_line
from neo_local.frontends import register
from neo_local.frontends.archive_rules import find_model_file
from neo_local.frontends.base import Frontend, ImportedModel, ImportOptions, Reference, TensorSpec
from neo_local.frontends.data_input import parse_data_input_config, shapes_by_name
from neo_local.frontends.tf_convert import (
    as_numpy_list,
    describe_inputs,
    function_to_onnx,
    import_tensorflow,
    onnx_to_relax,
    tf_dtype_name,
    unique_names,
)

ModelInput = tuple[str, tuple[int | None, ...], str]  # name, NHWC dims (None: any), dtype


@register
class KerasFrontend(Frontend):
    framework = "KERAS"
    suffixes = (".h5", ".keras")
    requires = ("tensorflow-cpu", "tf2onnx", "onnx")

    def load(self, model_dir: Path, options: ImportOptions) -> ImportedModel:
        path = find_model_file(model_dir, self.suffixes, self.framework)
        tf = import_tensorflow()
        model = load_keras_model(path)
        try:
            tensors = list(model.inputs)
        except (AttributeError, ValueError) as exc:
            raise client_error(
                "InputConfiguration",
                f"{path.name} has no defined inputs ({exception_line(exc)}); save a model built with keras.Input(...)",
            ) from exc
        model_inputs = [(layer_name(t), tuple(t.shape), tf_dtype_name(t.dtype)) for t in tensors]
        resolved = resolve_channels_first(model_inputs, options.data_input_config)
        inputs = tuple(TensorSpec(name, shape, dtype) for name, shape, dtype, _ in resolved)
        perms = [perm for *_, perm in resolved]
        call = _caller(model, tensors)

        signature = [tf.TensorSpec(s.shape, s.dtype, name=f"neo_input_{i}") for i, s in enumerate(inputs)]

        @tf.function(input_signature=signature, autograph=False)
        def nchw_model(*args):
            xs = [tf.transpose(a, perm) if perm else a for a, perm in zip(args, perms)]
            return _flatten(call(xs))

        onnx_model = function_to_onnx(nchw_model, signature, path.name)
        struct = getattr(model, "_outputs_struct", None)
        if isinstance(struct, dict):  # outputs by key: called, the model returns them in key order
            output_names = sorted(struct)
        else:
            output_names = unique_names(layer_name(t, f"output{i}") for i, t in enumerate(model.outputs))
        mod, inputs, outputs = onnx_to_relax(onnx_model, inputs, output_names, path.name)
        return ImportedModel(
            ir=mod,
            inputs=inputs,
            outputs=outputs,
            reference=_keras_reference(call, inputs, perms),
            source_file=path.name,
        )


def resolve_channels_first(
    model_inputs: Sequence[ModelInput], data_input_config: str | None
) -> list[tuple[str, tuple[int, ...], str, tuple[int, ...] | None]]:
    """(name, shape as given, dtype, NCHW->NHWC permutation or None) per model input, in the
    model's order. DataInputConfig is required: Keras models leave the batch size open."""
    given = parse_data_input_config(data_input_config)
    described = describe_inputs((n, _channels_first(d), t) for n, d, t in model_inputs)
    example = json.dumps({n: [1 if x is None else x for x in _channels_first(d)] for n, d, _ in model_inputs})
    if given is None:
        raise client_error(
            "InputConfiguration",
            f"DataInputConfig is required for KERAS models, in NCHW (channels first) layout, e.g. {example}. "
            f"The model's inputs are: {described}",
        )
    names = [n for n, _, _ in model_inputs]
    shapes = shapes_by_name(given, names, "the model", described, f"The model's inputs are (NCHW): {described}")
    missing = [n for n in names if n not in shapes]
    if missing:
        raise client_error(
            "InputConfiguration",
            f"DataInputConfig has no shape for {', '.join(repr(n) for n in missing)}; give every input in NCHW "
            f"(channels first), e.g. {example}",
        )
    return [(name, shapes[name], dtype, _permutation(name, dims, shapes[name])) for name, dims, dtype in model_inputs]


def _permutation(name: str, dims: tuple[int | None, ...], shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The transpose from the given NCHW shape to the model's NHWC dims; errors explain the rule."""
    expected = _channels_first(dims)
    if len(dims) in (4, 5):
        perm = (0, *range(2, len(dims)), 1)
        if _fits(dims, tuple(shape[p] for p in perm)):
            return perm
        if _fits(dims, shape):
            nchw = [shape[0], shape[-1], *shape[1:-1]]
            raise client_error(
                "InputConfiguration",
                f"DataInputConfig shape {list(shape)} for '{name}' is in NHWC (channels last) layout. For KERAS "
                f"models DataInputConfig is NCHW (channels first), as Neo's API says, even though the model itself "
                f"is NHWC: give {nchw}",
            )
    elif _fits(dims, shape):
        return None
    raise client_error(
        "InputConfiguration",
        f"DataInputConfig shape {list(shape)} for '{name}' does not match the model's input: the model takes "
        f"{_show(dims)} (NHWC), so DataInputConfig should be {_show(expected)} (NCHW)"
        if len(dims) in (4, 5)
        else f"DataInputConfig shape {list(shape)} for '{name}' does not match the model's input shape {_show(dims)}",
    )


def _channels_first(dims: tuple[int | None, ...]) -> tuple[int | None, ...]:
    return (dims[0], dims[-1], *dims[1:-1]) if len(dims) in (4, 5) else dims


def _fits(dims: tuple[int | None, ...], shape: tuple[int, ...]) -> bool:
    return len(dims) == len(shape) and all(d is None or d == s for d, s in zip(dims, shape))


def _show(dims: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def load_keras_model(path: Path) -> Any:
    import keras

    try:
        return keras.models.load_model(str(path), compile=False)
    except Exception as exc:  # Keras raises ValueError, TypeError, OSError... for what it cannot read
        custom = _unknown_layers(path)
        if custom:
            raise client_error(
                "InputConfiguration",
                f"{path.name} uses custom layer(s) {', '.join(custom)} that are not part of Keras; their Python code "
                "is not in the archive, so the model cannot be loaded. Replace them with built-in layers, or export "
                "the model as a TensorFlow SavedModel (Framework TENSORFLOW) or ONNX",
            ) from exc
        raise client_error(
            "InputConfiguration",
            f"{path.name} could not be loaded by Keras {keras.__version__}: {exception_line(exc, last=False)}",
        ) from exc


def _unknown_layers(path: Path) -> list[str]:
    """Class names in the saved model config that Keras does not know, in order of appearance."""
    import keras

    config = _saved_config(path)
    if config is None:
        return []
    known = set(dir(keras.layers)) | set(dir(keras.models)) | {"Functional"}
    unknown: list[str] = []

    def layer(node: Any) -> None:
        if not isinstance(node, dict):
            return
        name = node.get("class_name")
        if isinstance(name, str) and not _is_known(name, node, known):
            short = name.split(">")[-1]
            if short not in unknown:
                unknown.append(short)
        walk(node.get("config"))

    def walk(node: Any) -> None:
        # layers sit in "layers" lists (models) and under "layer" (wrappers such as Bidirectional)
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "layers" and isinstance(value, list):
                    for item in value:
                        layer(item)
                elif key == "layer" and isinstance(value, dict):
                    layer(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    layer(config)
    return unknown


def _is_known(name: str, node: dict, known: set[str]) -> bool:
    import keras

    module = node.get("module")
    registered = node.get("registered_name") or ""
    if isinstance(module, str) and module.split(".")[0] == "keras":
        return True
    if name in known and ">" not in registered:
        return True
    return keras.saving.get_registered_object(registered or name) is not None


def _saved_config(path: Path) -> Any:
    """The model config JSON of a .keras zip or an .h5 file; None when it cannot be read."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        import h5py

        with h5py.File(path, "r") as h5:
            raw = h5.attrs.get("model_config")
        if raw is None:
            return None
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except Exception:  # not a readable file: the load error says why
        return None


def layer_name(tensor: Any, default: str | None = None) -> str:
    """The name of the layer that made ``tensor`` (input layers: the name users write)."""
    history = getattr(tensor, "_keras_history", None)
    operation = getattr(history, "operation", None) if history is not None else None
    name = getattr(operation, "name", None) or getattr(tensor, "name", None)
    return str(name or default)


def _caller(model: Any, tensors: list[Any]):
    """Call ``model`` with arrays in ``model.inputs`` order, in the structure it was built with."""
    struct = getattr(model, "_inputs_struct", None)

    def call(xs: list[Any]) -> Any:
        if isinstance(struct, dict):
            index = {id(t): i for i, t in enumerate(tensors)}
            args: Any = {key: xs[index[id(t)]] for key, t in struct.items() if id(t) in index}
        else:
            args = xs if len(xs) > 1 else xs[0]
        return model(args, training=False)

    return call


def _flatten(outputs: Any) -> list[Any]:
    if isinstance(outputs, dict):
        return [outputs[k] for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return list(outputs)
    return [outputs]


def _keras_reference(call, inputs: tuple[TensorSpec, ...], perms: list[tuple[int, ...] | None]) -> Reference:
    """Keras itself on the same (NCHW) inputs, transposed to the model's layout in numpy."""

    def run(feeds):
        xs = [
            np.ascontiguousarray(np.transpose(np.asarray(feeds[s.name]), perm) if perm else np.asarray(feeds[s.name]))
            for s, perm in zip(inputs, perms)
        ]
        return as_numpy_list(_flatten(call(xs)))

    return run
