"""The import step for TargetDevice coreml: the framework's own model object, not Relax.

coremltools converts TorchScript modules, Keras models and TensorFlow functions itself, so
the Relax import that every other target needs is skipped; the frontends' archive rules and
readers are reused. The request's Core ML inputs and class labels are checked here, before
the (slower) conversion.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from neo_local.api.errors import client_error
from neo_local.backends.coreml_inputs import CoreMLInput, image_channels, parse_coreml_inputs
from neo_local.frontends.archive_rules import archive_files, find_model_file
from neo_local.frontends.base import Frontend, ImportedModel, ImportOptions, TensorSpec

#: Framework -> what coremltools 9 converts from it (it has no ONNX converter)
CONVERTIBLE = {
    "PYTORCH": "TorchScript (.pt/.pth)",
    "KERAS": ".h5/.keras models",
    "TENSORFLOW": "SavedModels",
}


#: CompilerOptions a coreml job can take ("dtype" is always there: float32 is what Core ML takes)
_COREML_OPTIONS = ("class_labels", "signature_def_key", "dtype")


@dataclass(frozen=True)
class CoreMLSource:
    """What ``coreml.build`` converts: the model object, its requested inputs and labels."""

    framework: str
    #: a TorchScript module, a Keras model, or a SavedModel's signature function
    model: Any
    inputs: tuple[CoreMLInput, ...]
    #: Keras and TensorFlow take NHWC images, PyTorch NCHW
    channels_last: bool
    class_labels: tuple[str, ...] = ()
    class_labels_file: str = ""
    #: keeps the object that owns a signature function's variables alive
    owner: Any = None


def load(frontend: Frontend, model_dir: Path, options: ImportOptions) -> ImportedModel:
    """Read the model for coremltools; ClientErrors for what Core ML conversion cannot take."""
    framework = frontend.framework
    if framework not in CONVERTIBLE:
        kinds = "; ".join(f"{f} ({what})" for f, what in CONVERTIBLE.items())
        raise client_error(
            "InputConfiguration",
            f"TargetDevice coreml converts models with coremltools, which reads {kinds}; it has no converter for "
            f"{framework} models. Export the model from its training framework as one of those, or compile the "
            f"{framework} model for a CPU TargetDevice",
        )
    _check_options(options.compiler_options)
    given = parse_coreml_inputs(options.data_input_config)
    if given is None:
        raise client_error(
            "InputConfiguration",
            "DataInputConfig is required for TargetDevice coreml, e.g. "
            '{"input_1": {"shape": [1, 224, 224, 3]}} or, for PyTorch, [{"shape": [1, 3, 224, 224]}]',
        )
    labels_file, labels = _class_labels(model_dir, options.compiler_options.get("class_labels"))
    read = _READERS[framework](model_dir, options)
    inputs = _named(given, read)
    channels_last = framework != "PYTORCH"
    for inp in inputs:
        if inp.image is not None:
            image_channels(inp, channels_last)
    return ImportedModel(
        ir=CoreMLSource(framework, read.model, inputs, channels_last, labels, labels_file, read.owner),
        inputs=tuple(TensorSpec(i.name, i.default, "float32") for i in inputs),
        outputs=(),  # named by coremltools; compiled.meta lists them from the converted model
        source_file=read.source,
        ir_kind="coreml",
    )


@dataclass(frozen=True)
class _Read:
    """A framework reader's result."""

    model: Any
    names: tuple[str, ...]          # the model's inputs, in order
    source: str                     # for messages and compiled.meta
    #: TorchScript inputs have no names of their own: DataInputConfig's names are used
    names_free: bool = False
    owner: Any = None


def _read_torchscript(model_dir: Path, options: ImportOptions) -> _Read:
    from neo_local.frontends.pytorch import PyTorchFrontend, read_torchscript

    path = find_model_file(model_dir, PyTorchFrontend.suffixes, "PYTORCH")
    if path.suffix == ".pt2":
        raise client_error(
            "InputConfiguration",
            f"{path.name} is an ExportedProgram; for TargetDevice coreml give a TorchScript model "
            "(torch.jit.trace(model, example).save('model.pth'))",
        )
    module = read_torchscript(path)
    count = len(module.forward.schema.arguments) - 1  # without self
    return _Read(module, tuple(f"input{i}" for i in range(count)), path.name, names_free=True)


