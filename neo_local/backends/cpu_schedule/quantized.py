"""Relax rewrites for quantized (int8 QDQ, TFLite int8) models, run before the float rewrites of ``passes``.

A QDQ graph (onnxruntime's ``quantize_static``) imports as float ops between
``R.quantize``/``R.dequantize`` pairs: ``dequantize(quantize(x, s, zp), s, zp)`` on every
activation, ``dequantize(int8 W, per-channel s_w)`` on every weight. The layout passes cannot see
through quantize/dequantize (no layout rule; int8 values in between), so each conv sits in NCHW
between layout transforms, and each pair is a kernel of its own. Three rewrites:

1. Each per-tensor pair becomes float elementwise ops, exactly ONNX's QuantizeLinear then
   DequantizeLinear: ``t = clip(round(x / s), qmin - zp, qmax - zp)`` (round half to even, as
   ``R.quantize`` lowers it), ``dq = t * s``. These follow the blocked layout and fuse into the
   producing conv's epilogue, so an int8 conv costs one float blocked conv.
2. A groups=1 conv of such a ``dq`` with constant dequantized int8 weights becomes
   ``conv(t, W_int - zp_w) * (s * s_w)``: the conv of integer-valued floats computes the integer
   sum of int8 products exactly (as onnxruntime's integer kernels do) while every partial sum stays
   below 2^24 in magnitude. The bound is checked per conv (``max_o sum |W_int[o]| * max |t|``); a
   conv over it keeps the float form of the graph (dequantized operands, the ONNX reference's own
   arithmetic), counted as ``float_convs``.

3. Where the target has an int8 dot instruction (``int8_dot``: VNNI, AVX-512BW, AVX2), such a conv
   instead runs on integers: ``u = t - lo`` as uint8 (t's range [lo, hi] shifted to start at 0),
   the weights as int8, the sums in int32, ``conv(t, W) = conv(u, W) + lo * sum(W)`` per output
   channel. Taken where the weights fit int8, the channels fill the instruction's blocks, the
   conv pads nothing unless lo = 0 (post-ReLU activations: a padded u of 0 is a padded t of 0),
   and, for the instructions that add product pairs in int16 (AVX2, AVX-512BW), no pair can
   saturate (``pairs_fit_int16``); counted as ``int8_convs``. Measured on onnxruntime's QDQ
   ResNet-50 (znver5, 2 threads, VNNI): 20.4 -> 6.4 ms, onnxruntime's int8 15.1 ms. Where t has
   other, float readers (a residual add), they read ``(u + lo) * s`` (``_read_unsigned``), so that
   the cast to u fuses into t's producer instead of being a kernel of its own. Where lo is not 0
   (a projection's output, no ReLU), the builder binds u's subtraction apart from its cast, and
   both move: the TFLite MobileNetV2 int8 example has 9 kernels fewer, about 3% of its time
   (znver4, one process, outputs still equal to the interpreter's); MobileNet QDQ 3 fewer.

4. A full-integer model's input (a TFLite int8 model dequantizes it directly: no quantize made
   it) is integer-valued too, t = x - zp (``_integer_input``), so the convs reading it take the
   rewrites above. Its stem, a channels-last conv over fewer channels than a block (RGB's 3),
   fills no block of the dot's, and ran as a float conv of the dequantized input at the FMAs'
   limit (27 a pixel). On VNNI it runs on the int8 kernel instead (``_int8_stem``): u = x - qmin
   as uint8, padded in one step with t's zero (-lo) around and with channels up to the dot's
   group of 4, an unpadded conv that ``passes.blocked_stem`` reads in place as one block of 4
   channels (9 ``vpdpbusd`` a pixel). The TFLite int8 CNN (znver4, each kernel alone, 2 threads):
   its stem 3.3 us and the input's dequantize 0.3 -> 0.8 and u's padded copy 0.7, the kernels'
   sum 10.0 -> 7.7 us; its outputs and the MobileNetV2 int8's still equal the interpreter's.

TFLite int8 models import the same way (dequantize -> float op -> quantize per operator, with a
clip of the int8 value between the pair) and take rewrite 1; their NHWC convs (HWIO weights) take
rewrites 2 and 3 as NCHW ones do (``CONV_LAYOUTS``). The TFLite MobileNetV2 int8 example (znver4,
one process, with the dot step of ``int8_dot`` as one expression): 194 -> 170 us, 14 convs on
int8 kernels and 20 on exact integer-valued floats. Measured: onnxruntime's QDQ resnet_like (int8
and uint8 activations) equals onnx.reference exactly over 8 seeded inputs; the TFLite int8
example CNN equals the interpreter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax

from neo_local.backends.cpu_schedule import int8_dot
from neo_local.backends.cpu_schedule.rewriting import bound_call, relax_calls, rewrite_functions, static_shape


#: float32 represents every integer up to 2^24 exactly
EXACT_LIMIT = 2 ** 24


#: int16, where ``int8_dot``'s first step adds each pair of u8 x s8 products
INT16_MIN, INT16_MAX = -2 ** 15, 2 ** 15 - 1


@dataclass(frozen=True)
class QuantizedStats:
    fake_quantize: int  # quantize/dequantize pairs turned into float elementwise ops
    int8_convs: int  # convs on uint8 x int8 integer kernels (module doc, 3)
    integer_convs: int  # convs computed on integer-valued floats (exact sums)
    float_convs: int  # convs left on dequantized floats: their exact-sum bound reaches 2^24
    dot: str = ""  # the int8 dot instruction of the int8 convs (``int8_dot``)

    def as_stats(self) -> dict[str, int | str]:
        """For the pipeline's stats (Build.Pipeline): nothing for a float model."""
        counts = {"qdq_pairs": self.fake_quantize, "int8_kernel_convs": self.int8_convs,
                  "int8_exact_convs": self.integer_convs, "int8_float_convs": self.float_convs}
        if not any(counts.values()):
            return {}
        return {**counts, "int8_dot": self.dot} if self.int8_convs else counts


