"""Channel padding: NCHW values whose channel count is not a multiple of the vector width get
zero channels up to the next multiple, so that every conv over them takes the blocked schedules.

Without it, a conv over 24, 40, 72 or 280 channels on a 16-lane target (EfficientNet,
MobileNets, DenseNet) cannot be blocked and runs on TVM's generic schedule, 2-7x slower; the
alternative, 8-lane blocks for the whole model, halves every other conv's vector width.
onnxruntime's NCHWc kernels pad the same way.

Each padded value has a *twin* (``Padded``): the same tensor with C' >= C channels, its real
channel i at ``where[i]``. The other C' - C channels hold finite values that no result depends on:
every op that mixes channels (a conv, a dense layer) reads them through zero weights. Twins start
at a conv whose output channels do not divide, or divide into blocks that tile badly (1000 classes:
``padded_output_channels``; its weights get zero output channels) and at a
conv whose input channels do not divide and have no twin (the input gets zero channels:
``nn.pad``). They follow per-channel ops: elementwise ops with per-channel constants (repacked, a
divisor's padding is 1) or with twins of the same channels, depthwise convs (zero weights), pools,
spatial means and maxima, channel concats (DenseNet: the parts' twins side by side, so ``where``
is no longer a prefix), and the [N, C, 1, 1] -> [N, C] reshape before a classifier, whose dense
layer gets zero rows. Every other consumer reads the real channels (``strided_slice`` or
``take``); where nothing does, dead-code elimination drops them.

An int8 QDQ model's uint8 x int8 -> int32 convs (``quantized``'s int8 kernels) are padded the same
way, their twins following the casts around them; such a conv reads a twin only where its real
channels come first (``where`` a prefix), the order in which ``quantized`` checked its channel pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax

from neo_local.backends.cpu_schedule.rewriting import (
    BINARY, POOLS, SPATIAL_REDUCTIONS, UNARY, bound_call, broadcasts_to, plain_depthwise, plain_float_conv,
    plain_int8_conv, rebind, rewrite_functions, static_shape,
)


@dataclass(frozen=True)
class Padded:
    """A value's twin: ``expr`` has ``size`` channels (axis 1), the real channel i at ``where[i]``."""

    expr: relax.Expr
    where: tuple[int, ...]
    size: int

    def real(self) -> relax.Expr:
        """The real channels, in order."""
        if self.where == tuple(range(len(self.where))):
            return relax.op.strided_slice(self.expr, axes=[1], begin=[0], end=[len(self.where)])
        return relax.op.take(self.expr, relax.const(np.array(self.where, "int64")), axis=1, mode="clip")

    def scatter(self, values: np.ndarray, axis: int, fill: float = 0.0) -> np.ndarray:
        """``values`` with its ``axis`` (the real channels) spread to the twin's positions, ``fill``
        elsewhere."""
        shape = list(values.shape)
        shape[axis] = self.size
        out = np.full(shape, fill, values.dtype)
        index = [slice(None)] * values.ndim
        index[axis] = list(self.where)
        out[tuple(index)] = values
        return out


