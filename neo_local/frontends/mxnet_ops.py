"""MXNet operators -> ONNX nodes, one small function per operator, registered by MXNet op name.

Each converter gets a ``NodeContext`` (the node, its attributes, the ONNX names of its inputs,
the builder) and returns the ONNX names of the node's outputs. Attribute defaults are MXNet's
(``src/operator/...`` parameter structs). Inference semantics only: losses are their forward
pass, dropout is the identity.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Callable, Sequence

import numpy as np

from neo_local.api.errors import client_error
from neo_local.frontends.mxnet_format import Node, Symbol, attr_bool, attr_float, attr_int, attr_tuple
from neo_local.frontends.onnx_builder import OnnxBuilder


class NodeContext:
    def __init__(self, builder: OnnxBuilder, node: Node, inputs: list[str], source: str) -> None:
        self.b = builder
        self.node = node
        self.inputs = inputs
        self.source = source

    @property
    def name(self) -> str:
        return self.node.name

    # ------------------------------------------------------------------ attributes

    def _get(self, key: str, parse: Callable, default):
        raw = self.node.attrs.get(key)
        if raw is None or raw.strip() == "None":
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            raise self.error(f"attribute {key}={raw!r} cannot be read: {exc}") from None

    def int(self, key: str, default=None):
        return self._get(key, attr_int, default)

    def float(self, key: str, default=None):
        return self._get(key, attr_float, default)

    def bool(self, key: str, default: bool | None = False):
        return self._get(key, attr_bool, default)

    def tuple(self, key: str, default=()):
        return self._get(key, attr_tuple, default)

    def ints(self, key: str, default=()) -> tuple[int, ...]:
        values = self.tuple(key, default)
        if any(v is None or v != int(v) for v in values):
            raise self.error(f"attribute {key}={self.node.attrs.get(key)!r} must be integers")
        return tuple(int(v) for v in values)

    def str(self, key: str, default: str | None = None) -> str | None:
        raw = self.node.attrs.get(key)
        return default if raw is None or raw == "None" else raw

    def choice(self, key: str, default: str, allowed: Sequence[str]) -> str:
        value = self.str(key, default)
        if value not in allowed:
            raise self.error(f"{key}={value} is not supported (supported: {', '.join(allowed)})")
        return value

    def error(self, message: str):
        return client_error(
            "InputConfiguration", f"{self.source}: {self.node.op} node '{self.name}': {message}"
        )

    # ------------------------------------------------------------------ helpers

    def op(self, op_type: str, inputs: Sequence[str], suffix: str = "", **attrs) -> str:
        return self.b.op(op_type, inputs, f"{self.name}{suffix}", **attrs)

    def scalar(self, value: float, suffix: str = "_scalar") -> str:
        return self.b.const(np.float32(value), f"{self.name}{suffix}")

    def ndim(self, name: str) -> int:
        return len(self.b.shape(name))

    def need_inputs(self, n: int) -> None:
        if len(self.inputs) < n:
            raise self.error(f"has {len(self.inputs)} inputs, needs {n}")


Converter = Callable[[NodeContext], "str | list[str]"]
OPS: dict[str, Converter] = {}


def register(*names: str):
    def wrap(fn: Converter) -> Converter:
        for name in names:
            OPS[name] = fn
        return fn

    return wrap


def _spatial(ctx: NodeContext, key: str, n: int, default: int) -> tuple[int, ...]:
    values = ctx.ints(key)
    if not values:
        return (default,) * n
    if len(values) != n:
        raise ctx.error(f"{key}={ctx.node.attrs.get(key)} has {len(values)} values for a {n}-D kernel")
    return values


# --------------------------------------------------------------------------- convolutions


@register("Convolution")
def convolution(ctx: NodeContext):
    kernel = ctx.ints("kernel")
    if not kernel:
        raise ctx.error("has no kernel attribute")
    n = len(kernel)
    layout = ctx.str("layout")
    if layout not in (None, "NCW", "NCHW", "NCDHW"):
        raise ctx.error(f"layout={layout} is not supported; neo-local reads channels-first (NCHW) symbols")
    no_bias = ctx.bool("no_bias", False)
    ctx.need_inputs(2 if no_bias else 3)
    pad = _spatial(ctx, "pad", n, 0)
    return ctx.op(
        "Conv", ctx.inputs[:2] if no_bias else ctx.inputs[:3],
        kernel_shape=list(kernel), strides=list(_spatial(ctx, "stride", n, 1)),
        dilations=list(_spatial(ctx, "dilate", n, 1)), pads=list(pad) * 2, group=ctx.int("num_group", 1),
    )


@register("Deconvolution")
def deconvolution(ctx: NodeContext):
    kernel = ctx.ints("kernel")
    if not kernel:
        raise ctx.error("has no kernel attribute")
    n = len(kernel)
    if ctx.ints("target_shape"):
        raise ctx.error("target_shape is not supported; give pad and adj instead")
    if ctx.str("layout") not in (None, "NCW", "NCHW", "NCDHW"):
        raise ctx.error(f"layout={ctx.str('layout')} is not supported")
    no_bias = ctx.bool("no_bias", True)  # Deconvolution's default is no bias
    ctx.need_inputs(2 if no_bias else 3)
    return ctx.op(
        "ConvTranspose", ctx.inputs[:2] if no_bias else ctx.inputs[:3],
        kernel_shape=list(kernel), strides=list(_spatial(ctx, "stride", n, 1)),
        dilations=list(_spatial(ctx, "dilate", n, 1)), pads=list(_spatial(ctx, "pad", n, 0)) * 2,
        output_padding=list(_spatial(ctx, "adj", n, 0)), group=ctx.int("num_group", 1),
    )


@register("FullyConnected")
def fully_connected(ctx: NodeContext):
    no_bias = ctx.bool("no_bias", False)
    ctx.need_inputs(2 if no_bias else 3)
    x, w = ctx.inputs[0], ctx.inputs[1]
    if ctx.bool("flatten", True):
        flat = ctx.op("Flatten", [x], "_flatten", axis=1)
        return ctx.op("Gemm", [flat, w] + ([] if no_bias else [ctx.inputs[2]]), transB=1)
    if ctx.b.is_const(w):
        wt = ctx.b.const(ctx.b.initializers[w].T, f"{w}_transposed")
    else:
        wt = ctx.op("Transpose", [w], "_weight_t", perm=[1, 0])
    y = ctx.op("MatMul", [x, wt], "_matmul" if not no_bias else "")
    return y if no_bias else ctx.op("Add", [y, ctx.inputs[2]])


# --------------------------------------------------------------------------- normalization


@register("BatchNorm")
def batch_norm(ctx: NodeContext):
    ctx.need_inputs(5)
    if ctx.int("axis", 1) != 1:
        raise ctx.error(f"axis={ctx.int('axis')} is not supported (only the channel axis 1)")
    x, gamma, beta, mean, var = ctx.inputs[:5]
    if ctx.bool("fix_gamma", True):  # MXNet's default: gamma is fixed at 1
        gamma = ctx.b.const(np.ones(ctx.b.shape(gamma), np.float32), f"{ctx.name}_gamma_fixed")
    # use_global_stats only matters in training: inference always uses the moving statistics
    return ctx.op("BatchNormalization", [x, gamma, beta, mean, var], epsilon=ctx.float("eps", 1e-3))


@register("LRN")
def lrn(ctx: NodeContext):
    nsize = ctx.int("nsize")
    if nsize is None:
        raise ctx.error("has no nsize attribute")
    return ctx.op(
        "LRN", ctx.inputs[:1], alpha=ctx.float("alpha", 1e-4), beta=ctx.float("beta", 0.75),
        bias=ctx.float("knorm", 2.0), size=nsize,
    )


# --------------------------------------------------------------------------- activations


def _mish(ctx: NodeContext, x: str) -> str:
    return ctx.op("Mul", [x, ctx.op("Tanh", [ctx.op("Softplus", [x], "_softplus")], "_tanh")])


def _gelu(ctx: NodeContext, x: str) -> str:
    erf = ctx.op("Erf", [ctx.op("Div", [x, ctx.scalar(math.sqrt(2.0), "_sqrt2")], "_scaled")], "_erf")
    half = ctx.op("Mul", [x, ctx.scalar(0.5, "_half")], "_halfx")
    return ctx.op("Mul", [half, ctx.op("Add", [erf, ctx.scalar(1.0, "_one")], "_erf1")])


_ACTIVATIONS = {
    "relu": lambda c, x: c.op("Relu", [x]),
    "sigmoid": lambda c, x: c.op("Sigmoid", [x]),
    "tanh": lambda c, x: c.op("Tanh", [x]),
    "softrelu": lambda c, x: c.op("Softplus", [x]),
    "softsign": lambda c, x: c.op("Softsign", [x]),
    "log_sigmoid": lambda c, x: c.op("Neg", [c.op("Softplus", [c.op("Neg", [x], "_neg")], "_softplus")]),
    "mish": _mish,
}


@register("Activation")
def activation(ctx: NodeContext):
    act = ctx.choice("act_type", "relu", tuple(_ACTIVATIONS))
    return _ACTIVATIONS[act](ctx, ctx.inputs[0])


@register("relu")
def relu(ctx: NodeContext):
    return ctx.op("Relu", ctx.inputs[:1])


@register("sigmoid")
def sigmoid(ctx: NodeContext):
    return ctx.op("Sigmoid", ctx.inputs[:1])


@register("tanh")
def tanh(ctx: NodeContext):
    return ctx.op("Tanh", ctx.inputs[:1])


@register("LeakyReLU")
def leaky_relu(ctx: NodeContext):
    act = ctx.choice("act_type", "leaky", ("leaky", "prelu", "elu", "selu", "gelu", "rrelu"))
    x = ctx.inputs[0]
    if act == "leaky":
        return ctx.op("LeakyRelu", [x], alpha=ctx.float("slope", 0.25))
    if act == "elu":
        return ctx.op("Elu", [x], alpha=ctx.float("slope", 0.25))
    if act == "selu":
        return ctx.op("Selu", [x])
    if act == "gelu":
        return _gelu(ctx, x)
    if act == "rrelu":  # at inference, the mean of the random slope's range
        return ctx.op("LeakyRelu", [x], alpha=(ctx.float("lower_bound", 0.125) + ctx.float("upper_bound", 0.334)) / 2)
    ctx.need_inputs(2)
    gamma = ctx.inputs[1]
    ndim = ctx.ndim(x)
    if ndim > 2:  # MXNet's gamma has one value per channel (axis 1); ONNX broadcasts from the right
        count = ctx.b.shape(gamma)[0]
        gamma = ctx.op("Reshape", [gamma, ctx.b.ints([count] + [1] * (ndim - 2), f"{ctx.name}_gamma_shape")], "_gamma")
    return ctx.op("PRelu", [x, gamma])


# --------------------------------------------------------------------------- pooling


@register("Pooling")
def pooling(ctx: NodeContext):
    x = ctx.inputs[0]
    pool_type = ctx.choice("pool_type", "max", ("max", "avg", "sum"))
    if ctx.str("layout") not in (None, "NCW", "NCHW", "NCDHW"):
        raise ctx.error(f"layout={ctx.str('layout')} is not supported")
    if ctx.bool("global_pool", False):
        if pool_type == "max":
            return ctx.op("GlobalMaxPool", [x])
        y = ctx.op("GlobalAveragePool", [x], "_avg" if pool_type == "sum" else "")
        if pool_type == "sum":
            area = int(np.prod(ctx.b.shape(x)[2:]))
            y = ctx.op("Mul", [y, ctx.scalar(area, "_area")])
        return y
    kernel = ctx.ints("kernel")
    if not kernel:
        raise ctx.error("has no kernel attribute (and global_pool is not set)")
    n = len(kernel)
    stride = _spatial(ctx, "stride", n, 1)
    pad = _spatial(ctx, "pad", n, 0)
    convention = ctx.choice("pooling_convention", "valid", ("valid", "full"))
    # 'full' rounds the output size up: 1 + ceil((x + 2p - k) / s). Emit it as extra padding
    # at the end, which max pooling ignores and average pooling leaves out of the divisor
    # (MXNet's divisor stops at the padded edge too), instead of relying on ceil_mode rules.
    extra = [0] * n
    if convention == "full":
        size = ctx.b.shape(x)[2:]
        for i in range(n):
            span = size[i] + 2 * pad[i] - kernel[i]
            out = 1 + -(-span // stride[i])
            extra[i] = (out - 1) * stride[i] + kernel[i] - (size[i] + 2 * pad[i])
    attrs = dict(kernel_shape=list(kernel), strides=list(stride))
    if pool_type == "max":
        return ctx.op("MaxPool", [x], pads=list(pad) + [p + e for p, e in zip(pad, extra)], **attrs)
    count_include_pad = ctx.bool("count_include_pad", True)
    if count_include_pad and any(pad):
        # padding zeros are part of every window's divisor: pad explicitly, then average
        pads = [0, 0] + list(pad) + [0, 0] + list(pad)
        x = ctx.op("Pad", [x, ctx.b.ints(pads, f"{ctx.name}_pads")], "_pad")
        pad = (0,) * n
    y = ctx.op(
        "AveragePool", [x], "_avg" if pool_type == "sum" else "",
        pads=list(pad) + [p + e for p, e in zip(pad, extra)], count_include_pad=0, **attrs,
    )
    if pool_type == "sum":
        y = ctx.op("Mul", [y, ctx.scalar(int(np.prod(kernel)), "_area")])
    return y


@register("UpSampling")
def upsampling(ctx: NodeContext):
    ctx.choice("sample_type", "nearest", ("nearest",))
    if ctx.int("num_args", 1) != 1 or len(ctx.inputs) != 1:
        raise ctx.error("only one input is supported")
    scale = ctx.int("scale")
    if not scale:
        raise ctx.error("has no scale attribute")
    ndim = ctx.ndim(ctx.inputs[0])
    scales = ctx.b.const(np.array([1.0, 1.0] + [float(scale)] * (ndim - 2), np.float32), f"{ctx.name}_scales")
    return ctx.op(
        "Resize", [ctx.inputs[0], "", scales], mode="nearest",
        coordinate_transformation_mode="asymmetric", nearest_mode="floor",
    )


# --------------------------------------------------------------------------- elementwise


def _binary(onnx_op: str):
    def convert(ctx: NodeContext):
        ctx.need_inputs(2)
        return ctx.op(onnx_op, ctx.inputs[:2])

    return convert


for _names, _onnx in (
    (("elemwise_add", "_Plus", "_plus", "_add", "broadcast_add", "broadcast_plus"), "Add"),
    (("elemwise_sub", "_Minus", "_minus", "_sub", "broadcast_sub", "broadcast_minus"), "Sub"),
    (("elemwise_mul", "_Mul", "_mul", "broadcast_mul"), "Mul"),
    (("elemwise_div", "_Div", "_div", "broadcast_div"), "Div"),
    (("_Maximum", "_maximum", "broadcast_maximum"), "Max"),
    (("_Minimum", "_minimum", "broadcast_minimum"), "Min"),
    (("_Power", "_power", "broadcast_power"), "Pow"),
):
    register(*_names)(_binary(_onnx))


def _scalar_op(onnx_op: str, reverse: bool = False):
    def convert(ctx: NodeContext):
        value = ctx.float("scalar")
        if value is None:
            raise ctx.error("has no scalar attribute")
        s = ctx.scalar(value)
        return ctx.op(onnx_op, [s, ctx.inputs[0]] if reverse else [ctx.inputs[0], s])

    return convert


for _names, _onnx, _reverse in (
    (("_plus_scalar", "_PlusScalar"), "Add", False),
    (("_minus_scalar", "_MinusScalar"), "Sub", False),
    (("_rminus_scalar", "_RMinusScalar"), "Sub", True),
    (("_mul_scalar", "_MulScalar"), "Mul", False),
    (("_div_scalar", "_DivScalar"), "Div", False),
    (("_rdiv_scalar", "_RDivScalar"), "Div", True),
    (("_maximum_scalar", "_MaximumScalar"), "Max", False),
    (("_minimum_scalar", "_MinimumScalar"), "Min", False),
    (("_power_scalar", "_PowerScalar"), "Pow", False),
    (("_rpower_scalar", "_RPowerScalar"), "Pow", True),
):
    register(*_names)(_scalar_op(_onnx, _reverse))


@register("add_n", "ElementWiseSum", "_ElementWiseSum")
def add_n(ctx: NodeContext):
    # a chain of Adds: ONNX Sum imports into TVM as a stack + sum that later passes trip on
    y = ctx.inputs[0]
    for i, other in enumerate(ctx.inputs[1:]):
        y = ctx.op("Add", [y, other], "" if i == len(ctx.inputs) - 2 else f"_sum{i}")
    return y


def _unary(onnx_op: str):
    def convert(ctx: NodeContext):
        return ctx.op(onnx_op, ctx.inputs[:1])

    return convert


for _names, _onnx in (
    (("sqrt",), "Sqrt"), (("exp",), "Exp"), (("log",), "Log"), (("abs",), "Abs"),
    (("negative",), "Neg"), (("floor",), "Floor"), (("ceil",), "Ceil"), (("reciprocal",), "Reciprocal"),
    (("Dropout", "BlockGrad", "stop_gradient", "identity", "_copy"), "Identity"),
):
    register(*_names)(_unary(_onnx))


@register("square")
def square(ctx: NodeContext):
    return ctx.op("Mul", [ctx.inputs[0], ctx.inputs[0]])


@register("rsqrt")
def rsqrt(ctx: NodeContext):
    return ctx.op("Reciprocal", [ctx.op("Sqrt", ctx.inputs[:1], "_sqrt")])


@register("clip")
def clip(ctx: NodeContext):
    low, high = ctx.float("a_min"), ctx.float("a_max")
    if low is None or high is None:
        raise ctx.error("needs a_min and a_max")
    return ctx.op("Clip", [ctx.inputs[0], ctx.scalar(low, "_min"), ctx.scalar(high, "_max")])


# --------------------------------------------------------------------------- softmax family


def _softmax_axis(ctx: NodeContext, x: str, axis: int, log: bool = False) -> str:
    return ctx.op("LogSoftmax" if log else "Softmax", [x], axis=axis)


def _softmax_per_instance(ctx: NodeContext, x: str) -> str:
    """Softmax over everything but the batch axis, keeping the input's shape."""
    if ctx.ndim(x) == 2:
        return _softmax_axis(ctx, x, 1)
    flat = ctx.op("Flatten", [x], "_flatten", axis=1)
    y = ctx.op("Softmax", [flat], "_softmax", axis=1)
    return ctx.op("Reshape", [y, ctx.b.ints(ctx.b.shape(x), f"{ctx.name}_shape")])


