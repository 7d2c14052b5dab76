"""DarkNet: one ``.cfg`` and one ``.weights`` file (YOLO detectors, darknet classifiers).

No DarkNet package is needed: both files are read directly (``darknet_format``) and each layer
becomes a few ONNX nodes (one small function per layer type, ``LAYERS``), imported into Relax by
the shared ONNX importer. Shapes follow darknet's own arithmetic, tracked here layer by layer.

Semantics, as darknet computes them at inference:

- batch norm: ``scales * (x - rolling_mean) / (sqrt(rolling_variance) + 1e-6) + biases``
  (``normalize_cpu`` in darknet's blas.c), folded into the convolution's weights and bias;
- maxpool: ``padding`` defaults to ``size - 1``, windows start at ``-padding/2``, output
  ``(h + padding - size) / stride + 1``: size 2 stride 1 (yolov3-tiny) pads one row/column
  on the right/bottom only; out-of-image values never win;
- avgpool is global; softmax runs over each group of a layer's flattened outputs;
- yolo: the layer's own output, as ``forward_yolo_layer`` leaves it: the logistic function on
  x, y, objectness and class scores of every anchor (w, h stay raw), with ``scale_x_y`` when
  given. Box decoding (grid offsets, anchors, thresholds, NMS) is post-processing outside
  the network, as in darknet.

Outputs: every ``[yolo]`` layer in cfg order, named ``yolo_<layer index>``; a network without
yolo layers outputs its last layer, named ``<layer type>_<index>`` (e.g. ``softmax_12``; trailing
``[cost]``/``[dropout]`` layers, identities at inference, do not name it). All
tensors keep darknet's (channels, height, width) shape as NCHW, so a classifier's output is
``[batch, classes, 1, 1]``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from neo_local.api.errors import JobFailure, client_error, unsupported_error
from neo_local.frontends import register
from neo_local.frontends.archive_rules import find_model_file
from neo_local.frontends.base import Frontend, ImportedModel, ImportOptions, TensorSpec
from neo_local.frontends.darknet_format import FormatError, Section, parse_cfg, read_weights
from neo_local.frontends.data_input import format_data_input_config, parse_data_input_config
from neo_local.frontends.onnx_builder import OnnxBuilder, translation_reference
from neo_local.frontends.onnx_import import import_onnx

INPUT_NAME = "data"
BN_EPSILON = 1e-6  # added to sqrt(variance), as darknet does


@register
class DarknetFrontend(Frontend):
    framework = "DARKNET"
    suffixes = (".cfg", ".weights")
    requires = ("onnx", "onnxruntime")

    def load(self, model_dir: Path, options: ImportOptions) -> ImportedModel:
        cfg_path = find_model_file(model_dir, (".cfg",), self.framework)
        weights_path = find_model_file(model_dir, (".weights",), self.framework)
        try:
            sections = parse_cfg(cfg_path.read_text(encoding="utf-8", errors="replace"))
        except FormatError as exc:
            raise client_error("InputConfiguration", f"{cfg_path.name} is not a darknet .cfg file: {exc}") from None
        try:
            weights = read_weights(weights_path.read_bytes())
        except FormatError as exc:
            raise client_error("InputConfiguration", f"{weights_path.name} is not a darknet .weights file: {exc}") from None
        net, layers = sections[0], sections[1:]
        if net.kind != "net":
            raise client_error(
                "InputConfiguration", f"{cfg_path.name} must start with a [net] section, found {net.header} at line {net.line}"
            )
        if not layers:
            raise client_error("InputConfiguration", f"{cfg_path.name} has no layers after [net]")
        missing = Counter(s.header for s in layers if s.kind not in LAYERS)
        if missing:
            raise unsupported_error(cfg_path.name, "layer types", missing, "layer")
        spec, derived = resolve_input(net, options.data_input_config, cfg_path.name)
        model = _translate(layers, weights, spec, cfg_path.name, weights_path.name)
        mod, outputs = import_onnx(model, (spec,), cfg_path.name)
        reference, label = translation_reference(model, self.framework)
        return ImportedModel(
            ir=mod,
            inputs=(spec,),
            outputs=outputs,
            reference=reference,
            reference_label=label,
            derived={"DerivedDataInputConfig": derived} if derived else {},
            source_file=cfg_path.name,
        )


def _net_int(net: Section, key: str, source: str) -> int:
    value = net.options.get(key, "0")
    try:
        return int(float(value))
    except ValueError:
        raise client_error("InputConfiguration", f"{source}: [net] {key}={value} is not an integer") from None


def resolve_input(net: Section, data_input_config: str | None, source: str) -> tuple[TensorSpec, str | None]:
    """The one input, ``data`` NCHW: from DataInputConfig, or [net] width/height/channels."""
    c, h, w = (_net_int(net, k, source) for k in ("channels", "height", "width"))
    described = f"{INPUT_NAME} [1, {c}, {h}, {w}] float32"
    given = parse_data_input_config(data_input_config)
    if given is None:
        if not (c > 0 and h > 0 and w > 0):
            raise client_error(
                "InputConfiguration",
                f"DataInputConfig is required: the [net] section of {source} gives no width, height and channels "
                f'(found width={w}, height={h}, channels={c}); e.g. {{"{INPUT_NAME}": [1, 3, 416, 416]}}',
            )
        shape = (1, c, h, w)
        return TensorSpec(INPUT_NAME, shape, "float32"), format_data_input_config([(INPUT_NAME, shape)])
    if len(given) != 1:
        raise client_error(
            "InputConfiguration",
            f"DataInputConfig lists {len(given)} inputs; a DarkNet model has one: {described}",
        )
    name, shape = given[0]
    if name not in (None, INPUT_NAME):
        raise client_error(
            "InputConfiguration",
            f"Input '{name}' in DataInputConfig is not an input of the model. The model's inputs are: {described}",
        )
    if len(shape) != 4:
        raise client_error(
            "InputConfiguration",
            f"DataInputConfig shape {list(shape)} for '{INPUT_NAME}' must be NCHW: [batch, channels, height, width]",
        )
    if c > 0 and shape[1] != c:
        raise client_error(
            "InputConfiguration",
            f"DataInputConfig shape {list(shape)} for '{INPUT_NAME}' has {shape[1]} channels but {source} says "
            f"channels={c}; the shape is NCHW: [batch, channels, height, width], e.g. [1, {c}, {h or 416}, {w or 416}]",
        )
    return TensorSpec(INPUT_NAME, tuple(shape), "float32"), None


# --------------------------------------------------------------------------- translation


@dataclass(frozen=True)
class Tensor:
    name: str
    c: int
    h: int
    w: int

    def dims(self) -> str:
        return f"{self.c}x{self.h}x{self.w}"


class WeightStream:
    """The float32 values of a .weights file, taken in cfg order; a short file reads as zeros
    so that the translation can finish and report how many values the cfg needs."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.pos = 0

    def take(self, n: int) -> np.ndarray:
        chunk = self.values[self.pos:self.pos + n]
        self.pos += n
        if len(chunk) < n:
            chunk = np.concatenate([chunk, np.zeros(n - len(chunk), np.float32)])
        return chunk.astype(np.float32)