def padded_channels(channels: int, lanes: int) -> int | None:
    """The padded channel count of a value with ``channels``, None where it stays: it divides,
    or it is below one block (a squeeze-excite's 8: doubling it buys nothing)."""
    if channels % lanes == 0 or channels < lanes:
        return None
    return -(-channels // lanes) * lanes


def splits_small(blocks: int) -> bool:
    """Whether a count of channel blocks divides by 2 or 3, so that register tiles of 2-4 blocks
    cover it (``schedules.max_tile_c``)."""
    return blocks % 2 == 0 or blocks % 3 == 0


#: the most zero output channels, as a share of the real ones, a conv is given so that its channel
#: blocks split into 4-block tiles (``padded_output_channels``)
TILE_PADDING = 1 / 32


def padded_output_channels(channels: int, lanes: int, pixels: int = 1) -> int | None:
    """A conv's padded output channel count: ``padded_channels``, and further, where its blocks do
    not split small (1000 classes: 125 blocks of 8, tiled 5 x 2), the next multiple of 4 blocks
    if that adds at most ``TILE_PADDING`` (1024: tiled 4 x 3). Measured (Zen 3, 2 threads, each
    conv alone): SqueezeNet's 512->1000 1x1 at 13x13 1.42 -> 1.25 ms, 768->1000 at 12x12 1.72 ->
    1.46 ms, at 1x1 the same; 40 -> 48 channels (+20%) 30% slower, hence the bound. Fewer
    channels than one block over more than one input pixel (an image-to-image model's last conv
    to 3 channels, a segmentation head's classes) make one block: TVM's unblocked conv ran a 64->3
    3x3 conv at 128x128 at 1 GFLOP/s (62 ms; onnxruntime's whole model took 16)."""
    if channels < lanes and pixels > 1:
        return lanes
    size = padded_channels(channels, lanes) or channels
    blocks = size // lanes
    if not splits_small(blocks):
        tiled = -(-blocks // 4) * 4 * lanes
        if tiled - channels <= channels * TILE_PADDING:
            size = tiled
    return None if size == channels else size


def _is_float(expr: relax.Expr) -> bool:
    return isinstance(expr.ty, relax.TensorType) and expr.ty.dtype == "float32"


def _has_channels(expr: relax.Expr) -> bool:
    """Whether ``expr`` may have a twin: a float32 value, or an int8 QDQ model's uint8 conv input
    and its int32 sums (``quantized``'s int8 kernels)."""
    return isinstance(expr.ty, relax.TensorType) and expr.ty.dtype in ("float32", "uint8", "int32")


@relax.expr_functor.mutator
class _ChannelPadder(relax.PyExprMutator):
    """See the module docstring. ``self.twins`` maps a (new) var to its ``Padded`` twin."""

    def __init__(self, mod: tvm.IRModule, lanes: int):
        super().__init__(mod)
        self.lanes = lanes
        self.twins: dict = {}

    def _twin(self, expr: relax.Expr) -> Padded | None:
        return self.twins.get(expr) if isinstance(expr, relax.Var) else None

    def _emit_twin(self, expr: relax.Expr, where, size: int) -> Padded:
        return Padded(self.builder_.emit(expr), tuple(int(i) for i in where), size)

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:  # noqa: N802 (TVM's naming)
        value = self.visit_expr(binding.value)
        var, twin = binding.var, None
        if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) and _has_channels(value):
            result = self._rewrite(value)
            if isinstance(result, Padded):
                twin, value = result, result.real()
            elif result is not None:
                value = result
        new = rebind(self, var, value)
        if twin is not None:
            self.twins[new] = twin

    def _rewrite(self, call: relax.Call) -> Padded | relax.Expr | None:
        """The call's twin, or a replacement that reads twins, or None to keep it."""
        name = call.op.name
        if name == "relax.nn.conv2d":
            return self._conv(call)
        if name in BINARY:
            return self._binary(call)
        if name == "relax.concat":
            return self._concat(call)
        twin = self._twin(call.args[0])
        if twin is None:
            return None
        if name in UNARY or name in POOLS:
            return self._emit_twin(relax.Call(call.op, [twin.expr, *call.args[1:]], call.attrs, call.ty_args),
                                   twin.where, twin.size)
        if name in SPATIAL_REDUCTIONS:
            axes = sorted(int(a) % 4 for a in call.attrs.axis) if call.attrs.axis is not None else None
            if axes == [2, 3] and bool(call.attrs.keepdims) and len(static_shape(call.args[0]) or ()) == 4:
                reduced = SPATIAL_REDUCTIONS[name](twin.expr, axis=[2, 3], keepdims=True)
                return self._emit_twin(reduced, twin.where, twin.size)
            return None
        if name == "relax.reshape":
            return self._flatten(call, twin)
        if name == "relax.matmul":
            return self._dense(call, twin)
        return None

    def _conv(self, call: relax.Call) -> Padded | relax.Expr | None:
        """A groups=1 conv reads its input's twin (zero weights on the padding; an input whose
        channels do not divide and has none gets one, padded with zeros) and pads its output
        channels; a depthwise conv over a twin runs on the twin."""
        if int(call.attrs.groups) != 1:
            return self._depthwise(call)
        shapes = plain_float_conv(call) or plain_int8_conv(call)
        if shapes is None:
            return None
        (xs, ws), x = shapes, call.args[0]
        twin, size = self._twin(x), padded_channels(xs[1], self.lanes) or self._int8_block(call, xs[1])
        if twin is not None and call.args[0].ty.dtype == "uint8" and twin.where != tuple(range(xs[1])):
            return None  # an int8 kernel's channel pairs were checked in order (quantized.pairs_fit_int16)
        if twin is None and size:
            twin = self._emit_twin(relax.op.nn.pad(x, [0, 0, 0, size - xs[1], 0, 0, 0, 0]), range(xs[1]), size)
        out = padded_output_channels(ws[0], self.lanes, xs[2] * xs[3])
        if twin is None and out is None:
            return None
        w = call.args[1].value.numpy()
        if twin is not None:
            w = twin.scatter(w, axis=1)
        if out is not None:
            w = np.concatenate([w, np.zeros((out - ws[0], *w.shape[1:]), w.dtype)])
        y = relax.Call(call.op, [twin.expr if twin else x, relax.const(w)], call.attrs)
        return y if out is None else self._emit_twin(y, range(ws[0]), out)

    def _int8_block(self, call: relax.Call, channels: int) -> int | None:
        """One block for an int8 conv's input under one block (``quantized``, on VNNI: the TFLite
        MobileNetV2's 8 channels), unless it is a channels-last stem, read in place in groups of 4
        (``passes.blocked_stem``)."""
        if call.args[0].ty.dtype != "uint8" or channels >= self.lanes:
            return None
        stem = bound_call(self, call.args[0], "relax.permute_dims")
        return None if stem is not None else self.lanes

    def _depthwise(self, call: relax.Call) -> Padded | None:
        twin, a = self._twin(call.args[0]), call.attrs
        if twin is None or plain_depthwise(call) != len(twin.where):
            return None
        w = twin.scatter(call.args[1].value.numpy(), axis=0)
        y = relax.op.nn.conv2d(twin.expr, relax.const(w), strides=a.strides, padding=a.padding, dilation=a.dilation,
                               groups=twin.size, data_layout="NCHW", kernel_layout="OIHW", out_layout="NCHW",
                               out_dtype="float32")
        return self._emit_twin(y, twin.where, twin.size)

    def _binary(self, call: relax.Call) -> Padded | None:
        """An elementwise op of twins with the same channels and per-channel constants."""
        out = static_shape(call)
        twins = [self._twin(a) for a in call.args]
        first = next((t for t in twins if t is not None), None)
        if first is None or out is None or len(out) != 4:
            return None
        args = []
        for i, (a, t) in enumerate(zip(call.args, twins)):
            if t is not None:
                if (t.where, t.size) != (first.where, first.size) or not broadcasts_to(static_shape(a), out):
                    return None
                args.append(t.expr)
            elif isinstance(a, tvm.ir.expr.Constant) and (call.op.name != "relax.divide" or i == 1):
                const = self._const(a, first, out[1], fill=1.0 if call.op.name == "relax.divide" else 0.0)
                if const is None:
                    return None
                args.append(const)
            else:
                return None
        return self._emit_twin(relax.Call(call.op, args, call.attrs, call.ty_args), first.where, first.size)

    @staticmethod
    def _const(const: tvm.ir.expr.Constant, twin: Padded, channels: int, fill: float) -> relax.Expr | None:
        """A constant that broadcasts against [N, C, H, W], repacked against the twin's channels."""
        a = const.value.numpy()
        if a.ndim == 0 or a.size == 1:
            return const
        if a.ndim > 4:
            return None
        a4 = a.reshape((1,) * (4 - a.ndim) + a.shape)
        if a4.shape[1] != channels:
            return const if a4.shape[1] == 1 else None
        return relax.const(twin.scatter(a4, axis=1, fill=fill))

    def _concat(self, call: relax.Call) -> Padded | None:
        """A channel concat with a twin among its parts: the parts' twins (or the parts) side by
        side, when their channels add up to whole blocks."""
        parts = call.args[0].fields if isinstance(call.args[0], relax.Tuple) else ()
        if call.attrs.axis is None or int(call.attrs.axis) % 4 != 1:
            return None
        if all(self._twin(p) is None for p in parts):
            return None
        exprs, where, offset = [], [], 0
        for p in parts:
            shape, t = static_shape(p), self._twin(p)
            if shape is None or len(shape) != 4 or not _is_float(p):
                return None
            t = t or Padded(p, tuple(range(shape[1])), shape[1])
            exprs.append(t.expr)
            where += [offset + i for i in t.where]
            offset += t.size
        if offset % self.lanes:
            return None
        return self._emit_twin(relax.op.concat(exprs, axis=1), where, offset)

    def _flatten(self, call: relax.Call, twin: Padded) -> Padded | None:
        """[N, C, 1, 1] -> [N, C] (before a classifier)."""
        xs, out = static_shape(call.args[0]), static_shape(call)
        if xs is None or out is None or len(xs) != 4 or xs[2:] != [1, 1] or out != xs[:2]:
            return None
        return self._emit_twin(relax.op.reshape(twin.expr, [xs[0], twin.size]), twin.where, twin.size)

    def _dense(self, call: relax.Call, twin: Padded) -> relax.Expr | None:
        """x[N, C] @ W[C, M] on the twin, with zero rows of W for the padding."""
        xs, w = static_shape(call.args[0]), call.args[1]
        if (xs is None or len(xs) != 2 or not isinstance(w, tvm.ir.expr.Constant) or len(w.value.shape) != 2
                or int(w.value.shape[0]) != len(twin.where)):
            return None
        return relax.op.matmul(twin.expr, relax.const(twin.scatter(w.value.numpy(), axis=0)), out_dtype="float32")


def pad_channels(mod: tvm.IRModule, lanes: int) -> tvm.IRModule:
    """``mod`` (NCHW) with the channels of its convs padded to multiples of ``lanes``."""
    return relax.transform.DeadCodeElimination()(rewrite_functions(_ChannelPadder(mod, lanes), mod))