@register("softmax", "log_softmax")
def softmax(ctx: NodeContext):
    if ctx.bool("use_length", False):
        raise ctx.error("use_length=True is not supported")
    x = ctx.inputs[0]
    temperature = ctx.float("temperature")
    if temperature is not None and temperature != 1.0:
        x = ctx.op("Div", [x, ctx.scalar(temperature, "_temperature")], "_scaled")
    return _softmax_axis(ctx, x, ctx.int("axis", -1), log=ctx.node.op == "log_softmax")


@register("SoftmaxOutput", "Softmax")
def softmax_output(ctx: NodeContext):
    # the label input (and grad_scale, ignore_label, normalization) only matter in training
    x = ctx.inputs[0]
    if ctx.bool("multi_output", False):
        return _softmax_axis(ctx, x, 1)
    if ctx.bool("preserve_shape", False):
        return _softmax_axis(ctx, x, -1)
    return _softmax_per_instance(ctx, x)


@register("SoftmaxActivation")
def softmax_activation(ctx: NodeContext):
    mode = ctx.choice("mode", "instance", ("instance", "channel"))
    if mode == "channel":
        return _softmax_axis(ctx, ctx.inputs[0], 1)
    return _softmax_per_instance(ctx, ctx.inputs[0])


@register("LinearRegressionOutput", "MAERegressionOutput")
def regression_output(ctx: NodeContext):
    return ctx.op("Identity", ctx.inputs[:1])