def _per_channel(value: float, like: relax.Expr, nchw: bool) -> relax.Constant:
    """``value`` as a float32 constant to broadcast against ``like``: of shape (1, C, 1, 1) for a
    rank-4 tensor of an NCHW model (``nchw``: no conv of the module is channels-last), else a
    scalar. A scalar is compiled into the kernel as a literal, so kernels that differ only in their
    scales are each built apart; a per-channel constant is a parameter, blocked with the layout
    like a bias, and kernels of the same shapes share one build (ResNet-50 QDQ: 68 -> 47 kernels).
    In an NHWC model (TFLite's) that shape lay along H, which the layout passes then could not
    convert (a TFLite int8 CNN failed the blocked layout, "Cannot broadcast from 5 to 4", and ran
    on the plain build at 7x the TFLite interpreter's time)."""
    shape = like.ty.shape if isinstance(like.ty, relax.TensorType) else None
    if not nchw or shape is None or len(shape) != 4 or not isinstance(shape[1], tvm.tirx.IntImm):
        return relax.const(value, "float32")
    return relax.const(np.full((1, int(shape[1]), 1, 1), value, "float32"))


@dataclass(frozen=True)
class ConvLayout:
    """A conv's (data, kernel) layouts as the rewrites see them: ``kernel`` spells the weights'
    axes (in OIHW letters), ``out_axis`` is their output-channel axis (the weights' dequantize
    axis) and ``channel`` the output's channel axis."""

    kernel: str
    out_axis: int
    channel: int

    def to_oihw(self, w: np.ndarray) -> np.ndarray:
        return w.transpose([self.kernel.index(axis) for axis in "OIHW"])

    def from_oihw(self, w: np.ndarray) -> np.ndarray:
        return w.transpose(["OIHW".index(axis) for axis in self.kernel])

    def per_output(self, values: np.ndarray) -> np.ndarray:
        """Per-output-channel ``values`` as float32, shaped to broadcast along the output's channels."""
        shape = [1, 1, 1, 1]
        shape[self.channel] = -1
        return np.asarray(values, np.float32).reshape(shape)


#: the conv layouts the integer rewrites take: ONNX's, and TFLite's channels-last one
CONV_LAYOUTS = {("NCHW", "OIHW"): ConvLayout("OIHW", 0, 1), ("NHWC", "HWIO"): ConvLayout("HWIO", 3, 3)}


def _channels_last(mod: tvm.IRModule) -> bool:
    """Whether any conv2d of ``mod`` has channels-last data (NHWC)."""
    conv = tvm.ir.Op.get("relax.nn.conv2d")
    return any(call.op == conv and str(call.attrs.data_layout) != "NCHW" for call in relax_calls(mod))