class LayerContext:
    def __init__(self, b, section, index, source, outputs, x, weights, batch, transpose) -> None:
        self.b: OnnxBuilder = b
        self.section: Section = section
        self.index: int = index
        self.source: str = source
        self.outputs: list[Tensor] = outputs   # earlier layers' outputs, by index
        self.x: Tensor = x                     # this layer's input: the previous layer's output
        self.weights: WeightStream = weights
        self.batch: int = batch
        self.transpose: bool = transpose

    @property
    def hint(self) -> str:
        return f"l{self.index}_{self.section.kind}"

    def error(self, message: str) -> JobFailure:
        return client_error(
            "InputConfiguration",
            f"{self.source}: layer {self.index} {self.section.header} (line {self.section.line}): {message}",
        )

    def _number(self, key: str, default, parse):
        raw = self.section.options.get(key)
        if raw is None or raw == "":
            return default
        try:
            return parse(raw)
        except ValueError:
            raise self.error(f"{key}={raw} is not a number") from None

    def int(self, key: str, default: int | None = None) -> int | None:
        return self._number(key, default, lambda v: int(float(v)))

    def float(self, key: str, default: float | None = None) -> float | None:
        return self._number(key, default, float)

    def ints(self, key: str) -> list[int]:
        raw = self.section.options.get(key, "")
        try:
            return [int(float(v)) for v in raw.split(",") if v != ""]
        except ValueError:
            raise self.error(f"{key}={raw} is not a list of integers") from None

    def str(self, key: str, default: str) -> str:
        return self.section.options.get(key, default)

    def refuse(self, *keys: str, allowed: dict | None = None) -> None:
        """Options that change the computation in ways not implemented here."""
        for key in keys:
            value = self.section.options.get(key)
            ok = (allowed or {}).get(key, ("0", ""))
            if value is not None and value not in ok:
                raise self.error(f"{key}={value} is not supported")

    def layer(self, ref: int) -> Tensor:
        """An earlier layer by darknet's index rules: negative is relative to this layer."""
        index = self.index + ref if ref < 0 else ref
        if not 0 <= index < self.index:
            raise self.error(f"refers to layer {ref} (index {index}), which is not an earlier layer")
        return self.outputs[index]

    def op(self, op_type: str, inputs: list[str], suffix: str = "", **attrs) -> str:
        return self.b.op(op_type, inputs, self.hint + suffix, **attrs)

    def const(self, value, suffix: str) -> str:
        return self.b.const(value, self.hint + suffix)

    def activate(self, x: str, key: str = "activation", default: str = "linear") -> str:
        name = self.str(key, default)
        fn = ACTIVATIONS.get(name)
        if fn is None:
            raise self.error(f"activation={name} is not supported (supported: {', '.join(sorted(ACTIVATIONS))})")
        return fn(self, x)