@register("LogisticRegressionOutput")
def logistic_regression_output(ctx: NodeContext):
    return ctx.op("Sigmoid", ctx.inputs[:1])


# --------------------------------------------------------------------------- shapes


@register("Flatten", "flatten")
def flatten(ctx: NodeContext):
    return ctx.op("Flatten", ctx.inputs[:1], axis=1)


def infer_reshape(src: Sequence[int], spec: Sequence[int], reverse: bool = False) -> list[int]:
    """MXNet's Reshape shape rules (0 copy, -1 infer, -2 copy the rest, -3 merge two, -4 split)."""
    src, spec = list(src), list(spec)
    if reverse:
        src, spec = src[::-1], spec[::-1]
        # -4 takes the two values after it; reversed, they precede it: put them back after
        fixed, i = [], 0
        while i < len(spec):
            if i + 2 < len(spec) and spec[i + 2] == -4:
                fixed += [-4, spec[i + 1], spec[i]]
                i += 3
            else:
                fixed.append(spec[i])
                i += 1
        spec = fixed
    out: list[int] = []
    infer_at = None
    s = i = 0
    while i < len(spec):
        v = spec[i]
        if v > 0:
            out.append(v)
            s += 1
        elif v == 0:
            if s >= len(src):
                raise ValueError(f"0 at position {i} has no input dimension to copy")
            out.append(src[s])
            s += 1
        elif v == -1:
            if infer_at is not None:
                raise ValueError("more than one -1")
            infer_at = len(out)
            out.append(1)
            s += 1
        elif v == -2:
            out.extend(src[s:])
            s = len(src)
        elif v == -3:
            if s + 1 >= len(src):
                raise ValueError("-3 needs two input dimensions")
            out.append(src[s] * src[s + 1])
            s += 2
        elif v == -4:
            if i + 2 >= len(spec) or s >= len(src):
                raise ValueError("-4 needs two values after it and an input dimension")
            d0, d1, d2 = src[s], spec[i + 1], spec[i + 2]
            if d1 == -1:
                d1 = d0 // d2
            if d2 == -1:
                d2 = d0 // d1
            if d1 * d2 != d0:
                raise ValueError(f"-4 cannot split {d0} into {d1} x {d2}")
            out += [d1, d2]
            s += 1
            i += 2
        else:
            raise ValueError(f"{v} is not a valid shape value")
        i += 1
    total = int(np.prod(src))
    if infer_at is not None:
        rest = int(np.prod(out))
        if rest == 0 or total % rest:
            raise ValueError(f"cannot infer -1: {total} elements do not divide into {out}")
        out[infer_at] = total // rest
    if int(np.prod(out)) != total:
        raise ValueError(f"{list(src)} ({total} elements) cannot be reshaped to {out}")
    return out[::-1] if reverse else out


