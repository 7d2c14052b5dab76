"""DataInputConfig for TargetDevice coreml, in the forms Neo documents for its Core ML converter.

Per input, by name in an object (``{"input_1": ...}``) or in order in a list (PyTorch):

    [1, 3, 224, 224]                                  a fixed shape, as for every target
    {"shape": [1, 3, 224, 224]}                       the same
    {"shape": ["1..10", 3, 224, 224]}                 range dimensions (coremltools RangeDim)
    {"shape": [[1, 3, 224, 224], [1, 3, 160, 160]]}   enumerated shapes (EnumeratedShapes)
    "default_shape": [1, 3, 224, 224]                 the default of ranges or enumerated shapes
    "type": "Image" with "bias": [-1, -1, -1] and "scale": 0.0078  (ImageType; default "Tensor")

Shapes are in the model's own layout: NCHW for PyTorch, NHWC for Keras and TensorFlow (Neo's
Core ML examples), unlike the NCHW DataInputConfig of Keras models for CPU targets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NoReturn

from neo_local.api.errors import client_error
from neo_local.api.jsonish import parse_jsonish

#: a fixed size, or the (lower, upper) bounds of a range dimension
Dim = int | tuple[int, int]

_KEYS = ("shape", "default_shape", "type", "bias", "scale")
_TYPES = ("Tensor", "Image")
_RANGE = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*$")
_EXAMPLE = (
    'e.g. {"input_1": {"shape": [[1, 224, 224, 3], [1, 160, 160, 3]], "default_shape": [1, 224, 224, 3]}} or, '
    'for PyTorch, [{"shape": ["1..10", 3, 224, 224], "type": "Image", "bias": [-1, -1, -1], "scale": 0.007843137255}]'
)


@dataclass(frozen=True)
class ImagePreprocessing:
    """Core ML computes ``scale * pixel + bias`` (bias per channel) before the model runs."""

    bias: tuple[float, ...]
    scale: float


@dataclass(frozen=True)
class CoreMLInput:
    """One input as requested: a fixed or ranged shape, or enumerated shapes; and its default."""

    name: str | None
    shape: tuple[Dim, ...] = ()                       # fixed or ranged; () when enumerated
    enumerated: tuple[tuple[int, ...], ...] = ()
    default: tuple[int, ...] = ()
    image: ImagePreprocessing | None = None

    @property
    def rank(self) -> int:
        return len(self.default)

    def as_meta(self) -> dict[str, Any]:
        """The input as compiled.meta records it (``shape`` is the default shape)."""
        meta: dict[str, Any] = {"name": self.name, "shape": list(self.default), "dtype": "float32",
                                "type": "Image" if self.image else "Tensor"}
        if self.enumerated:
            meta["enumerated_shapes"] = [list(s) for s in self.enumerated]
        elif any(isinstance(d, tuple) for d in self.shape):
            meta["shape_range"] = [list(d) if isinstance(d, tuple) else [d, d] for d in self.shape]
        if self.image:
            meta.update(bias=list(self.image.bias), scale=self.image.scale)
        return meta


def parse_coreml_inputs(text: str | None) -> tuple[CoreMLInput, ...] | None:
    """The inputs of DataInputConfig in order (names None in the list form); None when not given."""
    if text is None or not text.strip():
        return None
    try:
        value = parse_jsonish(text, "DataInputConfig")
    except ValueError as exc:
        raise client_error("InputConfiguration", f"{exc}; {_EXAMPLE}") from None
    if isinstance(value, dict) and value:
        return tuple(_input(str(name), entry) for name, entry in value.items())
    if isinstance(value, list) and value and all(isinstance(e, (list, dict)) for e in value):
        return tuple(_input(None, entry, f"input {i}") for i, entry in enumerate(value))
    raise client_error(
        "InputConfiguration",
        f"DataInputConfig for TargetDevice coreml must be an object of inputs or a list of them, {_EXAMPLE}; got {text!r}",
    )


def _input(name: str | None, entry: Any, label: str | None = None) -> CoreMLInput:
    where = f"'{name}'" if name is not None else label
    if isinstance(entry, list):
        entry = {"shape": entry}
    if not isinstance(entry, dict):
        _fail(where, f"must be a shape list or an object with {', '.join(_KEYS)}, got {entry!r}")
    unknown = [k for k in entry if k not in _KEYS]
    if unknown:
        _fail(where, f"has unknown key(s) {', '.join(unknown)}; the keys for TargetDevice coreml are {', '.join(_KEYS)}")
    if "shape" not in entry:
        _fail(where, "has no \"shape\"")
    shape, enumerated = _shape(where, entry["shape"])
    default = _default(where, shape, enumerated, entry.get("default_shape"))
    return CoreMLInput(name, shape, enumerated, default, _image(where, entry))


def _shape(where: str | None, value: Any) -> tuple[tuple[Dim, ...], tuple[tuple[int, ...], ...]]:
    """(fixed or ranged shape, ()) or ((), enumerated shapes)."""
    if isinstance(value, list) and value and all(isinstance(s, list) for s in value):
        shapes = tuple(_sizes(where, s, "each enumerated shape") for s in value)
        if len({len(s) for s in shapes}) > 1:
            _fail(where, f"enumerated shapes must all have the same rank, got {[list(s) for s in shapes]}")
        if len(set(shapes)) != len(shapes):
            _fail(where, f"lists an enumerated shape twice: {[list(s) for s in shapes]}")
        return ((), shapes) if len(shapes) > 1 else (shapes[0], ())
    if not isinstance(value, list) or not value:
        _fail(where, f"\"shape\" must be a list of sizes, of sizes and \"lower..upper\" ranges, or of shapes; got {value!r}")
    return tuple(_dim(where, d) for d in value), ()


def _dim(where: str | None, d: Any) -> Dim:
    if _positive_int(d):
        return d
    match = _RANGE.match(d) if isinstance(d, str) else None
    if match is None:
        _fail(where, f"has dimension {d!r}; a dimension is a positive integer or a range such as \"1..10\"")
    lower, upper = int(match[1]), int(match[2])
    if not 1 <= lower <= upper:
        _fail(where, f"has range {d!r}; a range \"lower..upper\" needs 1 <= lower <= upper")
    return (lower, upper) if lower < upper else lower


def _sizes(where: str | None, value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value or not all(_positive_int(d) for d in value):
        _fail(where, f"{what} must be a list of positive integers, got {value!r}")
    return tuple(value)


def _default(
    where: str | None, shape: tuple[Dim, ...], enumerated: tuple[tuple[int, ...], ...], value: Any
) -> tuple[int, ...]:
    """The given default_shape, checked; otherwise the first enumerated shape or the ranges' lower bounds."""
    if value is None:
        return enumerated[0] if enumerated else tuple(d[0] if isinstance(d, tuple) else d for d in shape)
    default = _sizes(where, value, "\"default_shape\"")
    if enumerated:
        if default not in enumerated:
            _fail(where, f"\"default_shape\" {list(default)} is not one of the enumerated shapes {[list(s) for s in enumerated]}")
        return default
    fits = len(default) == len(shape) and all(
        d[0] <= x <= d[1] if isinstance(d, tuple) else x == d for d, x in zip(shape, default)
    )
    if not fits:
        _fail(where, f"\"default_shape\" {list(default)} is not within \"shape\" {_show(CoreMLInput(None, shape))}")
    return default


