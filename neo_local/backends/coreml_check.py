"""The check of a Core ML artifact on a host that cannot run it.

Core ML predicts only on Apple's systems and coremltools 9 has no interpreter for ML Programs,
so the saved package is read back (``coremltools.utils.load_spec``) and compared with what the
request asked for: input names, types and shapes, flexible shapes (ranges, enumerated shapes),
image preprocessing (the scale and bias ops at the start of the program), the outputs, and the
classifier's labels. Any difference is an internal error: the converter did not do as asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from neo_local.api.errors import internal_error
from neo_local.backends.coreml import PACKAGE
from neo_local.backends.coreml_inputs import CoreMLInput, image_channels
from neo_local.backends.coreml_source import CoreMLSource

NOT_RUN = "not run: Core ML predicts only on macOS/iOS and coremltools 9 cannot evaluate an ML Program on Linux"


def check_saved_model(folder: Path, source: CoreMLSource) -> str:
    """Compare the saved package with the request; return what was checked."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(folder / PACKAGE))
    if spec.WhichOneof("Type") != "mlProgram":
        _mismatch(f"the package holds a {spec.WhichOneof('Type')} model, not an ML Program")
    consts, ops = _program(spec)
    features = list(spec.description.input)
    names = [f.name for f in features]
    if names != [i.name for i in source.inputs]:
        _mismatch(f"inputs {names}, requested {[i.name for i in source.inputs]}")
    checked = [
        _check_image(f, i, source.channels_last, consts, ops) if i.image else _check_tensor(f, i)
        for f, i in zip(features, source.inputs)
    ]
    outputs = [f.name for f in spec.description.output]
    if not outputs:
        _mismatch("the model has no outputs")
    checked.append(f"outputs {', '.join(outputs)}")
    if source.class_labels:
        checked.append(_check_labels(spec, consts, ops, source))
    return f"{NOT_RUN}. Structural check of the saved {PACKAGE} passed: {'; '.join(checked)}"


def _check_tensor(feature: Any, inp: CoreMLInput) -> str:
    if feature.type.WhichOneof("Type") != "multiArrayType":
        _mismatch(f"input {inp.name} is a {feature.type.WhichOneof('Type')}, requested a Tensor (MultiArray)")
    array = feature.type.multiArrayType
    _same(f"input {inp.name} default shape", tuple(array.shape), inp.default)
    enumerated = tuple(tuple(s.shape) for s in array.enumeratedShapes.shapes)
    _same(f"input {inp.name} enumerated shapes", set(enumerated), set(inp.enumerated))
    ranges = tuple((r.lowerBound, r.upperBound) for r in array.shapeRange.sizeRanges)
    _same(f"input {inp.name} shape ranges", ranges, _bounds(inp) if _ranged(inp) else ())
    return f"input {inp.name} Tensor {_flexible(inp)}"


def _check_image(feature: Any, inp: CoreMLInput, channels_last: bool, consts: dict, ops: list) -> str:
    if feature.type.WhichOneof("Type") != "imageType":
        _mismatch(f"input {inp.name} is a {feature.type.WhichOneof('Type')}, requested an Image")
    image = feature.type.imageType
    channels = image_channels(inp, channels_last)
    hw = (1, 2) if channels_last else (2, 3)
    color = "RGB" if channels == 3 else "GRAYSCALE"
    _same(f"input {inp.name} color space", image.ColorSpace.Name(image.colorSpace), color)
    _same(f"input {inp.name} default height x width", (image.height, image.width), tuple(inp.default[a] for a in hw))
    sizes = {(s.height, s.width) for s in image.enumeratedSizes.sizes}
    _same(f"input {inp.name} enumerated sizes", sizes, {tuple(s[a] for a in hw) for s in inp.enumerated})
    if _ranged(inp):
        got = tuple((r.lowerBound, r.upperBound) for r in (image.imageSizeRange.heightRange, image.imageSizeRange.widthRange))
        _same(f"input {inp.name} height and width ranges", got, tuple(_bounds(inp)[a] for a in hw))
    scale, bias = _preprocessing(inp.name, channels, consts, ops)
    if not np.allclose(scale, inp.image.scale, rtol=1e-6) or not np.allclose(bias, inp.image.bias, rtol=1e-6):
        _mismatch(f"input {inp.name} is preprocessed with scale {scale} and bias {list(bias)}, requested "
                  f"scale {inp.image.scale} and bias {list(inp.image.bias)}")
    return f"input {inp.name} Image ({color}) {_flexible(inp)}, scale {scale:.9g}, bias {[float(b) for b in bias]}"