@register("Reshape", "reshape")
def reshape(ctx: NodeContext):
    x = ctx.inputs[0]
    spec = ctx.ints("shape")
    if not spec:  # the deprecated target_shape: 0 (one at most) is the dimension to infer
        spec = tuple(-1 if v == 0 else v for v in ctx.ints("target_shape"))
    if not spec:
        raise ctx.error("has no shape attribute")
    src = ctx.b.shape(x)
    try:
        shape = infer_reshape(src, spec, ctx.bool("reverse", False))
    except ValueError as exc:
        raise ctx.error(f"shape={ctx.node.attrs.get('shape')} does not fit the input shape {list(src)}: {exc}") from None
    return ctx.op("Reshape", [x, ctx.b.ints(shape, f"{ctx.name}_shape")])


@register("transpose")
def transpose(ctx: NodeContext):
    axes = ctx.ints("axes")
    return ctx.op("Transpose", ctx.inputs[:1], perm=list(axes) if axes else None)


@register("expand_dims")
def expand_dims(ctx: NodeContext):
    axis = ctx.int("axis")
    if axis is None:
        raise ctx.error("has no axis attribute")
    return ctx.op("Unsqueeze", [ctx.inputs[0], ctx.b.ints([axis], f"{ctx.name}_axes")])


@register("squeeze")
def squeeze(ctx: NodeContext):
    axes = ctx.ints("axis")
    inputs = [ctx.inputs[0]] + ([ctx.b.ints(axes, f"{ctx.name}_axes")] if axes else [])
    return ctx.op("Squeeze", inputs)


