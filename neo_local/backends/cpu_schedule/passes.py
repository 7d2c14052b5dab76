"""Relax-level rewrites of the default CPU pipeline (see ``neo_local.backends.cpu_schedule``).

Order (``relax_passes``):

0. ``recurrence_kernels`` (``recurrence``): each LSTM or GRU direction the importer emitted as a
   function (``RECURRENCE_ATTR``) becomes one call of a kernel that runs all its steps.
1. ``FoldConstant`` and ``DecomposeOpsForInference`` (batch norm -> scale/shift;
   ``CanonicalizeBindings`` drops the (y, mean, var)[0] tuple a standalone batch norm leaves), then
   ``conv1d_as_conv2d`` (``conv1d``: 1-D convs, pools and the elementwise ops between them as 2-D
   ones of height 1, so that every step below takes them) and ``conv_transpose_as_conv``
   (``conv_transpose``: transposed convs, which ``ConvertLayout`` failed on, as one conv of all
   their output phases and a depth-to-space), ``stack_as_concat`` (a ``stack``, whose layout
   ``ConvertLayout`` gets one axis short: an LSTM's outputs), ``drop_empty_concat_parts``
   (``torch.roll`` by 0's empty slice), then ``rewrite_clip``: the ONNX importer turns ``Clip``
   into ``call_tir(maximum|minimum, x, scalar)``, which ``ConvertLayout`` cannot see through; it
   becomes ``R.maximum``/``R.minimum`` again.
   ``match_constant_ranks``: channels-last models (TFLite) get their rank-1 per-channel
   constants at rank 4 and ``R.clip`` as maximum/minimum; a first ``ConvertLayout`` to plain
   NCHW/OIHW (constants folded) then puts every conv, grouped ones included, where the steps
   below expect it. ``channel_padding``: values whose channels do not divide by the vector width
   (24, 40, 280 at 16 lanes; a YOLO head's 255) get zero channels up to the next multiple, so
   every conv over them, and the per-channel ops between, take the blocked steps below.
2. ``ConvertLayout``: every groups=1 NCHW conv2d whose channels divide by the vector width
   becomes NCHW{L}c / OIHW{L}i{L}o; elementwise ops, pools and means follow the blocked layout.
3. ``blocked_stem``: a conv2d the layout pass left in NCHW because its input channels do not
   divide (the 3-channel stem) becomes NCHW1c -> NCHW{L}c (its NCHW input read in place; a
   channels-last one as one block of its channels: a full-integer model's int8 stem, its
   channels padded to 4, on the int8 dot: ``quantized._int8_stem``).
4. ``blocked_depthwise``: ``ConvertLayout`` skips grouped convs, so each depthwise conv sits in
   NCHW between layout transforms. It becomes a blocked conv2d (NCHW{L}c data, weights repacked to
   [C/L, 1, kh, kw, 1, L] = ``OIHW1i{L}o``, groups = C), and the NCHW region around it is rebuilt
   in the blocked layout (a grouped conv that is not depthwise likewise, as a blocked conv of
   its block groups: ``grouped_conv``): every NCHW value that is a layout_transform of a blocked
   one, or an elementwise op (add/sub/mul/div/max/min, relu/clip/sigmoid/...) of such values and
   constants (constants repacked), gets a blocked twin; its blocked consumers (convs, elementwise ops,
   depthwise convs, spatial means) use the twin, and the NCHW originals die (DCE) unless something
   else still needs them. The 3-channel stem's epilogue stays blocked this way too, and so do
   max/avg pools, image resizes, channel concats and channel slices by whole blocks, and
   ShuffleNet's channel shuffle (reshape/transpose/reshape, one gather on the blocks:
   ``_shuffle_step``; ops by one scale between its steps, a QDQ model's, move onto the blocks:
   ``_through_shuffle``).
   Before it, ``dense_as_conv``: a one-row dense layer (x[1, K] @ W) becomes a blocked 1x1 conv;
   ``matmul_shapes``: one-row products in a batch loop become one product, ragged columns are
   padded to whole vectors.
5. ``LegalizeOps`` with ``legalize_conv2d``: blocked conv2d -> our own NCHWc TE compute
   (``conv2d_nchwc``: reduction over channel chunk, kh, kw, channel-in-block; padding as a separate
   ``data_pad`` stage; computed a few columns wider and cropped, ``conv_crop``, where that gives a
   fuller register tile: ``tile_width``; the extra columns repeat the last one's input, so the
   input is not copied wider; a conv to few pixels over all of them as one row where that gives
   fuller tiles than its rows do: ``conv_columns``); a blocked uint8 x
   int8 -> int32 conv (``quantized``'s integer kernels) -> ``conv2d_nchwc_dot``, the same frame
   with the channel-in-block reduction split into groups of 4 for the target's int8 dot
   instruction (``int8_dot``), its weights repacked
   by ``dot_kernel_layout``; a conv in blocks narrower than the target's vectors (8-lane blocks
   on AVX-512) computed in the vectors' width (``_direct_conv``: ``wide_kernel_layout``'s
   weights, ``conv2d_nchwc_wide_compute``'s output written back as the narrow blocks); in a
   bfloat16 build (``bf16_dot``) every blocked float conv the same way, on groups of 2, its
   input rounded to bfloat16 by a ``to_bf16`` step (which fuses into the producer's epilogue)
   and its weights at compile time; a float32 3x3 stride-1 conv with 16
   output tiles of 4x4 or more -> Winograd's F(4,3), F(2,3) up to 16 such tiles, and a 5x5 one
   from 8x8 outputs -> F(2,5), padded or not (``winograd.tile_size``), in three kernels
   (``winograd``: input transform, products as a ``conv2d_nchwc`` of batch 36 or 16, output
   transform); blocked depthwise ->
   ``depthwise_conv2d_nchwc`` (reduction over kh, kw); a blocked grouped conv -> ``conv2d_nchwc``
   with each output chunk reading its own block group's input chunks (annotated ``GROUP_ATTR``:
   its register tile stays within a group); dense layers -> their weights in column
   panels, and products whose row count has no divisor for a deep register tile computed a few
   rows deeper and cropped (``dot_matmul``); float32 exp/tanh/erf/sigmoid -> topi's
   vectorizable polynomials and small powers -> products (``fast_math``), a float32 softmax,
   layer norm, sum, mean, max or variance over the last axis -> vector reductions per row
   (``softmax``, ``layer_norm``, ``row_reductions``), a bilinear NCHW resize -> two passes,
   along x then y
   (``resize``); anything else -> TVM's own legalization.
6. ``FoldConstant`` (the weight ``layout_transform``s become repacked constants), fusion. Every
   constant fold here is ``constant_folding``'s: Relax's ``FoldConstant`` done in rounds, each
   round's kernels built together, unoptimized.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import tvm
from tvm import relax, te, tirx

from neo_local.backends.cpu_schedule import (bf16_dot, dot_matmul, fast_math, int8_dot, layer_norm, resize,
                                              row_reductions, softmax, winograd)
from neo_local.backends.cpu_schedule.conv1d import conv1d_as_conv2d
from neo_local.backends.cpu_schedule.conv_transpose import conv_transpose_as_conv
from neo_local.backends.cpu_schedule.matmul_shapes import matmul_shapes
from neo_local.backends.cpu_schedule.recurrence import recurrence_kernels
from neo_local.backends.cpu_schedule.int8_dot import DOT_ATTR
from neo_local.backends.cpu_schedule.channel_padding import pad_channels
from neo_local.backends.cpu_schedule.constant_folding import fold_constants
from neo_local.backends.cpu_schedule.grouped_conv import block_grouped_weights, plain_grouped
from neo_local.backends.cpu_schedule.rewriting import (
    BINARY, POOLS, SPATIAL_REDUCTIONS, UNARY, bound_call, broadcasts_to, plain_dense, plain_depthwise, plain_float_conv,
    plain_int8_conv, rebind, relax_calls, rewrite_functions, static_shape,
)

CONV_BLOCK = "conv2d_nchwc"
DW_BLOCK = "depthwise_conv2d_nchwc"
PAD_BLOCK = "data_pad"
CROP_BLOCK = "conv_crop"
#: a conv computed in wider output blocks than its layout's, back in the layout's (``conv2d_nchwc_wide_compute``)
CONV_UNBLOCK = "conv_unblock"
#: the annotation of a conv computed over its pixels as one row (``_blocked_conv``'s ``flat``): the output width
FLAT_ATTR = "neo_local.flat"
#: the annotation of a grouped conv (``grouped_conv``): the output chunks of one group, which read the same input
GROUP_ATTR = "neo_local.group_chunks"
#: the dot instructions by name
DOTS = {**int8_dot.BY_NAME, **bf16_dot.BY_NAME}

_BLOCKED_DATA = re.compile(r"^NCHW(\d+)c$")
_BLOCKED_KERNEL = re.compile(r"^OIHW(\d+)i(\d+)o$")


# --------------------------------------------------------------------------- Clip (call_tir) -> max/min


def _scalar_minmax_kind(func: tirx.PrimFunc) -> str | None:
    """'max' or 'min' when ``func`` is exactly out[...] = max|min(X[...], S[()]) over all axes
    (whatever the importer named the parameters)."""
    if len(func.params) != 3:
        return None
    text = func.script()
    sig = re.search(r"def \w+\((\w+): T\.Buffer\((\(.*?\)), \"(\w+)\"\), (\w+): T\.Buffer\(\(\), \"(\w+)\"\), "
                    r"(\w+): T\.Buffer\((\(.*?\)), \"(\w+)\"\)\)", text)
    if sig is None or sig.group(2) != sig.group(7) or not (sig.group(3) == sig.group(5) == sig.group(8)):
        return None
    if len(re.findall(r"^\s*with T\.sblock\(", text, re.M)) != 1:  # one block ("# with T.sblock('root')" is a comment)
        return None
    x, bound = re.escape(sig.group(1)), re.escape(sig.group(4))
    m = re.search(rf"= T\.(max|min)\({x}\[[^\]]*\], {bound}\[\(\)\]\)", text)
    return m.group(1) if m else None


@relax.expr_functor.mutator
class _ClipRewriter(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.mod_ = mod
        self._call_tir = tvm.ir.Op.get("relax.call_tir")

    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802 (TVM's naming)
        call = super().visit_call_(call)
        if call.op != self._call_tir or not isinstance(call.args[0], tvm.ir.GlobalVar):
            return call
        func = self.mod_[call.args[0]]
        if not isinstance(func, tirx.PrimFunc):
            return call
        args = call.args[1]
        if not isinstance(args, relax.Tuple) or len(args.fields) != 2:
            return call
        x, bound = args.fields
        if not isinstance(bound, tvm.ir.expr.Constant):
            return call
        kind = _scalar_minmax_kind(func)
        if kind is None:
            return call
        return (relax.op.maximum if kind == "max" else relax.op.minimum)(x, bound)


def rewrite_clip(mod: tvm.IRModule) -> tvm.IRModule:
    return relax.transform.DeadCodeElimination()(rewrite_functions(_ClipRewriter(mod), mod))


# --------------------------------------------------------------------------- stack -> concat


@relax.expr_functor.mutator
class _StackAsConcat(relax.PyExprMutator):
    """``stack`` as a ``concat`` of its inputs' ``expand_dims``: ``ConvertLayout``'s layout for a
    stack's output has its inputs' rank, one axis short, and the first layout-aware op after it
    failed ("tvm::String index out of bounds": the permute_dims after a bidirectional LSTM's
    stacked outputs in a conv + LSTM text recognizer, which then fell back to the plain build)."""

    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802
        call = super().visit_call_(call)
        if call.op != tvm.ir.Op.get("relax.stack") or not isinstance(call.ty, relax.TensorType) or call.ty.ndim < 1:
            return call
        parts = call.args[0]
        fields = parts.fields if isinstance(parts, relax.Tuple) else \
            [relax.TupleGetItem(parts, i) for i in range(len(parts.ty.fields))]
        axis = int(call.attrs.axis) % call.ty.ndim
        return relax.op.concat([self.builder_.emit(relax.op.expand_dims(f, axis)) for f in fields], axis)


def stack_as_concat(mod: tvm.IRModule) -> tvm.IRModule:
    return rewrite_functions(_StackAsConcat(mod), mod)


@relax.expr_functor.mutator
class _EmptyConcatParts(relax.PyExprMutator):
    """A concat without its parts of no extent along its axis (``torch.roll`` by 0, as in a Swin
    block without shift, exports as a slice of everything and an empty one, concatenated); one part
    left is the value itself. Fused with the window reshapes, the empty part's zero extent made the
    generic schedule divide by zero, and the kernel ran unscheduled."""

    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802
        call = super().visit_call_(call)
        if call.op != tvm.ir.Op.get("relax.concat") or not isinstance(call.args[0], relax.Tuple):
            return call
        axis, parts = call.attrs.axis, call.args[0].fields
        shapes = [static_shape(p) for p in parts]
        if axis is None or any(s is None for s in shapes):
            return call
        kept = [p for p, s in zip(parts, shapes) if s[int(axis) % len(s)] != 0]
        if len(kept) == len(parts) or not kept:
            return call
        return kept[0] if len(kept) == 1 else relax.op.concat(kept, axis=int(axis))


def drop_empty_concat_parts(mod: tvm.IRModule) -> tvm.IRModule:
    return relax.transform.DeadCodeElimination()(rewrite_functions(_EmptyConcatParts(mod), mod))


# --------------------------------------------------------------------------- channels-last constants


@relax.expr_functor.mutator
class _ConstantRankMatcher(relax.PyExprMutator):
    """``x + bias`` with a per-channel bias of rank 1 (channels-last models: TFLite) is written
    with the bias at x's rank, (1, 1, 1, C): the same broadcast, but one ``ConvertLayout`` can
    move to NCHW with the convolution instead of leaving the add (and all after it) channels-last.
    ``R.clip`` (no layout rule in Relax) becomes ``minimum(maximum(x, lo), hi)``, as ONNX's Clip
    arrives, for the same reason."""

    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self._ops = {tvm.ir.Op.get(name) for name in BINARY}
        self._clip = tvm.ir.Op.get("relax.clip")

    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802
        call = super().visit_call_(call)
        if call.op == self._clip:
            x, lo, hi = call.args
            dtype = x.ty.dtype
            return relax.op.minimum(relax.op.maximum(x, relax.const(float(lo.value), dtype)),
                                    relax.const(float(hi.value), dtype))
        if call.op not in self._ops:
            return call
        a, b = call.args
        if isinstance(b, tvm.ir.expr.Constant):
            return relax.Call(call.op, [a, self._at_rank(b, a)], call.attrs)
        if isinstance(a, tvm.ir.expr.Constant):
            return relax.Call(call.op, [self._at_rank(a, b), b], call.attrs)
        return call

    @staticmethod
    def _at_rank(bias: relax.Expr, x: relax.Expr) -> relax.Expr:
        """A rank-1 per-channel constant for a channels-last 4-D ``x`` as (1, 1, 1, C)."""
        shape = static_shape(x)
        value = bias.value.numpy()
        if shape is None or len(shape) != 4 or value.ndim != 1 or value.shape[0] != shape[-1] or shape[-1] == 1:
            return bias
        return relax.const(value.reshape(1, 1, 1, -1), str(value.dtype))


def match_constant_ranks(mod: tvm.IRModule) -> tvm.IRModule:
    return rewrite_functions(_ConstantRankMatcher(mod), mod)


# --------------------------------------------------------------------------- one-row dense layers


def _one_row_dense(call: relax.Call) -> tuple[int, int] | None:
    """(K, N) of ``matmul(x[1, K], C[K, N])`` with a float32 constant ``C`` (a classifier on one
    image); None otherwise."""
    shapes = plain_dense(call)
    if shapes is None or shapes[0] != [1, shapes[1][0]]:
        return None
    return shapes[1][0], shapes[1][1]


@relax.expr_functor.mutator
class _DenseAsConv(relax.PyExprMutator):
    """A one-row dense layer is a matrix-vector product, which the matmul schedule leaves to dlight
    (its GEMV walks the [K, N] weights down columns, one scalar at a time: 5 ms for 1024 x 1000).
    As a 1x1 conv on a 1x1 image in the blocked layout, x[1, K] -> [1, K/L, 1, 1, L] (a reshape),
    it takes the conv schedule: weights streamed in order, one vector FMA per input channel.
    Output channels are zero-padded to a multiple of L and sliced off after; input channels too,
    the input with zeros (a generator's 100-dim latent into 4096: 0.66 ms unpadded, which TVM's
    generic loops ran, against onnxruntime's whole 4-layer DCGAN in 0.54)."""

    def __init__(self, mod: tvm.IRModule, lanes: int):
        super().__init__(mod)
        self.lanes = lanes
        #: the repacked weights by their constant: a recurrence multiplies by one weight per step
        self.kernels: dict = {}

    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802
        call = super().visit_call_(call)
        dims = _one_row_dense(call)
        if dims is None:
            return call
        (k, n), lanes, bb = dims, self.lanes, self.builder_
        k_pad, n_pad = -(-k // lanes) * lanes, -(-n // lanes) * lanes
        weights = call.args[1].value
        if hash(weights) not in self.kernels:
            c = np.zeros((k_pad, n_pad), "float32")
            c[:k, :n] = weights.numpy()
            kernel = c.reshape(k_pad // lanes, lanes, n_pad // lanes, lanes).transpose(2, 0, 1, 3)[:, :, None, None]
            self.kernels[hash(weights)] = relax.const(np.ascontiguousarray(kernel))
        x = call.args[0] if k_pad == k else bb.emit(relax.op.nn.pad(call.args[0], [0, 0, 0, k_pad - k]))
        x = bb.emit(relax.op.reshape(x, [1, k_pad // lanes, 1, 1, lanes]))
        y = bb.emit(relax.op.nn.conv2d(
            x, self.kernels[hash(weights)], data_layout=f"NCHW{lanes}c",
            kernel_layout=f"OIHW{lanes}i{lanes}o", out_layout=f"NCHW{lanes}c", out_dtype="float32",
        ))
        flat = relax.op.reshape(y, [1, n_pad])
        return flat if n_pad == n else relax.op.strided_slice(bb.emit(flat), axes=[1], begin=[0], end=[n])


def dense_as_conv(mod: tvm.IRModule, lanes: int) -> tvm.IRModule:
    return rewrite_functions(_DenseAsConv(mod, lanes), mod)


# --------------------------------------------------------------------------- moves that are reshapes


def moves_nothing(call: relax.Call) -> bool:
    """Whether a ``layout_transform`` keeps every element at its offset (NC{L}c -> NC, or
    NCHW{L}c -> NCHW of a 1x1 map: a pooled vector between the blocked layout and a dense
    layer). A layout's index map permutes axes and splits or merges a channel axis into blocks:
    each axis's next element fixes its stride and the last element the block's, so where those
    and the first keep their offsets, every element does."""
    if call.op != tvm.ir.Op.get("relax.layout_transform") or call.attrs.pad_value is not None:
        return False
    shape, out = static_shape(call.args[0]), static_shape(call)
    if shape is None or out is None or math.prod(shape) != math.prod(out):
        return False
    points = [[0] * len(shape), [e - 1 for e in shape]]
    points += [[int(axis == a) for a in range(len(shape))] for axis, e in enumerate(shape) if e > 1]
    for point in points:
        mapped = call.attrs.index_map.map_indices([tirx.IntImm("int64", i) for i in point])
        if not all(isinstance(m, tirx.IntImm) for m in mapped):
            return False
        if np.ravel_multi_index([int(m) for m in mapped], out) != np.ravel_multi_index(point, shape):
            return False
    return True


@relax.expr_functor.mutator
class _LayoutReshapes(relax.PyExprMutator):
    """``moves_nothing`` layout transforms as reshapes, which the VM runs as views of the same
    memory: a copy kernel less each (the VM's call and allocation cost more than the copy: a
    TFLite CNN's pooled vector went NC16c -> NC -> the dense layer's blocked input, two kernels
    of its eleven)."""

    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802
        call = super().visit_call_(call)
        return relax.op.reshape(call.args[0], static_shape(call)) if moves_nothing(call) else call


def layout_reshapes(mod: tvm.IRModule) -> tvm.IRModule:
    return rewrite_functions(_LayoutReshapes(mod), mod)


# --------------------------------------------------------------------------- 3-channel stem


@relax.expr_functor.mutator
class _BlockedStem(relax.PyExprMutator):
    """A plain float conv (``plain_float_conv``), or an int8 one over channels-last input in groups
    of 4 (``quantized._int8_stem``), with few input channels (the 3-channel stem):
    NCHW1c -> NCHW{L}c. Its input is read in place, NCHW seen as NCHW1c (a reshape): as NCHW{C}c
    it was first transposed, a kernel of its own (in one process, on znver5: MobileNetV2-style,
    MobileNetV3 and ShuffleNetV2 8-9% faster without it; the larger models unchanged). A
    channels-last input (TFLite, Keras), transposed to NCHW for the conv, is read in place too:
    NHWC is NCHW{C}c with one block (a TFLite CNN's 32x32 image: 0.6 us of copy and a kernel
    call less)."""

    def __init__(self, mod: tvm.IRModule, lanes: int):
        super().__init__(mod)
        self.lanes = lanes

    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802
        call = super().visit_call_(call)
        shapes = plain_float_conv(call) or plain_int8_conv(call)
        if shapes is None:
            return call
        (xs, ws), lanes, bb = shapes, self.lanes, self.builder_
        cin, cout = xs[1], ws[0]
        if cin % lanes == 0 or cout % lanes or cin > 16:
            return call
        attrs, int8 = call.attrs, call.ty.dtype == "int32"
        nhwc = bound_call(self, call.args[0], "relax.permute_dims")
        channels_last = nhwc is not None and [int(a) for a in nhwc.attrs.axes or ()] == [0, 3, 1, 2]
        if int8 and not (channels_last and cin % int8_dot.GROUP == 0):
            return call  # the int8 dot reads channels in groups of 4 (``quantized._int8_stem``)
        if channels_last:
            x = bb.emit(relax.op.reshape(nhwc.args[0], [xs[0], 1, xs[2], xs[3], cin]))
            block = cin
        else:
            x = bb.emit(relax.op.reshape(call.args[0], [*xs, 1]))
            block = 1
        y = bb.emit(relax.op.nn.conv2d(
            x, output_blocked_weights(call.args[1], lanes, block), strides=attrs.strides, padding=attrs.padding,
            dilation=attrs.dilation, groups=1, data_layout=f"NCHW{block}c", kernel_layout=f"OIHW{block}i{lanes}o",
            out_layout=f"NCHW{lanes}c", out_dtype=str(call.ty.dtype),
        ))
        return relax.op.layout_transform(y, lambda n, c, h, w, b: (n, c * lanes + b, h, w))


def output_blocked_weights(weights: tvm.ir.expr.Constant, lanes: int,
                           in_block: int = 1) -> tvm.ir.expr.Constant:
    """Constant OIHW weights as OIHW{B}i{L}o, [O/L, I/B, kh, kw, B, L], B = ``in_block``: 1 for the
    stem reading NCHW (each input channel a chunk of its own) and a depthwise conv's (I = 1), all
    of I for the stem reading NHWC in place (one block)."""
    w = weights.value.numpy()
    o, i, kh, kw = w.shape
    blocked = w.reshape(o // lanes, lanes, i // in_block, in_block, kh, kw).transpose(0, 2, 4, 5, 3, 1)
    return relax.const(np.ascontiguousarray(blocked))


def blocked_stem(mod: tvm.IRModule, lanes: int) -> tvm.IRModule:
    return rewrite_functions(_BlockedStem(mod, lanes), mod)


# --------------------------------------------------------------------------- depthwise conv2d, blocked region


def _map_point(index_map, point) -> tuple[int, ...] | None:
    try:
        return tuple(int(e) for e in index_map.map_indices(point))
    except Exception:  # noqa: BLE001
        return None


def _block_transform_kind(call: relax.Call, lanes: int) -> str | None:
    """'block' for NCHW -> NCHW{lanes}c, 'unblock' for the reverse, else None (checked on shapes
    and on the index map at a few points)."""
    if call.attrs.pad_value is not None:
        return None
    src, dst = static_shape(call.args[0]), static_shape(call)
    if src is None or dst is None:
        return None
    im = call.attrs.index_map
    if len(src) == 4 and len(dst) == 5:
        n, c, h, w = src
        if c % lanes or dst != [n, c // lanes, h, w, lanes]:
            return None
        pts = [(0, 0, 0, 0), (n - 1, c - 1, h - 1, w - 1), (0, lanes + 1 if c > lanes + 1 else c - 1, h // 2, w // 2)]
        ok = all(_map_point(im, list(p)) == (p[0], p[1] // lanes, p[2], p[3], p[1] % lanes) for p in pts)
        return "block" if ok else None
    if len(src) == 5 and len(dst) == 4:
        n, cc, h, w, cb = src
        if cb != lanes or dst != [n, cc * lanes, h, w]:
            return None
        pts = [(0, 0, 0, 0, 0), (n - 1, cc - 1, h - 1, w - 1, lanes - 1), (0, cc // 2, h // 2, w // 2, 3 % lanes)]
        ok = all(_map_point(im, list(p)) == (p[0], p[1] * lanes + p[4], p[2], p[3]) for p in pts)
        return "unblock" if ok else None
    return None


def _block_const(const: tvm.ir.expr.Constant, channels: int, lanes: int) -> tvm.ir.expr.Constant | None:
    """A constant that broadcasts against [N, C, H, W], repacked to broadcast against
    [N, C/L, H, W, L]; scalars stay as they are."""
    a = const.value.numpy()
    if a.ndim == 0:
        return const
    if a.ndim > 4:
        return None
    a4 = a.reshape((1,) * (4 - a.ndim) + a.shape)
    n, c, h, w = a4.shape
    if c == channels:
        a5 = a4.reshape(n, channels // lanes, lanes, h, w).transpose(0, 1, 3, 4, 2)
    elif c == 1:
        a5 = a4.reshape(n, 1, h, w, 1)
    else:
        return None
    return relax.const(np.ascontiguousarray(a5), str(a.dtype))


def _is_depthwise(call: relax.Call, lanes: int) -> bool:
    channels = plain_depthwise(call)
    return channels is not None and channels % lanes == 0


@relax.expr_functor.mutator
class _BlockedRegion(relax.PyExprMutator):
    """See step 4 of the module docstring. ``self.blocked`` maps a (new) NCHW var to an
    expression holding the same values in NCHW{L}c."""

    def __init__(self, mod: tvm.IRModule, lanes: int):
        super().__init__(mod)
        self.lanes = lanes
        self.blocked: dict = {}
        #: the first steps of a channel shuffle: var -> (step, blocked source, groups, op pattern)
        self.shuffles: dict = {}
        self.count = 0

    def _blocked_of(self, expr, create: bool = False):
        if isinstance(expr, relax.Var) and expr in self.blocked:
            return self.blocked[expr]
        return self._block(expr) if create else None

    def _block(self, expr):
        lanes = self.lanes
        return self.builder_.emit(relax.op.layout_transform(expr, lambda n, c, h, w: (n, c // lanes, h, w, c % lanes)))

    def _unblock(self, expr):
        lanes = self.lanes
        return relax.op.layout_transform(expr, lambda n, c, h, w, b: (n, c * lanes + b, h, w))

    def _elementwise(self, call: relax.Call, out_shape):
        """Blocked twin of an elementwise call, or None: float32 ones, and casts (an int8 QDQ
        model's uint8 conv input after a depthwise conv)."""
        if out_shape is None or len(out_shape) != 4 or out_shape[1] % self.lanes:
            return None
        if call.ty.dtype != "float32" and call.op.name != "relax.astype":
            return None
        args, any_blocked = [], False
        for a in call.args:
            if not isinstance(a.ty, relax.TensorType):  # PrimValue bounds (clip) and the like
                args.append(a)
            elif isinstance(a, tvm.ir.expr.Constant):
                b = _block_const(a, out_shape[1], self.lanes)
                if b is None:
                    return None
                args.append(b)
            else:
                b = self._blocked_of(a)
                if b is None or not broadcasts_to(static_shape(a), out_shape):
                    return None
                if static_shape(a) != out_shape:
                    # a fresh transform of the NCHW gate, not its twin: fused into the conv that
                    # makes the twin, the broadcast to H x W would become that conv's epilogue,
                    # unrolled per register tile (EfficientNet's 112x112 gate: minutes of LLVM)
                    b = self._block(a)
                args.append(b)
                any_blocked = True
        if not any_blocked:
            return None
        return self.builder_.emit(relax.Call(call.op, args, call.attrs, call.ty_args))

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:  # noqa: N802
        value = self.visit_expr(binding.value)
        var = binding.var
        twin = pending = None
        if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op):
            name = value.op.name
            if name == "relax.layout_transform":
                kind = _block_transform_kind(value, self.lanes)
                if kind == "unblock":
                    twin = value.args[0]
                elif kind == "block":
                    src = self._blocked_of(value.args[0])
                    if src is not None and isinstance(var, relax.DataflowVar):
                        self.set_var_remap(var, src)
                        return
            elif name in BINARY or name in UNARY:
                pending = self._through_shuffle(value)
                twin = None if pending else self._elementwise(value, static_shape(value))
                if twin is not None:  # the NCHW value, where still needed, is the twin unblocked
                    value = self._unblock(twin)
            elif name == "relax.nn.conv2d" and _is_depthwise(value, self.lanes):
                twin = self._depthwise(value)
                value = self._unblock(twin)
            elif name == "relax.nn.conv2d" and (merge := plain_grouped(value, self.lanes)):
                twin = self._grouped(value, merge)
                value = self._unblock(twin)
            elif name in SPATIAL_REDUCTIONS:
                v = self._reduction(value)
                if v is not None:
                    value, twin = v
            elif name == "relax.image.resize2d":
                twin = self._resize(value)
                if twin is not None:
                    value = self._unblock(twin)
            elif name in POOLS or name in ("relax.concat", "relax.strided_slice"):
                twin = self._pool(value) if name in POOLS else self._concat(value) if name == "relax.concat" \
                    else self._channel_slice(value)
                if twin is not None:
                    value = self._unblock(twin)
            elif name in ("relax.reshape", "relax.permute_dims"):
                shuffle = self._shuffle_step(value)
                if isinstance(shuffle, tuple):
                    pending = shuffle
                elif shuffle is not None:
                    twin, value = shuffle, self._unblock(shuffle)
        new = rebind(self, var, value)
        if twin is not None:
            self.blocked[new] = twin
        if pending is not None:
            self.shuffles[new] = pending

    def _depthwise(self, call: relax.Call):
        lanes = self.lanes
        return self._blocked_grouped_conv(call, output_blocked_weights(call.args[1], lanes),
                                          static_shape(call.args[1])[0], f"OIHW1i{lanes}o")

    def _grouped(self, call: relax.Call, merge: int):
        """A grouped conv (``grouped_conv``) as a blocked conv of its block groups."""
        lanes, groups = self.lanes, int(call.attrs.groups)
        return self._blocked_grouped_conv(call, block_grouped_weights(call.args[1], groups, merge, lanes),
                                          groups // merge, f"OIHW{lanes}i{lanes}o")

    def _blocked_grouped_conv(self, call: relax.Call, weights: relax.Expr, groups: int, kernel_layout: str):
        """``call``'s conv on its input's blocked twin, with ``weights`` in ``kernel_layout``."""
        lanes, attrs = self.lanes, call.attrs
        x = self._blocked_of(call.args[0], create=True)
        self.count += 1
        return self.builder_.emit(relax.op.nn.conv2d(
            x, weights, strides=attrs.strides, padding=attrs.padding, dilation=attrs.dilation, groups=groups,
            data_layout=f"NCHW{lanes}c", kernel_layout=kernel_layout, out_layout=f"NCHW{lanes}c", out_dtype="float32",
        ))

    def _pool(self, call: relax.Call):
        """Max/avg pooling of a value with a blocked twin, in the blocked layout (pooling is per
        channel, so the channel blocking does not change what it computes)."""
        a = call.attrs
        b = self._blocked_of(call.args[0])
        if b is None or a.layout != "NCHW" or a.out_layout != "NCHW":
            return None
        pool = relax.op.nn.max_pool2d if call.op.name == "relax.nn.max_pool2d" else relax.op.nn.avg_pool2d
        blocked = f"NCHW{self.lanes}c"
        return self.builder_.emit(pool(
            b, pool_size=a.pool_size, strides=a.strides, padding=a.padding, dilation=a.dilation,
            ceil_mode=bool(a.ceil_mode), count_include_pad=bool(a.count_include_pad), layout=blocked, out_layout=blocked,
        ))

    def _resize(self, call: relax.Call):
        """An image resize of a value with a blocked twin, in the blocked layout: each channel on
        its own, as pools (a segmentation head's bilinear 2x upsample of 64 channels at 64x64 3.7 ->
        0.24 ms in the model's profile, and its 1.1 ms layout transform gone)."""
        a = call.attrs
        b = self._blocked_of(call.args[0])
        if b is None or a.layout != "NCHW" or call.ty.dtype != "float32":
            return None
        return self.builder_.emit(relax.op.image.resize2d(
            b, call.args[1], roi=[float(v) for v in a.roi], layout=f"NCHW{self.lanes}c", method=a.method,
            coordinate_transformation_mode=a.coordinate_transformation_mode, rounding_method=a.rounding_method,
            cubic_alpha=float(a.cubic_alpha), cubic_exclude=int(a.cubic_exclude),
            extrapolation_value=float(a.extrapolation_value), out_dtype="float32",
        ))

    def _concat(self, call: relax.Call):
        """A channel concat of values whose channel counts divide by the vector width, at least one
        with a blocked twin: the blocks of the parts are the blocks of the whole, so it is a concat
        of the twins along the channel-chunk axis (parts without a twin are blocked first)."""
        parts = call.args[0].fields if isinstance(call.args[0], relax.Tuple) else None
        shapes = [static_shape(p) for p in parts or ()]
        if not parts or any(s is None or len(s) != 4 or s[1] % self.lanes for s in shapes):
            return None
        if call.attrs.axis is None or int(call.attrs.axis) % 4 != 1 or parts[0].ty.dtype != "float32":
            return None
        if all(self._blocked_of(p) is None for p in parts):
            return None
        return self.builder_.emit(relax.op.concat([self._blocked_of(p, create=True) for p in parts], axis=1))

    def _channel_slice(self, call: relax.Call):
        """A slice of whole channel blocks (ShuffleNet's channel split) of a value with a twin."""
        b, xs = self._blocked_of(call.args[0]), static_shape(call.args[0])
        if b is None or xs is None or len(xs) != 4:
            return None
        try:
            axes, begin, end, *strides = ([int(v.value) for v in t.fields] for t in call.args[1:])
        except (AttributeError, TypeError):  # symbolic bounds
            return None
        lanes = self.lanes
        if axes != [1] or strides not in ([], [[1]]):
            return None
        lo, hi = begin[0], min(end[0], xs[1])
        if lo < 0 or lo % lanes or hi % lanes or hi <= lo:
            return None
        return self.builder_.emit(relax.op.strided_slice(b, axes=[1], begin=[lo // lanes], end=[hi // lanes]))

    def _shuffle_step(self, call: relax.Call):
        """ShuffleNet's channel shuffle, reshape [N, C, H, W] -> [N, g, C/g, H, W], swap axes 1
        and 2, reshape back: channel i * C/g + j moves to j * g + i. On the blocked layout (L
        lanes; C/g divisible by L, L by g) channel j = L*jc + (L/g)*jh + jq of group i lands in
        block g*jc + jh, lane g*jq + i: one gather of the blocked twin (``channel_shuffle_nchwc``),
        no layout transform either side. Returns the pending step (its kind, the blocked value,
        the groups, the gather's op pattern), the blocked result at the last step, or None."""
        lanes, arg = self.lanes, call.args[0]
        step = self.shuffles.get(arg) if isinstance(arg, relax.Var) else None
        out = static_shape(call)
        if call.op.name == "relax.permute_dims":
            axes = None if call.attrs.axes is None else [int(a) for a in call.attrs.axes]
            return ("swapped", *step[1:]) if step and step[0] == "split" and axes == [0, 2, 1, 3, 4] else None
        if step and step[0] == "swapped" and out is not None and len(out) == 4:
            _, b, groups, pattern = step
            data = te.placeholder([int(d) for d in b.ty.shape], b.ty.dtype, name="data")
            func = te.create_prim_func([data, channel_shuffle_nchwc(data, groups)], index_dtype_override="int64")
            gv = self.builder_.add_func(func.without_attr("global_symbol").with_attr("op_pattern", pattern),
                                        "channel_shuffle")
            return self.builder_.emit(relax.call_tir(gv, [b], b.ty))
        xs, b = static_shape(arg), self._blocked_of(arg)
        if b is None or xs is None or out is None or len(xs) != 4 or len(out) != 5:
            return None
        g = out[1]
        if out != [xs[0], g, xs[1] // g, xs[2], xs[3]] or xs[1] % g or (xs[1] // g) % lanes or lanes % g:
            return None
        return "split", b, g, OUT_ELEMWISE_FUSABLE if self._scaled_per_channel(b) else INJECTIVE

    def _scaled_per_channel(self, expr) -> bool:
        """Whether ``expr`` is an op with a per-channel constant operand (an int8 QDQ model's
        requantization before its shuffle). Fused into the shuffle's gather, such ops read their
        constants lane by lane (ShuffleNetV2 QDQ: 1.15x onnxruntime's int8, 0.68x apart); the float
        model's concat fuses into it (8% faster than apart)."""
        value = self.lookup_binding(expr) if isinstance(expr, relax.Var) else None
        return isinstance(value, relax.Call) and any(
            isinstance(a, tvm.ir.expr.Constant) and math.prod(static_shape(a)) > 1 for a in value.args)

    def _through_shuffle(self, call: relax.Call):
        """An op by scalars on a value halfway through a channel shuffle (an int8 QDQ model's
        quantize/dequantize pair, in float form, between the reshape and the transpose): the same
        op on the step's blocked value, the shuffle still pending (an op by one number for every
        channel commutes with moving the channels). Returns the pending step, or None."""
        mid = [isinstance(a, relax.Var) and a in self.shuffles for a in call.args]
        others = [a for a, m in zip(call.args, mid) if not m and isinstance(a.ty, relax.TensorType)]
        if sum(mid) != 1 or any(not isinstance(a, tvm.ir.expr.Constant) or math.prod(static_shape(a)) != 1
                                or len(static_shape(a)) > 5 for a in others):
            return None
        step = self.shuffles[call.args[mid.index(True)]]
        args = [step[1] if m else a for a, m in zip(call.args, mid)]
        return (step[0], self.builder_.emit(relax.Call(call.op, args, call.attrs, call.ty_args)), *step[2:])

    def _reduction(self, call: relax.Call):
        """mean or max over H, W of a value with a blocked twin: reduced in the blocked layout, then
        the (small) result unblocked, so that the producer's NCHW copy is not needed. Returns (the
        NCHW value, its blocked twin when the reduction keeps its dims: a squeeze-excite's 1x1 conv
        takes it without a transform either way), or None."""
        xs = static_shape(call.args[0])
        b = self._blocked_of(call.args[0])
        if b is None or xs is None or len(xs) != 4 or call.attrs.axis is None:
            return None
        axes = sorted(int(a) % 4 for a in call.attrs.axis)
        if axes != [2, 3]:
            return None
        m = self.builder_.emit(SPATIAL_REDUCTIONS[call.op.name](b, axis=[2, 3], keepdims=True))
        if bool(call.attrs.keepdims):
            return self._unblock(m), m
        return relax.op.reshape(self.builder_.emit(self._unblock(m)), [xs[0], xs[1]]), None


def blocked_depthwise(mod: tvm.IRModule, lanes: int) -> tvm.IRModule:
    return relax.transform.DeadCodeElimination()(rewrite_functions(_BlockedRegion(mod, lanes), mod))


def depthwise_conv2d_nchwc_compute(data: te.Tensor, kernel: te.Tensor, strides, padding, dilation) -> te.Tensor:
    """out[n, c, oh, ow, b] = sum_{kh, kw} pad(data)[n, c, oh*s+kh*d, ow*s+kw*d, b] * kernel[c, 0, kh, kw, 0, b]
    (data and out NCHW{L}c, kernel [C/L, 1, kh, kw, 1, L]: depthwise, multiplier 1)."""
    n, cc, h, w, cb = (int(d) for d in data.shape)
    kcc, one, kh, kw, one2, kcb = (int(d) for d in kernel.shape)
    assert (kcc, one, one2, kcb) == (cc, 1, 1, cb), "kernel does not match the data's channel blocking"
    padded, (oh, ow), (sh, sw), (dh, dw) = _pad_nchwc(data, kh, kw, strides, padding, dilation)
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")
    return te.compute(
        (n, cc, oh, ow, cb),
        lambda b, c, y, x, k: te.sum(
            padded[b, c, y * sh + ry * dh, x * sw + rx * dw, k] * kernel[c, 0, ry, rx, 0, k], axis=[ry, rx]
        ),
        name=DW_BLOCK,
    )


#: TVM's op patterns (relax.transform.FuseOps): a kernel that fuses with its producers and
#: consumers (kInjective); one that takes its elementwise consumers only, as a conv (kOutEWiseFusable)
INJECTIVE, OUT_ELEMWISE_FUSABLE = 2, 4


def channel_shuffle_nchwc(data: te.Tensor, groups: int) -> te.Tensor:
    """The channel shuffle of ``_BlockedRegion._shuffle_step`` on [N, C/L, H, W, L]: out block
    g*jc + jh, lane g*jq + i <- in block i*C/(gL) + jc, lane (L/g)*jh + jq. One gather with plain
    indices: as reshape/transpose/reshape each index was the 7-D shape's divisions and remainders,
    and the producers fused into it read their operands through them."""
    n, blocks, h, w, lanes = (int(d) for d in data.shape)
    per_group, per_lane = blocks // groups, lanes // groups
    return te.compute(
        (n, blocks, h, w, lanes),
        lambda b, c, y, x, k: data[b, (k % groups) * per_group + c // groups, y, x,
                                   per_lane * (c % groups) + k // groups],
        name="channel_shuffle",
    )


def _crop(out: te.Tensor, ow: int) -> te.Tensor:
    """The first ``ow`` columns of a conv computed wider (a spatial block that the conv schedule
    inlines into its epilogue, or writes the tile through); ``out`` itself when it is ``ow`` wide."""
    if int(out.shape[3]) == ow:
        return out
    return te.compute((*out.shape[:3], ow, *out.shape[4:]), lambda *i: out(*i), name=CROP_BLOCK)


def _pad_nchwc(data: te.Tensor, kh: int, kw: int, strides, padding, dilation):
    n, icc, h, w, icb = (int(d) for d in data.shape)
    sh, sw = (int(s) for s in strides)
    dh, dw = (int(s) for s in dilation)
    pt, pl, pb, pr = (int(p) for p in padding)
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (w + pl + pr - (kw - 1) * dw - 1) // sw + 1
    if pt or pl or pb or pr:
        zero = tvm.tirx.const(0, data.dtype)

        def _pad(b, c, y, x, cb):
            inside = tvm.tirx.all(y >= pt, y < h + pt, x >= pl, x < w + pl)
            return tvm.tirx.if_then_else(inside, data[b, c, y - pt, x - pl, cb], zero)

        padded = te.compute((n, icc, h + pt + pb, w + pl + pr, icb), _pad, name=PAD_BLOCK)
    else:
        padded = data
    return padded, (oh, ow), (sh, sw), (dh, dw)


# --------------------------------------------------------------------------- conv2d legalization


@dataclass(frozen=True)
class Columns:
    """How a blocked conv's output is computed (``conv_columns``): ``width`` columns per row (0: its
    own width), or, ``flat``, all its pixels as one row of ``width`` (each pixel's window read at
    its own row and column). Columns beyond the output's repeat the last one (they read its input,
    so the input needs no wider copy) and are cropped after."""

    width: int = 0
    flat: bool = False


def conv2d_nchwc_compute(data: te.Tensor, kernel: te.Tensor, strides, padding, dilation,
                         columns: Columns = Columns(), split: int = 1, groups: int = 1) -> te.Tensor:
    """out[n, oc, oh, ow, ob] = sum_{icc, kh, kw, icb} pad(data)[n, icc, oh*s+kh*d, ow*s+kw*d, icb]
    * kernel[oc, icc, kh, kw, icb, ob] (data NCHW{ic}c, kernel OIHW{ic}i{oc}o, out NCHW{oc}c),
    computed as ``columns`` says. ``split`` > 1: the output block as ``split`` x oc/``split`` axes
    (``conv2d_nchwc_wide_compute``). ``groups`` > 1: ``grouped_conv``'s block groups, the kernel's
    input chunks those of one group, which each output chunk reads at its own group's."""
    n, icc, h, w, icb = (int(d) for d in data.shape)
    occ, icc2, kh, kw, icb2, ocb = (int(d) for d in kernel.shape)
    assert icc == icc2 * groups and icb == icb2 and occ % groups == 0, \
        "kernel does not match the data's channel blocking"
    rb = te.reduce_axis((0, icb), name="rb")
    per_group = occ // groups

    def term(padded, b, c, cb, rc, ry, rx, at):
        chunk = (c // per_group) * icc2 + rc if groups > 1 else rc
        return padded[b, chunk, *at, rb] * kernel[c, rc, ry, rx, rb, cb], [rb]

    attrs = {GROUP_ATTR: per_group} if groups > 1 else None
    return _blocked_conv(data, (occ, icc2, kh, kw, ocb), strides, padding, dilation, columns, term, attrs, split)


def conv2d_nchwc_dot_compute(data: te.Tensor, kernel: te.Tensor, strides, padding, dilation,
                             columns: Columns, name: str) -> te.Tensor:
    """``conv2d_nchwc_compute`` on the dot instruction called ``name`` (``DOTS``: uint8 x int8 into int32, or
    bfloat16 bits into float32), the kernel in ``dot_kernel_layout`` (OIHW{ic/g}i{oc}o{g}i, g the
    instruction's group): the channel-in-block reduction runs as groups (rg) x the g of a group
    (rk), the loops that the instruction takes with the output-channel block (``schedule_conv``
    reads its name from the block's ``DOT_ATTR``)."""
    dot = DOTS[name]
    n, icc, h, w, icb = (int(d) for d in data.shape)
    occ, icc2, kh, kw, groups, ocb, group = (int(d) for d in kernel.shape)
    assert icc == icc2 and groups * group == icb, "kernel does not match the data's channel blocking"
    rg = te.reduce_axis((0, groups), name="rg")
    rk = te.reduce_axis((0, group), name="rk")

    def term(padded, b, c, cb, rc, ry, rx, at):
        value = dot.widen(padded[b, rc, *at, rg * group + rk])
        return value * dot.widen(kernel[c, rc, ry, rx, rg, cb, rk]), [rg, rk]

    return _blocked_conv(data, (occ, icc, kh, kw, ocb), strides, padding, dilation, columns, term,
                         {DOT_ATTR: dot.name})


def conv2d_nchwc_wide_compute(data: te.Tensor, kernel: te.Tensor, strides, padding, dilation, columns: Columns,
                              blocks: tuple[int, int]) -> te.Tensor:
    """``conv2d_nchwc_compute`` with ``kernel`` in ``wide_kernel_layout``'s wider output blocks,
    its output returned as ``blocks`` (chunks, channels per block): a ``CONV_UNBLOCK`` stage that
    the conv schedule inlines into its epilogue, which writes each of the register tile's wide
    vectors out as narrower blocks (``_direct_conv``)."""
    chunks, block = blocks
    f = int(kernel.shape[5]) // block
    out = conv2d_nchwc_compute(data, kernel, strides, padding, dilation, columns, f)
    n, _, oh, ow = (int(d) for d in out.shape[:4])
    # each output index one variable's: TVM's compute-at cannot place a tile read as (c % f) * block + k
    return te.compute((n, chunks, oh, ow, block), lambda b, c, y, x, k: out[b, c // f, y, x, c % f, k],
                      name=CONV_UNBLOCK)


def wide_kernel_layout(kernel: te.Tensor, wide: int) -> te.Tensor:
    """OIHW{ic}i{oc}o -> OIHW{ic}i{wide}o: ``wide / oc`` adjacent output blocks as one, the last
    one filled up with zero channels where their count does not divide (a constant: folded at
    compile)."""
    occ, icc, kh, kw, icb, ocb = (int(d) for d in kernel.shape)
    f = wide // ocb

    def body(o, i, y, x, ib, ob):
        c = o * f + ob // ocb
        return te.if_then_else(c < occ, kernel[te.min(c, occ - 1), i, y, x, ib, ob % ocb], tirx.const(0, kernel.dtype))

    return te.compute((-(-occ // f), icc, kh, kw, icb, wide), body, name="wide_kernel_layout")


def dot_kernel_layout(kernel: te.Tensor, group: int) -> te.Tensor:
    """OIHW{ic}i{oc}o -> OIHW{ic/group}i{oc}o{group}i: each output channel's ``group`` input
    channels adjacent, the bytes one dot step reads (a constant: folded at compile)."""
    occ, icc, kh, kw, icb, ocb = (int(d) for d in kernel.shape)
    return te.compute((occ, icc, kh, kw, icb // group, ocb, group),
                      lambda o, i, y, x, g, ob, k: kernel[o, i, y, x, g * group + k, ob], name="dot_kernel_layout")


def _blocked_conv(data: te.Tensor, kernel_dims: tuple[int, int, int, int, int], strides, padding, dilation,
                  columns: Columns, term, attrs: dict | None = None, split: int = 1) -> te.Tensor:
    """The frame both blocked convs share: padding, the reduction over channel chunk, kh, kw and
    ``term``'s own channel-in-block axes, the wider (or flat) compute and its crop. ``kernel_dims``:
    (output chunks, input chunks reduced over, kh, kw, output block);
    ``term(padded, b, c, cb, rc, ry, rx, (row, col))`` -> (product, its reduce axes); ``attrs``: the
    conv block's annotations; ``split``: the output block's axes (``conv2d_nchwc_compute``). A flat
    conv's block is annotated ``FLAT_ATTR`` (its output width), and a crop stage puts its pixels
    back in rows."""
    n = int(data.shape[0])
    occ, icc, kh, kw, ocb = kernel_dims
    padded, (oh, ow), (sh, sw), (dh, dw) = _pad_nchwc(data, kh, kw, strides, padding, dilation)
    flat = columns.flat
    pixels = oh * ow if flat else ow
    wide = max(columns.width, pixels)
    col = (lambda x: te.min(x, pixels - 1)) if wide > pixels else (lambda x: x)
    rc = te.reduce_axis((0, icc), name="rc")
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")

    part = ocb // split

    def body(b, c, y, x, *cb):
        at = cb[0] * part + cb[1] if split > 1 else cb[0]
        if flat:  # y is 0, x the pixel
            where = ((col(x) // ow) * sh + ry * dh, (col(x) % ow) * sw + rx * dw)
        else:
            where = (y * sh + ry * dh, col(x) * sw + rx * dw)
        product, inner = term(padded, b, c, at, rc, ry, rx, where)
        return te.sum(product, axis=[rc, ry, rx, *inner])

    block = (split, part) if split > 1 else (ocb,)
    if flat:
        out = te.compute((n, occ, 1, wide, *block), body, name=CONV_BLOCK, attrs={**(attrs or {}), FLAT_ATTR: ow})
        return te.compute((n, occ, oh, ow, *block), lambda b, c, y, x, *k: out[b, c, 0, y * ow + x, *k],
                          name=CROP_BLOCK)
    return _crop(te.compute((n, occ, oh, wide, *block), body, name=CONV_BLOCK, attrs=attrs), ow)


def _default_conv2d_legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    return tvm.ir.Op.get("relax.nn.conv2d").get_attr("FLegalize")(bb, call)


#: accumulator registers of the conv schedules' tiles by vector width, where the caller does not
#: say (``vector_config``'s budgets; 8 is armv7's, the smaller of the two 4-lane ones)
_DEFAULT_MAX_ACC = {16: 16, 8: 12, 4: 8}


def tile_width(out_w: int, oc_chunks: int, max_acc: int) -> int:
    """The output width to compute a blocked conv at: ``out_w``, or a few columns more (cropped
    after; they repeat the last column's input, so nothing is copied wider) where that gives a
    register tile with more FMAs per load. Most CNN widths (56, 28, 14, 7: 7 x 2^k) only split
    into 8-accumulator tiles (4 x 2) or a 1 x 7 one; a column or two more gives 4 x 3 (12).
    Measured (2 threads, AVX2): 3x3 convs 4-45% faster (256->256 at 56x56 36 -> 27 ms, a prime
    109x109 1.7x); 1x1 2048->512 at 7x7 (1 x 7 -> 4 x 3 over 9 columns) about 1.1 -> 0.9 ms; ResNet-50
    1.18 -> 1.10x onnxruntime in one process when the 1x1 convs were widened too."""
    widths = range(out_w, out_w + max(3, out_w // 8) + 1)
    return max(widths, key=lambda w: (_tile_rate(w, out_w, oc_chunks, max_acc), -w))


def _tile_rate(width: int, out_w: int, oc_chunks: int, max_acc: int) -> float:
    """FMAs per load of the register tile of a conv computed ``width`` columns wide, discounted by
    the columns beyond ``out_w`` (``tile_width``)."""
    from neo_local.backends.cpu_schedule.schedules import choose_tile

    tc, tw = choose_tile(width, oc_chunks, max_acc)
    return tc * tw / (tc + tw) * out_w / width


#: how much fuller a conv with a window (3x3, 7x1) must find its flat tiles than its rows' to be
#: computed flat: each flat one took about 0.15 s more of LLVM (DenseNet's forty 3x3 convs at 14x14
#: and 7x7: 6 s of its 40 s build), and at 14x14 they gained 5-8% (rows of 15 columns for 14), at
#: 7x7 18-20% (9 for 7)
FLAT_WINDOW_GAIN = 1.1


def conv_columns(call: relax.Call, out: list[int], oc_chunks: int, max_acc: int, flatten: bool = True) -> Columns:
    """``Columns`` to compute a blocked conv at: ``tile_width``'s columns of each row, or all its
    pixels as one row (flat) where that gives a fuller register tile and the task's output still
    fits ``keeps_task_output``'s budget (14x14: 196 pixels in 4 x 4 tiles, where 14 columns take 15
    or 16; 7x7: 52 for 8). Measured (znver5, 2 threads, one process), 1x1 convs: ResNet-50 2.8% and
    SqueezeNet 1.1 2.7% faster; its 1x1 512->2048 conv at 7x7 396 -> 437 GFLOP/s, 1024->256 at
    14x14 298 -> 337. Convs with a window too, where their tiles gain ``FLAT_WINDOW_GAIN`` (znver3,
    each kernel alone, flat against rows in one process): 3x3 512->512 at 7x7 1.56 -> 1.28 ms (its
    rows took 9 columns), strided to 7x7 1.78 -> 1.47 ms, 128->32 at 7x7 27 -> 22 us; ResNet-50
    3.5% faster. Not for 8-lane blocks computed on 16-lane vectors (``flatten`` False):
    ShuffleNetV2 ran 13% slower flat. ``max_acc`` 0: the output's width."""
    from neo_local.backends.cpu_schedule.schedules import choose_tile, keeps_task_output

    if not max_acc:
        return Columns()
    rows = tile_width(out[3], oc_chunks, max_acc)
    if not flatten or out[2] == 1:
        return Columns(rows)
    pixels = out[2] * out[3]
    flat = tile_width(pixels, oc_chunks, max_acc)
    kernel = static_shape(call.args[1])
    gain = FLAT_WINDOW_GAIN if kernel[2] * kernel[3] > 1 else 1.0
    if _tile_rate(flat, pixels, oc_chunks, max_acc) <= gain * _tile_rate(rows, out[3], oc_chunks, max_acc) \
            or not keeps_task_output(choose_tile(flat, oc_chunks, max_acc)[0], 1, flat, out[4]):
        return Columns(rows)
    return Columns(flat, True)


@dataclass(frozen=True)
class Dots:
    """The dot instructions a model's convs take: ``int8`` for ``quantized``'s uint8 x int8 convs
    (``int8_dot.for_target``), ``bf16`` for every blocked float conv of a bfloat16 build
    (``bf16_dot.for_target``); None where the target has none or the build did not ask."""

    int8: int8_dot.DotInstruction | None = None
    bf16: int8_dot.DotInstruction | None = None


def conv2d_legalizer(lanes: int, max_acc: int | None = None, dots: Dots = Dots(), vector_lanes: int = 0
                     ) -> Callable[[relax.BlockBuilder, relax.Call], relax.Expr]:
    """``legalize_conv2d`` for tiles of at most ``max_acc`` accumulators (dot convs: their
    instruction's) of ``vector_lanes``-wide vectors (0: ``lanes``)."""
    budget = max_acc or _DEFAULT_MAX_ACC.get(lanes, 8)
    return lambda bb, call: legalize_conv2d(bb, call, budget, dots, vector_lanes)


def legalize_conv2d(bb: relax.BlockBuilder, call: relax.Call, max_acc: int = 0, dots: Dots = Dots(),
                    vector_lanes: int = 0) -> relax.Expr:
    """Blocked conv2d / depthwise conv2d -> our TE computes (a conv computed wider and cropped
    where ``tile_width`` says so, when ``max_acc`` is given; uint8 x int8 -> int32 convs on the
    int8 dot instruction, float convs on the bfloat16 one where ``dots`` has them, else the 3x3
    ones ``winograd.tile_size`` takes as Winograd's); anything else -> TVM's legalization."""
    attrs = call.attrs
    d = _BLOCKED_DATA.match(attrs.data_layout)
    k = _BLOCKED_KERNEL.match(attrs.kernel_layout)
    o = _BLOCKED_DATA.match(attrs.out_layout)
    dtype = call.ty.dtype if isinstance(call.ty, relax.TensorType) else None
    float_conv = (
        d and k and o and dtype == "float32" and call.args[0].ty.dtype == "float32"
        and call.args[1].ty.dtype == "float32"
        and static_shape(call.args[0]) is not None and static_shape(call.args[1]) is not None
    )
    if float_conv and int(attrs.groups) == 1 and d.group(1) == k.group(1) and k.group(2) == o.group(1):
        bf16 = dots.bf16
        if bf16 is not None and int(d.group(1)) % bf16.group == 0 and int(k.group(2)) == bf16.lanes:
            data = bb.emit_te(bf16_dot.to_bits, call.args[0], primfunc_name_hint="to_bf16")
            kernel = bb.emit_te(dot_kernel_layout, call.args[1], bf16.group, primfunc_name_hint="dot_kernel_layout")
            return _dot_conv(bb, call, data, bb.emit_te(bf16_dot.to_bits, kernel, primfunc_name_hint="to_bf16"), bf16)
        out = static_shape(call)
        m = _winograd_tile(call, out) if max_acc else 0
        if m:
            return _winograd_conv(bb, call, m, out, max_acc)
        return _direct_conv(bb, call, out, max_acc, vector_lanes)
    int8 = dots.int8
    if int8 is not None and d and k and o and int(attrs.groups) == 1 and _is_int8_conv(call, d.group(1), k.group(2), int8):
        kernel = bb.emit_te(dot_kernel_layout, call.args[1], int8.group, primfunc_name_hint="dot_kernel_layout")
        return _dot_conv(bb, call, call.args[0], kernel, int8)
    if not float_conv:
        return _default_conv2d_legalize(bb, call)
    c_total, groups = static_shape(call.args[0]), int(attrs.groups)
    if (
        k.group(1) == "1" and d.group(1) == k.group(2) == o.group(1)
        and len(c_total) == 5 and groups == c_total[1] * c_total[4] and static_shape(call.args[1])[0] == c_total[1]
    ):
        return bb.call_te(
            depthwise_conv2d_nchwc_compute, call.args[0], call.args[1],
            list(attrs.strides), list(attrs.padding), list(attrs.dilation),
            primfunc_name_hint="depthwise_conv2d_nchwc",
        )
    if groups > 1 and d.group(1) == k.group(1) == k.group(2) == o.group(1):  # ``grouped_conv``'s block groups
        return _direct_conv(bb, call, static_shape(call), max_acc, 0, groups)
    return _default_conv2d_legalize(bb, call)


def block_lanes(mod: tvm.IRModule, lanes: int) -> int:
    """The channel block for ``mod``: ``lanes``, or half of it where the model shuffles channels
    in groups that only the half divides (ShuffleNetV2 x0.5's 24 per group at 16 lanes). Channel
    padding gives every conv the full width, but such a shuffle cannot stay blocked
    (``_shuffle_step``): each unit would go back to NCHW and forth. Measured on AVX-512 (znver5),
    in one process: ShuffleNetV2 x0.5 in padded 16-lane blocks 1.24 ms, in 8-lane blocks 0.97."""
    half = lanes // 2
    if half < 4:
        return lanes
    transpose, groups = tvm.ir.Op.get("relax.permute_dims"), []
    for call in relax_calls(mod):  # the shuffle's [N, g, C/g, H, W] -> [N, C/g, g, H, W]
        if call.op == transpose and call.attrs.axes is not None:
            shape = static_shape(call.args[0])
            if [int(a) for a in call.attrs.axes] == [0, 2, 1, 3, 4] and shape is not None:
                groups.append((shape[1], shape[2]))
    return half if any(size % lanes and size % half == 0 and half % g == 0 for g, size in groups) else lanes


def _winograd_tile(call: relax.Call, out: list[int]) -> int:
    """``winograd.tile_size`` of a blocked float conv of batch 1 (0: the direct conv)."""
    data, kernel = static_shape(call.args[0]), static_shape(call.args[1])
    if data[0] != 1:
        return 0
    attrs = call.attrs
    return winograd.tile_size((data[1] * data[4], out[1] * out[4]), (kernel[2], kernel[3]), attrs.strides,
                              attrs.padding, attrs.dilation, (out[2], out[3]))


def _winograd_conv(bb: relax.BlockBuilder, call: relax.Call, m: int, out: list[int], max_acc: int) -> relax.Expr:
    """``call`` as Winograd's F(m, 3) (``winograd``): the input transform, the weights' (a constant),
    the products as a blocked conv over ``tile_width``'s number of tiles, the output transform."""
    th, tw = winograd.tile_grid(out[2], out[3], m)
    tiles = tile_width(th * tw, out[1], max_acc)
    f_mr = (m, static_shape(call.args[1])[2])  # F(m, r)
    pad = tuple(int(p) for p in call.attrs.padding[:2])
    v = bb.emit_te(winograd.input_transform, call.args[0], f_mr, tiles, (out[2], out[3]), pad,
                   primfunc_name_hint="winograd_input")
    u = bb.emit_te(winograd.weight_transform, call.args[1], f_mr, primfunc_name_hint="winograd_weight")
    products = bb.emit_te(winograd.products, v, u, CONV_BLOCK, primfunc_name_hint="winograd_products")
    return bb.call_te(winograd.output_transform, products, f_mr, (out[2], out[3]), primfunc_name_hint="winograd_output")


def _direct_conv(bb: relax.BlockBuilder, call: relax.Call, out: list[int], max_acc: int, vector_lanes: int,
                 groups: int = 1) -> relax.Expr:
    """``conv2d_nchwc_compute`` of a blocked float conv; computed in ``vector_lanes``-wide output
    blocks (``conv2d_nchwc_wide_compute``) where its own are narrower and filling the last wide
    block up with zero channels adds at most a third (8-lane blocks on AVX-512: twice the FMA
    width for 24 channels computed as 32, not for 8 as 16). Measured (znver5, 2 threads, one
    process): ShuffleNetV2 x0.5 in 8-lane blocks 0.553 -> 0.446 ms (onnxruntime 0.496); its 1x1
    192 -> 1024 conv at 7x7 222 -> 381 GFLOP/s, the 24-channel ones 167 -> 183 at 28x28."""
    attrs = call.attrs
    geometry = (list(attrs.strides), list(attrs.padding), list(attrs.dilation))
    f = vector_lanes // out[4] if vector_lanes > out[4] else 1
    wide_chunks = -(-out[1] // f)
    if f > 1 and 3 * wide_chunks * f <= 4 * out[1]:
        kernel = bb.emit_te(wide_kernel_layout, call.args[1], vector_lanes, primfunc_name_hint="wide_kernel_layout")
        columns = conv_columns(call, out, wide_chunks, max_acc, False)
        compute = functools.partial(conv2d_nchwc_wide_compute, columns=columns)
        return bb.call_te(compute, call.args[0], kernel, *geometry, blocks=(out[1], out[4]),
                          primfunc_name_hint="conv2d_nchwc")
    # the register tile's output chunks: one group's (the chunks of a group share their input)
    columns = conv_columns(call, out, out[1] // groups, max_acc)
    compute = functools.partial(conv2d_nchwc_compute, columns=columns, groups=groups)
    return bb.call_te(compute, call.args[0], call.args[1], *geometry, primfunc_name_hint="conv2d_nchwc")


def _dot_conv(bb: relax.BlockBuilder, call: relax.Call, data: relax.Expr, kernel: relax.Expr,
              dot: int8_dot.DotInstruction) -> relax.Expr:
    """``conv2d_nchwc_dot_compute`` of ``call`` on ``data`` and ``kernel`` (in ``dot``'s types and layout)."""
    attrs, out = call.attrs, static_shape(call)
    compute = functools.partial(conv2d_nchwc_dot_compute, columns=conv_columns(call, out, out[1], dot.max_acc))
    return bb.call_te(compute, data, kernel, list(attrs.strides), list(attrs.padding), list(attrs.dilation),
                      name=dot.name, primfunc_name_hint="conv2d_nchwc_dot")


def _is_int8_conv(call: relax.Call, in_block: str, out_block: str, dot: int8_dot.DotInstruction) -> bool:
    """A blocked uint8 x int8 -> int32 conv (``quantized``'s integer kernels) in ``dot``'s blocks."""
    args = call.args
    return (isinstance(call.ty, relax.TensorType) and call.ty.dtype == "int32"
            and args[0].ty.dtype == "uint8" and args[1].ty.dtype == "int8"
            and int(in_block) % int8_dot.GROUP == 0 and int(out_block) == dot.lanes
            and static_shape(args[0]) is not None and static_shape(args[1]) is not None)


# --------------------------------------------------------------------------- the whole Relax part


def relax_passes(mod: tvm.IRModule, lanes: int, max_acc: int | None = None, dots: Dots = Dots(),
                 vector_lanes: int = 0) -> tvm.IRModule:
    """Run the Relax-level rewrites and legalization; returns a module of fused call_tir kernels.
    ``max_acc``: the schedules' accumulator budget (``vector_config``), for ``tile_width``;
    ``dots``: the dot instructions the convs take (``Dots``); ``vector_lanes``: the target's
    vector width where it is wider than the channel blocks ``lanes`` (``_direct_conv``)."""
    seq = tvm.transform.Sequential
    mod = seq([
        relax.transform.DecomposeOpsForInference(),
        # a batch norm not folded into a conv (DenseNet's BN-ReLU-conv) leaves (y, mean, var)[0]
        relax.transform.CanonicalizeBindings(),
        fold_constants,
    ])(recurrence_kernels(mod, lanes))
    mod = drop_empty_concat_parts(stack_as_concat(conv_transpose_as_conv(conv1d_as_conv2d(mod))))
    mod = match_constant_ranks(rewrite_clip(mod))
    mod = seq([
        # channels-last models (TFLite) first become NCHW, so the blocked rewrites below apply
        relax.transform.ConvertLayout({"relax.nn.conv2d": ["NCHW", "OIHW"]}),
        relax.transform.Normalize(),
        fold_constants,  # the transposed weights and biases become constants again
    ])(mod)
    mod = seq([
        relax.transform.ConvertLayout({"relax.nn.conv2d": [f"NCHW{lanes}c", f"OIHW{lanes}i{lanes}o"]}),
        relax.transform.Normalize(),
    ])(pad_channels(mod, lanes))
    mod = dense_as_conv(blocked_stem(mod, lanes), lanes)
    mod = matmul_shapes(mod, lanes)
    mod = layout_reshapes(fast_math.silu_calls(blocked_depthwise(relax.transform.Normalize()(mod), lanes)))
    mod = seq([
        relax.transform.Normalize(),
        relax.transform.EliminateCommonSubexpr(),
        relax.transform.LegalizeOps(customize_legalize_map={
            "relax.nn.conv2d": conv2d_legalizer(lanes, max_acc, dots, vector_lanes), **fast_math.LEGALIZERS,
            "relax.nn.softmax": softmax.legalizer(lanes), "relax.nn.layer_norm": layer_norm.legalizer(lanes),
            **{op: row_reductions.legalizer(op, lanes) for op in row_reductions.REDUCTIONS},
            "relax.image.resize2d": resize.legalizer(),
            "relax.matmul": dot_matmul.legalizer(lanes, dots.bf16, max_acc or _DEFAULT_MAX_ACC[lanes])}),
        fold_constants,
        relax.transform.DeadCodeElimination(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
        relax.transform.DeadCodeElimination(),
    ])(mod)
    return mod