def _image(where: str | None, entry: dict[str, Any]) -> ImagePreprocessing | None:
    kind = entry.get("type", "Tensor")
    if kind not in _TYPES:
        _fail(where, f"has \"type\" {kind!r}; the allowed values are {' and '.join(_TYPES)}")
    given = [k for k in ("bias", "scale") if k in entry]
    if kind == "Tensor":
        if given:
            _fail(where, f"gives {' and '.join(given)}, which apply only to \"type\": \"Image\" inputs")
        return None
    missing = [k for k in ("bias", "scale") if k not in entry]
    if missing:
        _fail(where, f"is an Image input without {' and '.join(missing)}; Image inputs need both, e.g. "
                     "\"bias\": [-1, -1, -1], \"scale\": 0.007843137255")
    bias, scale = entry["bias"], entry["scale"]
    bias = [bias] if _number(bias) else bias
    if not isinstance(bias, list) or not bias or not all(_number(b) for b in bias):
        _fail(where, f"\"bias\" must be a list of numbers, one per channel, got {entry['bias']!r}")
    if not _number(scale) or scale == 0:
        _fail(where, f"\"scale\" must be a non-zero number, got {scale!r}")
    return ImagePreprocessing(tuple(float(b) for b in bias), float(scale))


def image_channels(inp: CoreMLInput, channels_last: bool) -> int:
    """The channel count of an Image input (1: grayscale, 3: RGB), checked against its bias."""
    where = f"'{inp.name}'"
    axis = -1 if channels_last else 1
    layout = "NHWC" if channels_last else "NCHW"
    shapes = inp.enumerated or (inp.shape,)
    counts = {s[axis] for s in shapes} if inp.rank == 4 else set()
    if len(counts) != 1 or next(iter(counts)) not in (1, 3):
        _fail(where, f"is an Image input, which needs a 4-D {layout} shape with 1 (grayscale) or 3 (RGB) channels "
                     f"fixed in dimension {axis % 4}; got {_show(inp)}")
    channels = next(iter(counts))
    if len(inp.image.bias) != channels:
        _fail(where, f"has {len(inp.image.bias)} bias value(s) for an Image with {channels} channel(s); give one per channel")
    return channels


def _show(inp: CoreMLInput) -> str:
    if inp.enumerated:
        return str([list(s) for s in inp.enumerated])
    return str([f"{d[0]}..{d[1]}" if isinstance(d, tuple) else d for d in inp.shape])


def _positive_int(d: Any) -> bool:
    return isinstance(d, int) and not isinstance(d, bool) and d > 0


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _fail(where: str | None, problem: str) -> NoReturn:
    raise client_error("InputConfiguration", f"DataInputConfig {where} {problem}")