@register("Concat", "concat")
def concat(ctx: NodeContext):
    return ctx.op("Concat", ctx.inputs, axis=ctx.int("dim", 1))


@register("slice_axis")
def slice_axis(ctx: NodeContext):
    axis, begin, end = ctx.int("axis"), ctx.int("begin"), ctx.int("end")
    if axis is None or begin is None:
        raise ctx.error("needs axis and begin")
    end = np.iinfo(np.int64).max if end is None else end
    return ctx.op(
        "Slice", [ctx.inputs[0], ctx.b.ints([begin], f"{ctx.name}_begin"), ctx.b.ints([end], f"{ctx.name}_end"),
                  ctx.b.ints([axis], f"{ctx.name}_axis")],
    )


@register("SliceChannel", "split")
def slice_channel(ctx: NodeContext):
    count = ctx.int("num_outputs")
    if not count:
        raise ctx.error("has no num_outputs attribute")
    axis = ctx.int("axis", 1)
    outs = ctx.b.op("Split", ctx.inputs[:1], ctx.name, outputs=count, axis=axis) if count > 1 else [
        ctx.op("Identity", ctx.inputs[:1])
    ]
    if ctx.bool("squeeze_axis", False):
        outs = [ctx.b.op("Squeeze", [o, ctx.b.ints([axis], f"{ctx.name}_axes")], f"{o}_squeezed") for o in outs]
    return outs