def _read_keras(model_dir: Path, options: ImportOptions) -> _Read:
    import keras

    from neo_local.frontends.keras import KerasFrontend, layer_name, load_keras_model

    path = find_model_file(model_dir, KerasFrontend.suffixes, "KERAS")
    model = load_keras_model(path)
    if isinstance(model, keras.Sequential):  # coremltools 9 reads Keras 3 functional models only
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    return _Read(model, tuple(layer_name(t) for t in model.inputs), path.name)


def _read_saved_model(model_dir: Path, options: ImportOptions) -> _Read:
    from neo_local.frontends.tensorflow import find_tensorflow_model, load_signature

    directory, graph = find_tensorflow_model(model_dir)
    if directory is None:
        raise client_error(
            "InputConfiguration",
            f"{graph.relative_to(model_dir)} is a frozen graph; for TargetDevice coreml give a SavedModel directory "
            "(tf.saved_model.save) with one signature to convert",
        )
    source, loaded, key, fn = load_signature(model_dir, directory, options)
    _, kwargs = fn.structured_input_signature
    return _Read(fn, tuple(sorted(kwargs)), f"{source} (signature '{key}')", owner=loaded)


_READERS = {"PYTORCH": _read_torchscript, "KERAS": _read_keras, "TENSORFLOW": _read_saved_model}


def _named(given: tuple[CoreMLInput, ...], read: _Read) -> tuple[CoreMLInput, ...]:
    """Inputs named and in the model's order: the list form by position, the object form by name."""
    listing = ", ".join(read.names)
    if len(given) != len(read.names):
        raise client_error(
            "InputConfiguration",
            f"DataInputConfig gives {len(given)} input(s) but {read.source} has {len(read.names)}: {listing}",
        )
    if all(inp.name is None for inp in given):
        return tuple(replace(inp, name=name) for inp, name in zip(given, read.names))
    if read.names_free:
        return given
    unknown = [inp.name for inp in given if inp.name not in read.names]
    if unknown:
        raise client_error(
            "InputConfiguration",
            f"Input '{unknown[0]}' in DataInputConfig is not an input of {read.source}. Its inputs are: {listing}",
        )
    order = {name: i for i, name in enumerate(read.names)}
    return tuple(sorted(given, key=lambda inp: order[inp.name]))


def _check_options(values: Mapping[str, Any]) -> None:
    """CPU options (mcpu, mattr...) mean nothing to Core ML, which picks its compute units on the device."""
    unusable = sorted(k for k in values if k not in _COREML_OPTIONS)
    if unusable:
        raise client_error(
            "OutputConfiguration",
            f"CompilerOptions {', '.join(unusable)}: not used by TargetDevice coreml; its options are "
            "class_labels (and signature_def_key for TensorFlow SavedModels)",
        )


def _class_labels(model_dir: Path, name: Any) -> tuple[str, tuple[str, ...]]:
    """CompilerOptions class_labels: a text file inside the archive, one label per line."""
    if name is None:
        return "", ()
    if not isinstance(name, str) or not name.strip():
        raise client_error(
            "OutputConfiguration",
            f"CompilerOptions class_labels must be the name of a text file in the model archive, e.g. "
            f'{{"class_labels": "imagenet_labels_1000.txt"}}; got {name!r}',
        )
    files = archive_files(model_dir)
    matches = [p for p in files if str(p.relative_to(model_dir)) == name] or [p for p in files if p.name == name]
    if len(matches) != 1:
        texts = ", ".join(str(p.relative_to(model_dir)) for p in files if p.suffix == ".txt") or "none"
        found = "is not in the model archive" if not matches else f"matches {len(matches)} files; give its path"
        raise client_error(
            "OutputConfiguration",
            f"CompilerOptions class_labels file '{name}' {found}. Text files in the archive: {texts}",
        )
    labels = tuple(line.strip() for line in matches[0].read_text(errors="replace").splitlines() if line.strip())
    if not labels:
        raise client_error("OutputConfiguration", f"CompilerOptions class_labels file '{name}' has no labels")
    return name, labels