def _check_labels(spec: Any, consts: dict, ops: list, source: CoreMLSource) -> str:
    classify = [op for op in ops if op.type == "classify"]
    if len(classify) != 1 or not spec.description.predictedFeatureName:
        _mismatch("the model is not a classifier, though class_labels were given")
    argument = classify[0].inputs["classes"].arguments[0]
    value = argument.value if argument.WhichOneof("binding") == "value" else consts[argument.name]
    labels = tuple(v.immediateValue.tensor.strings.values[0] for v in value.immediateValue.list.values)
    _same("class labels", labels, source.class_labels)
    return (f"classifier outputs {spec.description.predictedFeatureName} and "
            f"{spec.description.predictedProbabilitiesName} with the {len(labels)} labels of {source.class_labels_file}")


def _program(spec: Any) -> tuple[dict[str, Any], list[Any]]:
    """The main function's operations, and its constants by output name."""
    main = spec.mlProgram.functions["main"]
    ops = list(main.block_specializations[main.opset].operations)
    consts = {op.outputs[0].name: op.attributes["val"] for op in ops if op.type == "const"}
    return consts, ops


def _preprocessing(name: str, channels: int, consts: dict[str, Any], ops: list[Any]) -> tuple[float, np.ndarray]:
    """The scale and bias the program applies to image input ``name`` (mul, then add, on the input;
    coremltools leaves out a scale of 1 and a bias of 0)."""
    scale, bias, current = 1.0, np.zeros(channels), name
    for op_type in ("mul", "add"):
        op = next((o for o in ops if o.type == op_type and _argument(o, "x") == current), None)
        if op is None:
            continue
        values = _tensor(consts[_argument(op, "y")])
        if op_type == "mul":
            scale = float(values.reshape(-1)[0])
        else:
            bias = values.reshape(-1)
        current = op.outputs[0].name
    return scale, bias


def _argument(op: Any, key: str) -> str:
    return op.inputs[key].arguments[0].name


def _tensor(value: Any) -> np.ndarray:
    tensor = value.immediateValue.tensor
    kind = tensor.WhichOneof("value")
    if kind == "bytes":  # float16 constants are stored as raw bytes
        return np.frombuffer(tensor.bytes.values, dtype=np.float16).astype(np.float64)
    return np.asarray(getattr(tensor, kind).values, dtype=np.float64)


def _ranged(inp: CoreMLInput) -> bool:
    return any(isinstance(d, tuple) for d in inp.shape)


def _bounds(inp: CoreMLInput) -> tuple[tuple[int, int], ...]:
    return tuple(d if isinstance(d, tuple) else (d, d) for d in inp.shape)


def _flexible(inp: CoreMLInput) -> str:
    default = "x".join(map(str, inp.default))
    if inp.enumerated:
        return f"{default} (enumerated {', '.join('x'.join(map(str, s)) for s in inp.enumerated)})"
    if _ranged(inp):
        return f"{default} (ranges {' x '.join(f'{lo}..{hi}' if lo != hi else str(lo) for lo, hi in _bounds(inp))})"
    return default


def _same(what: str, got: Any, wanted: Any) -> None:
    if got != wanted:
        _mismatch(f"{what} {got}, requested {wanted}")


def _mismatch(problem: str) -> NoReturn:
    raise internal_error(f"the Core ML model does not match the request: {problem}")