@register("Pad", "pad")
def pad(ctx: NodeContext):
    mode = ctx.choice("mode", "constant", ("constant", "edge", "reflect"))
    width = ctx.ints("pad_width")
    if not width or len(width) % 2:
        raise ctx.error("pad_width must have two values per axis")
    pads = list(width[0::2]) + list(width[1::2])
    inputs = [ctx.inputs[0], ctx.b.ints(pads, f"{ctx.name}_pads")]
    if mode == "constant":
        inputs.append(ctx.scalar(ctx.float("constant_value", 0.0), "_value"))
    return ctx.op("Pad", inputs, mode=mode)


@register("Cast", "cast")
def cast(ctx: NodeContext):
    from onnx import helper

    dtype = ctx.choice("dtype", "float32", ("float32", "float16", "float64", "int32", "int64", "uint8", "int8"))
    return ctx.op("Cast", ctx.inputs[:1], to=int(helper.np_dtype_to_tensor_dtype(np.dtype(dtype))))


# --------------------------------------------------------------------------- reductions


def _reduce(onnx_op: str, axes_as_input: bool):
    def convert(ctx: NodeContext):
        x = ctx.inputs[0]
        axes = list(ctx.ints("axis"))
        if ctx.bool("exclude", False):
            ndim = ctx.ndim(x)
            chosen = {a % ndim for a in axes}
            axes = [a for a in range(ndim) if a not in chosen]
        keepdims = int(ctx.bool("keepdims", False))
        if axes_as_input:
            inputs = [x] + ([ctx.b.ints(axes, f"{ctx.name}_axes")] if axes else [])
            return ctx.op(onnx_op, inputs, keepdims=keepdims)
        return ctx.op(onnx_op, [x], keepdims=keepdims, axes=axes or None)

    return convert