def _mish(ctx: LayerContext, x: str) -> str:
    return ctx.op("Mul", [x, ctx.op("Tanh", [ctx.op("Softplus", [x], "_softplus")], "_tanh")], "_mish")


ACTIVATIONS: dict[str, Callable[[LayerContext, str], str]] = {
    "linear": lambda c, x: x,
    "leaky": lambda c, x: c.op("LeakyRelu", [x], "_leaky", alpha=0.1),
    "relu": lambda c, x: c.op("Relu", [x], "_relu"),
    "relu6": lambda c, x: c.op("Clip", [x, c.const(np.float32(0), "_zero"), c.const(np.float32(6), "_six")], "_relu6"),
    "logistic": lambda c, x: c.op("Sigmoid", [x], "_logistic"),
    "tanh": lambda c, x: c.op("Tanh", [x], "_tanh"),
    "elu": lambda c, x: c.op("Elu", [x], "_elu", alpha=1.0),
    "selu": lambda c, x: c.op("Selu", [x], "_selu", alpha=1.6732, gamma=1.0507),
    "hardtan": lambda c, x: c.op("Clip", [x, c.const(np.float32(-1), "_lo"), c.const(np.float32(1), "_hi")], "_hardtan"),
    "mish": _mish,
    "swish": lambda c, x: c.op("Mul", [x, c.op("Sigmoid", [x], "_sigmoid")], "_swish"),
}


