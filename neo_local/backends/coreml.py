"""TargetDevice coreml: coremltools converts the source model to a Core ML ML Program.

The artifact is ``model.mlpackage`` (an ML Program: what coremltools makes by default and what
Neo produces for current Core ML versions; it runs on macOS 12 / iOS 15 and later). The older
single-file ``.mlmodel`` (neural network) format cannot hold ML Programs and is not produced.
Core ML runs only on Apple's systems, so the artifact is checked structurally (coreml_check).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neo_local.api.errors import client_error, exception_line
from neo_local.backends.base import BuiltModel
from neo_local.backends.coreml_inputs import CoreMLInput, image_channels
from neo_local.backends.coreml_source import CoreMLSource
from neo_local.frontends.base import ImportedModel
from neo_local.targets.spec import TargetSpec

PACKAGE = "model.mlpackage"
#: the oldest systems that load an ML Program (coremltools' default deployment target for it)
DEPLOYMENT = "iOS 15 / macOS 12"


def build(model: ImportedModel, target: TargetSpec, out_dir: Path) -> BuiltModel:
    import coremltools as ct

    source: CoreMLSource = model.ir
    classifier = ct.ClassifierConfig(list(source.class_labels)) if source.class_labels else None
    try:
        mlmodel = ct.convert(
            source.model if source.framework != "TENSORFLOW" else [source.model],  # a signature: a list
            source="pytorch" if source.framework == "PYTORCH" else "tensorflow",
            inputs=[_coreml_input(ct, i, source.channels_last) for i in source.inputs],
            outputs=_torch_outputs(ct, source) if source.framework == "PYTORCH" and not classifier else None,
            classifier_config=classifier,
            convert_to="mlprogram",
        )
    except Exception as exc:  # coremltools raises ValueError, NotImplementedError, RuntimeError...
        raise client_error(
            "InputConfiguration",
            f"coremltools {ct.__version__} could not convert {model.source_file}: {_reason(exc)}",
        ) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    mlmodel.save(str(out_dir / PACKAGE))
    spec = mlmodel.get_spec()
    details: dict[str, Any] = {
        "CoreMLFormat": f"ML Program ({PACKAGE}), Core ML specification version "
                        f"{spec.specificationVersion}, for {DEPLOYMENT} or later",
    }
    if source.class_labels:
        details["ClassLabels"] = f"{len(source.class_labels)} labels from {source.class_labels_file}"
    return BuiltModel(
        library=PACKAGE,
        runtime="coreml",
        compiler_versions={"coremltools": ct.__version__},
        details=details,
        model_meta={
            "Inputs": [i.as_meta() for i in source.inputs],
            "Outputs": [_feature_meta(f) for f in spec.description.output],
        },
    )


def _reason(exc: Exception) -> str:
    """coremltools' own errors say it first; TensorFlow's (tracing Keras models) say it last."""
    first = exception_line(exc, last=False)
    return exception_line(exc) if first.endswith("in user code:") else first


def _coreml_input(ct: Any, inp: CoreMLInput, channels_last: bool) -> Any:
    """The coremltools input type for one requested input."""
    if inp.enumerated:
        shape: Any = ct.EnumeratedShapes(shapes=[list(s) for s in inp.enumerated], default=list(inp.default))
    else:
        shape = [ct.RangeDim(d[0], d[1], default=x) if isinstance(d, tuple) else d for d, x in zip(inp.shape, inp.default)]
    if inp.image is None:
        return ct.TensorType(name=inp.name, shape=shape)
    rgb = image_channels(inp, channels_last) == 3
    return ct.ImageType(
        name=inp.name,
        shape=shape,
        bias=list(inp.image.bias) if rgb else inp.image.bias[0],
        scale=inp.image.scale,
        color_layout=ct.colorlayout.RGB if rgb else ct.colorlayout.GRAYSCALE,
        channel_first=not channels_last,
    )


def _torch_outputs(ct: Any, source: CoreMLSource) -> list[Any]:
    """Name a TorchScript model's outputs output0, output1... as the other targets do (coremltools
    would name them after internal variables); their count comes from one run at the default shapes."""
    import torch

    with torch.no_grad():
        out = source.model(*(torch.zeros(i.default) for i in source.inputs))
    count = len(out) if isinstance(out, (tuple, list)) else 1
    return [ct.TensorType(name=f"output{i}") for i in range(count)]


def _feature_meta(feature: Any) -> dict[str, Any]:
    """An output of the converted model for compiled.meta: its name and Core ML type."""
    kind = feature.type.WhichOneof("Type")
    meta: dict[str, Any] = {"name": feature.name, "type": kind}
    if kind == "multiArrayType":
        from coremltools.proto import FeatureTypes_pb2

        array = feature.type.multiArrayType
        meta["dtype"] = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(array.dataType).lower()
        if array.shape:
            meta["shape"] = list(array.shape)
    return meta