register("mean")(_reduce("ReduceMean", False))
register("sum", "sum_axis")(_reduce("ReduceSum", True))
register("max", "max_axis")(_reduce("ReduceMax", False))
register("min", "min_axis")(_reduce("ReduceMin", False))


# --------------------------------------------------------------------------- the graph

#: ops whose inputs after the first are labels (training only): not model inputs
LOSS_OPS = {
    "SoftmaxOutput": 1, "Softmax": 1, "LinearRegressionOutput": 1, "MAERegressionOutput": 1,
    "LogisticRegressionOutput": 1,
}


def unsupported(symbol: Symbol) -> Counter:
    """Operators (with node counts) that the outputs need and that have no converter."""
    needed = needed_nodes(symbol)
    return Counter(n.op for n in symbol.nodes if n.index in needed and n.op != "null" and n.op not in OPS)


def label_variables(symbol: Symbol) -> set[int]:
    """Variables used only as labels of loss layers."""
    used_as_data: set[int] = set()
    used_as_label: set[int] = set()
    for node in symbol.nodes:
        keep = LOSS_OPS.get(node.op)
        for i, (src, _) in enumerate(node.inputs):
            (used_as_label if keep is not None and i >= keep else used_as_data).add(src)
    return used_as_label - used_as_data


def convert_symbol(
    symbol: Symbol,
    params: dict[str, np.ndarray],
    inputs: Sequence[tuple[str, tuple[int, ...], str]],
    source: str,
) -> tuple[OnnxBuilder, list[tuple[str, str]]]:
    """Translate the graph. Returns the builder and (tensor, output name) pairs for the heads."""
    b = OnnxBuilder(source)
    b.reserve(head_names(symbol))
    given = {name: (shape, dtype) for name, shape, dtype in inputs}
    for name, shape, dtype in inputs:
        b.add_input(name, shape, dtype)
    labels = label_variables(symbol)
    needed = needed_nodes(symbol)
    values: dict[tuple[int, int], str] = {}
    for node in symbol.nodes:
        if node.index not in needed:
            continue
        if node.op == "null":
            if node.name in given:
                values[(node.index, 0)] = node.name
            elif node.name in params:
                values[(node.index, 0)] = b.const(params[node.name], node.name)
            elif node.index in labels:
                continue
            else:  # the frontend checks this first; here as a guard
                raise client_error("InputConfiguration", f"{source}: variable '{node.name}' has no value")
            continue
        args = [values[src] for src in node.inputs if src in values]
        if len(args) != len(node.inputs) and node.op not in LOSS_OPS:
            raise client_error("InputConfiguration", f"{source}: node '{node.name}' uses an input with no value")
        out = OPS[node.op](NodeContext(b, node, args, source))
        for i, name in enumerate([out] if isinstance(out, str) else out):
            values[(node.index, i)] = name
    outputs = []
    for (nid, idx), name in zip(symbol.heads, head_names(symbol)):
        if (nid, idx) not in values:
            raise client_error("InputConfiguration", f"{source}: output {name} has no value")
        outputs.append((values[(nid, idx)], name))
    return b, outputs


def head_names(symbol: Symbol) -> list[str]:
    """Output names as MXNet lists them: ``<node>_output`` (``<node>_output<i>`` for an op
    with several outputs)."""
    names = []
    for nid, idx in symbol.heads:
        node = symbol.nodes[nid]
        several = node.op in ("SliceChannel", "split") and node.attrs.get("num_outputs", "1") != "1"
        suffix = f"_output{idx}" if several or idx > 0 else "_output"
        names.append(node.name if node.op == "null" else f"{node.name}{suffix}")
    return names


def needed_nodes(symbol: Symbol) -> set[int]:
    """Nodes the heads depend on (a symbol may carry unused branches)."""
    seen: set[int] = set()
    stack = [nid for nid, _ in symbol.heads]
    while stack:
        nid = stack.pop()
        if nid in seen:
            continue
        seen.add(nid)
        stack.extend(src for src, _ in symbol.nodes[nid].inputs)
    return seen