def _const(expr: relax.Expr) -> np.ndarray | None:
    return expr.value.numpy() if isinstance(expr, tvm.ir.expr.Constant) else None


def _scalar(expr: relax.Expr) -> float | None:
    value = _const(expr)
    return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None


@relax.expr_functor.mutator
class _QdqRewriter(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule, dot: int8_dot.DotInstruction | None):
        super().__init__(mod)
        self.nchw = not _channels_last(mod)
        self.integer: dict[relax.Var, tuple[float, float, float]] = {}  # integer-valued t -> (s, lo, hi); dq = t * s
        self.dot = dot
        self.counts = {"fake_quantize": 0, "int8_convs": 0, "integer_convs": 0, "float_convs": 0}
        self.unsigned: dict[relax.Var, float] = {}  # u = t - lo (uint8) of an int8 conv -> lo
        self.dequantized: dict[relax.Expr, relax.Var] = {}  # a quantized value -> its t
        self.inputs: dict[relax.Var, relax.Expr] = {}  # t of int8 values no quantize made -> those values

    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802 (TVM's naming)
        call = super().visit_call_(call)
        new = None
        if call.op == tvm.ir.Op.get("relax.dequantize"):
            new = self._fake_quantize(call)
            new = self._integer_input(call) if new is None else new
        elif call.op == tvm.ir.Op.get("relax.nn.conv2d"):
            new = self._integer_conv(call)
        return call if new is None else new

    def _fake_quantize(self, dq: relax.Call) -> relax.Expr | None:
        """dequantize(quantize(x, s, zp), s, zp), per tensor, float32 -> ``t * s`` (module doc, 1). A
        clip of the int8 value in between (TFLite's fused activations, and its no-op -128..127) narrows
        the range."""
        source, (lo, hi) = dq.args[0], (-np.inf, np.inf)
        clip = bound_call(self, source, "relax.clip")
        if clip is not None:
            source, lo, hi = clip.args[0], float(clip.args[1].value), float(clip.args[2].value)
        q = bound_call(self, source, "relax.quantize")
        if q is None or str(dq.attrs.out_dtype) != "float32" or q.args[0].ty.dtype != "float32":
            return None
        s, zp = _scalar(q.args[1]), _scalar(q.args[2])
        if s is None or zp is None or (s, zp) != (_scalar(dq.args[1]), _scalar(dq.args[2])):
            return None
        x = q.args[0]
        self.counts["fake_quantize"] += 1
        t = self.dequantized.get(dq.args[0])  # TFLite dequantizes a value once per reader: one t for all
        if t is None:
            info, bb = np.iinfo(str(q.attrs.out_dtype)), self.builder_
            r = bb.emit(relax.op.round(relax.op.divide(x, _per_channel(s, x, self.nchw))))
            lo, hi = max(lo, info.min) - zp, min(hi, info.max) - zp
            lo_c, hi_c = _per_channel(lo, x, self.nchw), _per_channel(hi, x, self.nchw)
            t = self.dequantized[dq.args[0]] = bb.emit(relax.op.minimum(relax.op.maximum(r, lo_c), hi_c))
            self.integer[t] = (s, lo, hi)
        return relax.op.multiply(t, _per_channel(s, x, self.nchw))

    def _integer_input(self, dq: relax.Call) -> relax.Expr | None:
        """dequantize(x, s, zp) of int8 or uint8 values that no quantize here made (a TFLite int8
        model's input) -> ``t * s``, t = float(x) - zp: integer-valued in [qmin - zp, qmax - zp], so
        that the convs reading it take rewrites 2 and 3 (the TFLite int8 CNN's stem ran on
        dequantized floats)."""
        x = dq.args[0]
        if (isinstance(x, tvm.ir.expr.Constant) or not isinstance(x.ty, relax.TensorType)
                or x.ty.dtype not in ("int8", "uint8") or str(dq.attrs.out_dtype) != "float32"):
            return None
        s, zp = _scalar(dq.args[1]), _scalar(dq.args[2])
        if s is None or zp is None:
            return None
        t = self.dequantized.get(x)
        if t is None:
            info, f = np.iinfo(str(x.ty.dtype)), relax.op.astype(x, "float32")
            t = self.dequantized[x] = self.builder_.emit(
                relax.op.subtract(f, _per_channel(zp, x, self.nchw)) if zp else f)
            self.integer[t] = (s, info.min - zp, info.max - zp)
            self.inputs[t] = x
        return relax.op.multiply(t, _per_channel(s, x, self.nchw))

    def _integer_conv(self, conv: relax.Call) -> relax.Expr | None:
        """conv(t * s, dequantize(W_int, s_w, zp_w)) -> conv(t, W_int - zp_w) * (s * s_w) (module doc, 2),
        in either of the layouts ``CONV_LAYOUTS`` holds (ONNX's NCHW, TFLite's NHWC)."""
        attrs = conv.attrs
        layout = CONV_LAYOUTS.get((str(attrs.data_layout), str(attrs.kernel_layout)))
        if int(attrs.groups) != 1 or layout is None:
            return None
        data = bound_call(self, conv.args[0], "relax.multiply")
        weight = bound_call(self, conv.args[1], "relax.dequantize")
        if data is None or weight is None or data.args[0] not in self.integer:
            return None
        t, (s, lo, hi) = data.args[0], self.integer[data.args[0]]
        scale = _const(data.args[1])
        if scale is None or not np.all(scale == np.float32(s)):  # t * s, s as _per_channel wrote it
            return None
        w_int, s_w, zp_w = (_const(a) for a in weight.args)
        if w_int is None or s_w is None or zp_w is None:
            return None
        if max(s_w.size, zp_w.size) > 1 and int(weight.attrs.axis) % 4 != layout.out_axis:  # per channel, not per output
            return None
        w_int = layout.to_oihw(w_int)
        cout = w_int.shape[0]
        w = w_int.astype(np.int64) - np.broadcast_to(zp_w, (cout,)).astype(np.int64).reshape(-1, 1, 1, 1)
        out_scale = layout.per_output(np.float32(s) * np.broadcast_to(s_w, (cout,)).astype(np.float32))
        row_sum = float(np.abs(w).reshape(cout, -1).sum(axis=1).max())  # the largest sum of |w| per output
        padded = any(int(p) for p in attrs.padding)
        shape = static_shape(conv)  # None where symbolic: the pixels unknown, no conv under a block is taken
        pixels = math.prod(shape) // (shape[0] * shape[layout.channel]) if shape else 0
        if self.dot is not None and _fits_int8_kernel(w, row_sum, (lo, hi), padded, self.dot, pixels):
            self.counts["int8_convs"] += 1
            return relax.op.multiply(self._int8_conv(t, w, lo, layout, attrs), relax.const(out_scale))
        if (self.dot is not None and t in self.inputs and layout.channel == 3
                and _fits_int8_stem(w, row_sum, (lo, hi), self.dot)):
            self.counts["int8_convs"] += 1
            return relax.op.multiply(self._int8_stem(t, w, lo, layout, attrs), relax.const(out_scale))
        if row_sum * max(abs(lo), abs(hi)) >= EXACT_LIMIT:
            self.counts["float_convs"] += 1
            return None
        self.counts["integer_convs"] += 1
        y = self.builder_.emit(relax.Call(conv.op, [t, relax.const(layout.from_oihw(w).astype(np.float32))], attrs))
        return relax.op.multiply(y, relax.const(out_scale))

    def _int8_conv(self, t: relax.Expr, w: np.ndarray, lo: float, layout: ConvLayout, attrs) -> relax.Expr:
        """conv(t, w) as float32, computed on u = t - lo (uint8) with int8 weights (OIHW) into int32
        (module doc, 3): conv(t, w) = conv(u, w) + lo * sum(w) per output channel, where nothing is
        padded."""
        u = self._unsigned(t, lo)
        self.unsigned[u] = lo
        return self._shifted_back(self._int32_conv(u, w, layout, attrs, attrs.strides, attrs.padding, attrs.dilation),
                                  w, lo, layout)

    def _int8_stem(self, t: relax.Var, w: np.ndarray, lo: float, layout: ConvLayout, attrs) -> relax.Expr:
        """conv(t, w) as float32 where t, channels-last with fewer channels than a block, is the
        integer input x shifted by its zero point (module doc, 4): u = t - lo = x - qmin as uint8,
        padded in one step, spatially and to a multiple of the dot's group of channels, with -lo
        (t's zero; the extra channels meet zero weights), and an unpadded int8 conv of that."""
        x, cin = self.inputs[t], w.shape[1]
        qmin = int(np.iinfo(str(x.ty.dtype)).min)
        u = relax.op.astype(relax.op.subtract(relax.op.astype(x, "int16"), relax.const(qmin, "int16")) if qmin else x,
                            "uint8")
        top, left, bottom, right = (int(p) for p in attrs.padding)
        extra = -cin % int8_dot.GROUP
        if top or left or bottom or right or extra:
            u = relax.op.nn.pad(u, [0, 0, top, bottom, left, right, 0, extra], pad_value=float(-lo))
            w = np.pad(w, [(0, 0), (0, extra), (0, 0), (0, 0)])
        y = self._int32_conv(self.builder_.emit(u), w, layout, attrs, attrs.strides, (0, 0, 0, 0), attrs.dilation)
        return self._shifted_back(y, w, lo, layout)

    def _unsigned(self, t: relax.Expr, lo: float) -> relax.Var:
        """u = t - lo as uint8 (t in [lo, lo + 255])."""
        return self.builder_.emit(relax.op.astype(relax.op.subtract(t, _per_channel(lo, t, self.nchw)) if lo else t,
                                                  "uint8"))

    def _int32_conv(self, u: relax.Expr, w: np.ndarray, layout: ConvLayout, attrs, strides, padding, dilation
                    ) -> relax.Var:
        """conv2d(u, w as int8 in the conv's own layouts) into int32."""
        return self.builder_.emit(relax.op.nn.conv2d(
            u, relax.const(layout.from_oihw(w).astype(np.int8)), strides, padding, dilation, 1, attrs.data_layout,
            attrs.kernel_layout, attrs.out_layout, "int32"))

    def _shifted_back(self, y: relax.Expr, w: np.ndarray, lo: float, layout: ConvLayout) -> relax.Expr:
        """conv(t, w) = conv(u, w) + lo * sum(w), per output channel, as float32."""
        f = relax.op.astype(y, "float32")
        if not lo:
            return f
        return relax.op.add(self.builder_.emit(f), relax.const(layout.per_output(lo * w.sum(axis=(1, 2, 3)))))


def _fits_int8_stem(w: np.ndarray, row_sum: float, bounds: tuple[float, float], dot: int8_dot.DotInstruction
                    ) -> bool:
    """Whether conv(t, w) over fewer input channels than a block (a 3-channel stem) computes
    exactly on ``dot``'s kernel as ``_int8_stem`` writes it: int8 weights, output channels in whole
    blocks, an instruction without int16 pairs (VNNI) and int32 totals that cannot overflow."""
    (lo, hi), (cout, cin) = bounds, w.shape[:2]
    return cin < dot.lanes and cout % dot.lanes == 0 and not dot.saturates and _exact_in_int32(w, row_sum, hi - lo)


def _fits_int8_kernel(w: np.ndarray, row_sum: float, bounds: tuple[float, float], padded: bool,
                      dot: int8_dot.DotInstruction, pixels: int) -> bool:
    """Whether conv(t, w), t in ``bounds`` [lo, hi], computes exactly with ``dot``: int8 weights,
    no padding unless t's zero is u's (lo = 0: a padded u is 0), int16 pair sums where ``dot``
    saturates (``pairs_fit_int16``) and int32 totals that cannot overflow (``row_sum``: the largest
    sum of |w| over one output channel). Channels in whole blocks of its lanes, or, on VNNI (no
    pairs), at least one block or more than one output pixel: ``channel_padding`` pads them to
    whole blocks with zero weights (MobileNetV3 QDQ's 40, 72, 120 channels; the TFLite
    MobileNetV2's 24 and 56; its 8, a conv's output over more than one pixel, padded to a block,
    and so the input of the conv reading it). A squeeze-excite's conv to 8 channels over one pixel
    keeps its 8 (``padded_output_channels``), and a 3-channel input read in place fills no group of
    4 (``passes.blocked_stem``): integer-valued floats."""
    (lo, hi), (cout, cin) = bounds, w.shape[:2]
    span = hi - lo
    if not _exact_in_int32(w, row_sum, span):
        return False
    under_a_block = min(cin, cout) < dot.lanes and (pixels < 2 or cin % int8_dot.GROUP)
    if (cin % dot.lanes or cout % dot.lanes) and (dot.saturates or under_a_block):
        return False
    if lo and padded:
        return False
    return not dot.saturates or pairs_fit_int16(w, span)


def _exact_in_int32(w: np.ndarray, row_sum: float, span: float) -> bool:
    """Whether ``w`` is int8 and a conv's int32 totals over inputs spanning ``span`` cannot
    overflow (``row_sum``: the largest sum of |w| over one output channel)."""
    return w.min() >= -128 and w.max() <= 127 and row_sum * span < 2 ** 31


def pairs_fit_int16(w: np.ndarray, span: float) -> bool:
    """Whether every sum of two neighbouring input channels' products (channels 2k and 2k+1, the
    pairs ``vpmaddubsw`` adds) stays in int16 for inputs in [0, span]: the worst case takes
    span on each positive (or each negative) weight of the pair."""
    cout, cin, kh, kw = w.shape
    pairs = w.reshape(cout, cin // 2, 2, kh, kw)
    return (float(np.clip(pairs, 0, None).sum(axis=2).max()) * span <= INT16_MAX
            and float(np.clip(pairs, None, 0).sum(axis=2).min()) * span >= INT16_MIN)


def _read_unsigned(mod: tvm.IRModule, unsigned: dict[relax.Var, float]) -> tvm.IRModule:
    """Where an int8 conv reads t as u = t - lo (uint8, ``unsigned``: u -> lo) and other ops read
    ``t * s`` (a residual add: a ResNet block's input, a TFLite CNN's stem output), u is computed
    right after t and those ops read ``(u + lo) * s``, the same values. t's one reader is then u's
    cast, which fuses into t's producer, instead of a kernel of its own."""
    for gv, func in mod.functions_items():
        if isinstance(func, relax.Function) and isinstance(func.body, relax.SeqExpr):
            blocks = [_reordered(b, unsigned) if isinstance(b, relax.DataflowBlock) else b for b in func.body.blocks]
            if any(new is not old for new, old in zip(blocks, func.body.blocks)):
                mod[gv] = relax.Function(func.params, relax.SeqExpr(blocks, func.body.body), func.ret_ty,
                                         func.is_pure, func.attrs)
    return relax.transform.Normalize()(mod)


def _reordered(block: relax.DataflowBlock, unsigned: dict[relax.Var, float]) -> relax.DataflowBlock:
    """``_read_unsigned`` on one block: the u's whose t this block binds move right after t."""
    bound, subtract = {b.var: b for b in block.bindings}, tvm.ir.Op.get("relax.subtract")
    casts: dict[relax.Var, list[relax.VarBinding]] = {}  # t -> the bindings of its u's (one per lo)
    for b in block.bindings:
        if b.var in unsigned:
            # astype(t), or astype(d) with d = subtract(t, lo) bound before it (the builder binds
            # the nested call apart), or astype(subtract(t, lo))
            source, group = b.value.args[0], [b]
            if source in bound and isinstance(bound[source].value, relax.Call) and bound[source].value.op == subtract:
                group = [bound[source], b]
                source = bound[source].value
            t = source.args[0] if isinstance(source, relax.Call) else source
            if t in bound:
                casts.setdefault(t, []).extend(group)
    if not casts:
        return block
    moved = {b.var for group in casts.values() for b in group}
    multiply, bindings = tvm.ir.Op.get("relax.multiply"), []
    for b in block.bindings:
        if b.var in moved:
            continue
        value = b.value
        if (isinstance(value, relax.Call) and value.op == multiply and value.args[0] in casts
                and isinstance(value.args[1], tvm.ir.expr.Constant)):
            u = next(c.var for c in casts[value.args[0]] if c.var in unsigned)
            f = relax.op.astype(u, "float32")
            t = relax.op.add(f, relax.const(unsigned[u], "float32")) if unsigned[u] else f
            b = relax.VarBinding(b.var, relax.op.multiply(t, value.args[1]))
        bindings.append(b)
        bindings += casts.get(b.var, [])
    return relax.DataflowBlock(bindings)


def rewrite_with_stats(mod: tvm.IRModule, dot: int8_dot.DotInstruction | None = None
                       ) -> tuple[tvm.IRModule, QuantizedStats]:
    """The module with its QDQ patterns rewritten for the blocked CPU schedules (module doc), and
    what was done. ``dot``: the target's int8 dot instruction (``int8_dot.for_target``), with which
    the convs that fit take integer kernels (rewrite 3); None: none do."""
    rewriter = _QdqRewriter(mod, dot)
    out = rewrite_functions(rewriter, mod)
    if rewriter.unsigned:
        out = _read_unsigned(out, rewriter.unsigned)
    out = relax.transform.DeadCodeElimination()(out)
    return out, QuantizedStats(**rewriter.counts, dot=dot.name if dot else "")