def _bn_fold(ctx: LayerContext, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scales, rolling_mean, rolling_variance) -> per-channel (multiplier, shift) for the
    output before the biases: y = x * k - mean * k."""
    scales, mean, var = ctx.weights.take(n), ctx.weights.take(n), ctx.weights.take(n)
    k = scales / (np.sqrt(np.maximum(var, 0)) + BN_EPSILON)
    return k.astype(np.float32), (-mean * k).astype(np.float32), var


def convolutional(ctx: LayerContext) -> Tensor:
    x = ctx.x
    n = ctx.int("filters", 1)
    size = ctx.int("size", 1)
    stride = ctx.int("stride", 1)
    groups = ctx.int("groups", 1) or 1
    ctx.refuse("binary", "xnor", "deform", "antialiasing", "share_index")
    if ctx.int("dilation", 1) != 1:
        raise ctx.error(f"dilation={ctx.int('dilation')} is not supported")
    if ctx.int("stride_x", stride) != stride or ctx.int("stride_y", stride) != stride:
        raise ctx.error("different stride_x and stride_y are not supported")
    padding = size // 2 if ctx.int("pad", 0) else ctx.int("padding", 0)
    if n <= 0 or size <= 0 or stride <= 0 or x.c % groups or n % groups:
        raise ctx.error(f"filters={n}, size={size}, stride={stride}, groups={groups} do not fit {x.c} input channels")
    out_h = (x.h + 2 * padding - size) // stride + 1
    out_w = (x.w + 2 * padding - size) // stride + 1
    if out_h <= 0 or out_w <= 0:
        raise ctx.error(f"the input {x.dims()} is smaller than the kernel size {size}")
    biases = ctx.weights.take(n)
    bn = ctx.int("batch_normalize", 0)
    if bn:
        k, shift, _ = _bn_fold(ctx, n)
    weights = ctx.weights.take(n * (x.c // groups) * size * size).reshape(n, x.c // groups, size, size)
    if bn:
        weights = weights * k[:, None, None, None]
        biases = shift + biases
    y = ctx.op(
        "Conv", [x.name, ctx.const(weights, "_weights"), ctx.const(biases, "_biases")], "_conv",
        kernel_shape=[size, size], strides=[stride, stride], pads=[padding] * 4, group=groups,
    )
    return Tensor(ctx.activate(y), n, out_h, out_w)


def connected(ctx: LayerContext) -> Tensor:
    x = ctx.x
    n = ctx.int("output", 1)
    inputs = x.c * x.h * x.w
    biases = ctx.weights.take(n)
    weights = ctx.weights.take(n * inputs)
    weights = weights.reshape(inputs, n).T if ctx.transpose else weights.reshape(n, inputs)
    if ctx.int("batch_normalize", 0):
        k, shift, _ = _bn_fold(ctx, n)
        weights = weights * k[:, None]
        biases = shift + biases
    flat = ctx.op("Flatten", [x.name], "_flatten", axis=1)
    y = ctx.op("Gemm", [flat, ctx.const(np.ascontiguousarray(weights), "_weights"), ctx.const(biases, "_biases")],
               "_gemm", transB=1)
    y = ctx.activate(y)
    return Tensor(ctx.op("Reshape", [y, ctx.b.ints([ctx.batch, n, 1, 1], ctx.hint + "_shape")]), n, 1, 1)


def batchnorm(ctx: LayerContext) -> Tensor:
    x = ctx.x
    k, shift, _ = _bn_fold(ctx, x.c)  # darknet loads no biases for this layer: they stay 0
    y = ctx.op("Mul", [x.name, ctx.const(k.reshape(-1, 1, 1), "_k")], "_scale")
    return Tensor(ctx.op("Add", [y, ctx.const(shift.reshape(-1, 1, 1), "_shift")]), x.c, x.h, x.w)


def maxpool(ctx: LayerContext) -> Tensor:
    x = ctx.x
    stride = ctx.int("stride", 1)
    size = ctx.int("size", stride)
    padding = ctx.int("padding", size - 1)
    ctx.refuse("maxpool_depth", "antialiasing")
    if ctx.int("stride_x", stride) != stride or ctx.int("stride_y", stride) != stride:
        raise ctx.error("different stride_x and stride_y are not supported")
    if size <= 0 or stride <= 0 or padding < 0:
        raise ctx.error(f"size={size}, stride={stride}, padding={padding} are not valid")
    out_h = (x.h + padding - size) // stride + 1
    out_w = (x.w + padding - size) // stride + 1
    if out_h <= 0 or out_w <= 0:
        raise ctx.error(f"the input {x.dims()} is smaller than the window size {size}")
    begin = padding // 2  # darknet's window offset is -padding/2; the rest pads the end
    end = padding - begin
    y = ctx.op("MaxPool", [x.name], kernel_shape=[size, size], strides=[stride, stride], pads=[begin, begin, end, end])
    return Tensor(y, x.c, out_h, out_w)


def avgpool(ctx: LayerContext) -> Tensor:
    x = ctx.x
    return Tensor(ctx.op("GlobalAveragePool", [x.name]), x.c, 1, 1)


def route(ctx: LayerContext) -> Tensor:
    refs = ctx.ints("layers")
    if not refs:
        raise ctx.error("has no layers")
    parts = [ctx.layer(r) for r in refs]
    groups, group_id = ctx.int("groups", 1), ctx.int("group_id", 0)
    if any((p.h, p.w) != (parts[0].h, parts[0].w) for p in parts):
        sizes = ", ".join(f"layer {ctx.index + r if r < 0 else r} ({p.dims()})" for r, p in zip(refs, parts))
        raise ctx.error(
            f"joins layers whose heights and widths differ: {sizes}; the input size does not suit this "
            "network (for YOLO networks, height and width must be multiples of 32)"
        )
    names = []
    for p in parts:
        if groups > 1:
            if p.c % groups or not 0 <= group_id < groups:
                raise ctx.error(f"groups={groups}, group_id={group_id} do not fit {p.c} channels")
            part = p.c // groups
            names.append(ctx.op("Slice", [p.name, ctx.b.ints([group_id * part], ctx.hint + "_start"),
                                          ctx.b.ints([(group_id + 1) * part], ctx.hint + "_end"),
                                          ctx.b.ints([1], ctx.hint + "_axis")], "_group"))
        else:
            names.append(p.name)
    c = sum(p.c // groups for p in parts)
    y = names[0] if len(names) == 1 else ctx.op("Concat", names, axis=1)
    return Tensor(y, c, parts[0].h, parts[0].w)


def shortcut(ctx: LayerContext) -> Tensor:
    x = ctx.x
    refs = ctx.ints("from")
    if len(refs) != 1:
        raise ctx.error(f"from={ctx.str('from', '')} must name exactly one layer")
    ctx.refuse("weights_type", allowed={"weights_type": ("none",)})
    other = ctx.layer(refs[0])
    if (other.c, other.h, other.w) != (x.c, x.h, x.w):
        raise ctx.error(f"adds layer {refs[0]} ({other.dims()}) to its input ({x.dims()}); the shapes must agree")
    a, b = x.name, other.name
    alpha, beta = ctx.float("alpha", 1.0), ctx.float("beta", 1.0)  # darknet: alpha*input + beta*from
    if alpha != 1.0:
        a = ctx.op("Mul", [a, ctx.const(np.float32(alpha), "_alpha")], "_a")
    if beta != 1.0:
        b = ctx.op("Mul", [b, ctx.const(np.float32(beta), "_beta")], "_b")
    return Tensor(ctx.activate(ctx.op("Add", [a, b], "_add")), x.c, x.h, x.w)


def upsample(ctx: LayerContext) -> Tensor:
    x = ctx.x
    stride = ctx.int("stride", 2)
    if stride <= 0:
        raise ctx.error(f"stride={stride} (downsampling) is not supported")
    scales = ctx.const(np.array([1, 1, stride, stride], np.float32), "_scales")
    y = ctx.op("Resize", [x.name, "", scales], mode="nearest", coordinate_transformation_mode="asymmetric",
               nearest_mode="floor")
    scale = ctx.float("scale", 1.0)
    if scale != 1.0:
        y = ctx.op("Mul", [y, ctx.const(np.float32(scale), "_scale")], "_scaled")
    return Tensor(y, x.c, x.h * stride, x.w * stride)


def yolo(ctx: LayerContext) -> Tensor:
    x = ctx.x
    classes = ctx.int("classes", 20)
    mask = ctx.ints("mask")
    anchors = len(mask) if mask else ctx.int("num", 1)
    ctx.refuse("new_coords")
    per_anchor = classes + 5
    if x.c != anchors * per_anchor:
        raise ctx.error(
            f"expects {anchors} anchors x ({classes} classes + 5) = {anchors * per_anchor} input channels, "
            f"its input has {x.c}"
        )
    scale_xy = ctx.float("scale_x_y", 1.0)
    logistic = np.zeros(x.c, bool)
    mul = np.ones(x.c, np.float32)
    add = np.zeros(x.c, np.float32)
    for a in range(anchors):
        base = a * per_anchor
        logistic[base:base + 2] = True
        logistic[base + 4:base + per_anchor] = True
        mul[base:base + 2] = scale_xy
        add[base:base + 2] = -0.5 * (scale_xy - 1)
    y = ctx.op("Sigmoid", [x.name], "_logistic")
    if scale_xy != 1.0:
        y = ctx.op("Mul", [y, ctx.const(mul.reshape(-1, 1, 1), "_scale_xy")], "_scaled")
        y = ctx.op("Add", [y, ctx.const(add.reshape(-1, 1, 1), "_shift_xy")], "_shifted")
    y = ctx.op("Where", [ctx.const(logistic.reshape(-1, 1, 1), "_mask"), y, x.name])
    return Tensor(y, x.c, x.h, x.w)


def softmax(ctx: LayerContext) -> Tensor:
    x = ctx.x
    groups = ctx.int("groups", 1) or 1
    ctx.refuse("spatial", "tree")
    inputs = x.c * x.h * x.w
    if inputs % groups:
        raise ctx.error(f"groups={groups} does not divide the layer's {inputs} inputs")
    y = ctx.op("Reshape", [x.name, ctx.b.ints([ctx.batch, groups, inputs // groups], ctx.hint + "_groups")], "_grouped")
    temperature = ctx.float("temperature", 1.0)
    if temperature != 1.0:
        y = ctx.op("Div", [y, ctx.const(np.float32(temperature), "_temperature")], "_tempered")
    y = ctx.op("Softmax", [y], "_softmax", axis=-1)
    return Tensor(ctx.op("Reshape", [y, ctx.b.ints([ctx.batch, x.c, x.h, x.w], ctx.hint + "_shape")]), x.c, x.h, x.w)


def identity(ctx: LayerContext) -> Tensor:
    """dropout and cost: nothing at inference."""
    return ctx.x


def activation_layer(ctx: LayerContext) -> Tensor:
    x = ctx.x
    return Tensor(ctx.activate(x.name), x.c, x.h, x.w)


LAYERS: dict[str, Callable[[LayerContext], Tensor]] = {
    "convolutional": convolutional,
    "connected": connected,
    "batchnorm": batchnorm,
    "maxpool": maxpool,
    "avgpool": avgpool,
    "route": route,
    "shortcut": shortcut,
    "upsample": upsample,
    "yolo": yolo,
    "softmax": softmax,
    "dropout": identity,
    "cost": identity,
    "activation": activation_layer,
}


def convert_network(layers: list[Section], values: np.ndarray, spec: TensorSpec, source: str, transpose: bool = False):
    """The builder, (tensor, output name) pairs and the number of weight values used."""
    b = OnnxBuilder(source)
    b.add_input(spec.name, spec.shape, spec.dtype)
    b.reserve([f"{s.kind}_{i}" for i, s in enumerate(layers)])  # the possible output names
    batch, c, h, w = spec.shape
    x = Tensor(spec.name, c, h, w)
    stream = WeightStream(values)
    outputs: list[Tensor] = []
    for index, section in enumerate(layers):
        ctx = LayerContext(b, section, index, source, outputs, x, stream, batch, transpose)
        x = LAYERS[section.kind](ctx)
        outputs.append(x)
    heads = [(t.name, f"yolo_{i}") for i, (s, t) in enumerate(zip(layers, outputs)) if s.kind == "yolo"]
    if not heads:  # the last layer, named after the last one that computes something
        last = max((i for i, s in enumerate(layers) if s.kind not in ("dropout", "cost")), default=len(layers) - 1)
        heads = [(outputs[-1].name, f"{layers[last].kind}_{last}")]
    return b, heads, stream.pos


def _translate(layers: list[Section], weights, spec: TensorSpec, source: str, weights_name: str):
    b, heads, used = convert_network(layers, weights.values, spec, source, weights.transpose)
    have = len(weights.values)
    if used != have:
        raise client_error(
            "InputConfiguration",
            f"{weights_name} holds {have} float32 values after its header but {source} needs {used} "
            f"with the input {list(spec.shape)}; are they the cfg and weights of the same network?",
        )
    return b.model(heads)

