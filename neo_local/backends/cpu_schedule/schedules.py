"""TIR schedules for the fused kernels the Relax passes produce (``tvm.s_tir.Schedule``).

- ``schedule_conv``: a PrimFunc holding one ``conv2d_nchwc`` block (+ optional ``data_pad`` before
  it and elementwise epilogue blocks after it). Register tile = ``tile_w`` output columns x
  ``tile_c`` output-channel blocks of ``lanes`` floats (at most ``max_acc`` vector accumulators),
  held in a local buffer; the reduction loops (channel chunk, kh, kw, channel-in-block) run
  inside the tile; the channel block is vectorized, the tile unrolled, the (batch, oc-chunk,
  output row) loops fused and parallelized; the epilogue (bias, residual, relu/clip) is computed
  for the tile right after its reduction; padding is a separate parallel, vectorized stage.
  Where a task's weights outgrow the cache (``default_k_block``), the input-channel chunks run in
  blocks outside the tiles instead (K-blocking: ``_k_blocked``), accumulating in the task's
  output or, when that is too large, in each row.
- ``schedule_depthwise``: a PrimFunc holding one ``depthwise_conv2d_nchwc`` block (+ padding and
  epilogue as above). Register tile = ``tile_w`` output columns of one channel block (each
  accumulator is independent: one input vector and one weight vector per FMA, the weight vector
  reused across the tile); kh, kw unrolled inside the tile; (batch, channel chunk, output row)
  fused and parallelized; the epilogue computed for the tile; no padded copy of the input: each
  read checks the border (``DW_PADDINGS``).
- ``schedule_generic``: any other PrimFunc (elementwise, layout transforms, pooling, mean,
  matmul): each root block gets its spatial loops fused + parallelized and the innermost
  spatial loop vectorized (when it is the block's last loop), a reduction's channel block
  (pools, means of a blocked layout) moved inside its window and vectorized; first, elementwise
  producers are inlined into their consumers. Matmul/GEMV and other reductions (unblocked means,
  a layer norm, softmax, sum, mean or max not over the last axis) first go through ``dlight.cpu``
  (GEMV, Reduction); those over the last axis have their own (``softmax.schedule_softmax``,
  ``layer_norm.schedule_layer_norm``, ``row_reductions.schedule_rows``), and so do Winograd's
  transforms (``winograd.schedule_transform``); a two-pass resize (``resize``)
  keeps its first pass a buffer of its own and runs its rows in vectors (``_schedule_resize``).

Every function that raises while being scheduled is left as it was (TVM builds it unscheduled:
slow but correct), never half-scheduled.

The conv, depthwise and matmul schedules take an explicit frozen config (``ConvConfig``,
``DwConfig``, ``MatmulConfig``: the knobs the tuner in ``tuning`` searches); None means the
heuristic default, which is the config the ``*_space`` functions list first.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass
from typing import Callable

import tvm
from tvm import s_tir, tirx
from tvm.s_tir.schedule import LoopRV

from neo_local.backends.cpu_schedule import (fast_math, int8_dot, layer_norm, resize, row_reductions, small_kernels,
                                              softmax, weight_prefetch, winograd)
from neo_local.backends.cpu_schedule.channel_padding import splits_small
from neo_local.backends.cpu_schedule.dot_matmul import MATMUL_BLOCK
from neo_local.backends.cpu_schedule.int8_dot import ACCUMULATOR_SCOPE, DOT_ATTR
from neo_local.backends.cpu_schedule.recurrence import KERNEL_ATTR
from neo_local.backends.cpu_schedule.passes import CONV_BLOCK, DOTS, DW_BLOCK, FLAT_ATTR, GROUP_ATTR, PAD_BLOCK

log = logging.getLogger(__name__)

#: how the outer loops run on the thread pool: "fused" = every outer loop (batch, channel chunk,
#: row) fused into one parallel loop; "rows" = batch x rows parallel, the channel chunks inside
#: each task; "none" = one thread (tiny kernels lose more to the pool's launch than they gain)
PARALLEL_MODES = ("fused", "rows", "none")


@dataclass(frozen=True)
class ConvConfig:
    """Knobs of ``schedule_conv``: the register tile (``tile_c`` channel blocks x ``tile_w``
    columns), the reduction order ("ck": channel chunk outside the kernel window, "kc": inside),
    whether kh/kw are unrolled, the parallel mode and whether padding is computed per parallel
    task (only the rows it reads) instead of as a separate stage. ``k_block`` > 0: the input
    channel chunks run in blocks of that many outside the tiles (``_k_blocked``; the order,
    row-parallel and padding knobs do not apply then)."""

    tile_c: int
    tile_w: int
    reduce_order: str = "ck"
    unroll_kernel: bool = False
    parallel: str = "fused"
    pad_per_row: bool = False
    k_block: int = 0


@dataclass(frozen=True)
class DwConfig:
    """Knobs of ``schedule_depthwise``: columns per register tile, kh/kw unrolled, parallel
    mode ("rows" is "fused" here: the channel chunk is an outer loop either way), how the input
    is padded (``DW_PADDINGS``), rows per register tile."""

    tile_w: int
    unroll_kernel: bool = True
    parallel: str = "fused"
    padding: str = "inline"
    tile_h: int = 1


#: how a depthwise conv pads its input: "inline" = no padded copy, each read checks the border
#: (measured against "row", Zen 5, 2 threads, one process: MobileNetV3-Small 5% faster,
#: EfficientNet-B0 6%, MobileNetV2-style 8%); "row" = the rows each parallel task reads, padded
#: into a buffer by that task; "stage" = a padded copy of the whole input first, in a parallel
#: stage of its own
DW_PADDINGS = ("inline", "row", "stage")


@dataclass(frozen=True)
class MatmulConfig:
    """Knobs of ``schedule_matmul``: rows x column vectors per register tile, the K loop split
    by ``k_unroll`` with the inner part unrolled (1: not split), parallel mode."""

    tile_m: int
    tile_n: int
    k_unroll: int = 1
    parallel: str = "fused"


def _extents(sch: s_tir.Schedule, loops) -> list[int]:
    return [int(sch.get(l).extent) for l in loops]


def _divisors(n: int, most: int | None = None) -> list[int]:
    """The divisors of ``n`` up to ``most`` (all of them by default): tile searches ask only for
    the small ones, and a flat conv's widths run to 12544 (112x112 pixels), each searched over a
    range of widths (``passes.tile_width``: ResNet-50 spent 3 s of its compile listing them)."""
    return [d for d in range(1, min(n, n if most is None else most) + 1) if n % d == 0]


def choose_tile(out_w: int, oc_chunks: int, max_acc: int) -> tuple[int, int]:
    """(tile_c, tile_w) dividing (oc_chunks, out_w) with tile_c * tile_w <= max_acc accumulators
    that fit the registers with their broadcasts (``fits_registers``), maximising FMAs per load
    (tile_c weight vectors + tile_w broadcasts per step of the reduction), then the number of
    accumulators, then the channel blocks (4 x 3 before 3 x 4)."""
    best, best_key = (1, 1), (-1.0, 0, 0)
    cap = max_tile_c(oc_chunks, max_acc)
    for tc in _divisors(oc_chunks, min(cap, max_acc)):
        for tw in _divisors(out_w, max_acc // tc):
            if not fits_registers(tc, tw, max_acc):
                continue
            acc = tc * tw
            key = (acc / (tc + tw), acc, tc)
            if key > best_key:
                best, best_key = (tc, tw), key
    return best


def fits_registers(tile_c: int, tile_w: int, max_acc: int) -> bool:
    """Whether a tile's accumulators and its ``tile_w`` input broadcasts fit the vector registers
    with one to spare. x86 FMAs read the weight vector from memory, but a broadcast needs a register
    (AVX2 has no embedded broadcast): with 12 accumulators of 16 ymm registers, 4 x 3 fits (15),
    3 x 4 (16) and 2 x 6 (18) do not. Measured (2 threads, znver3): Inception's 80->192 3x3 conv at
    52x52 3 x 4 -> 4 x 3 7.4 -> 5.4 ms, 288->384 at 12x12 2.75 -> 2.19 ms; DenseNet's 352->176 1x1 at
    28x28 2 x 6 -> 2 x 5 1.0 -> 0.68 ms. The register files: ``_VECTOR_REGISTERS``."""
    return tile_c * tile_w + tile_w < _VECTOR_REGISTERS.get(max_acc, max_acc + 4)


#: vector registers of the ISA whose accumulator budget (``vector_config``) is the key: armv7
#: NEON 16 q (8 accumulators), AVX2 16 ymm (12), AVX-512 32 zmm (16), aarch64 32 v (20); other
#: budgets (tests' small ones) count 4 registers beyond the accumulators, as AVX2 does
_VECTOR_REGISTERS = {8: 16, 12: 16, 16: 32, 20: 32}

#: vector registers a flat conv's epilogue leaves to the weights, broadcasts, its constants (clip
#: bounds, a divisor) and temporaries when it holds the whole tile (``_whole_tile_fits``)
EPILOGUE_SPARE_REGISTERS = 8


def max_tile_c(oc_chunks: int, max_acc: int) -> int:
    """The most output-channel blocks per register tile: 4, or where the chunks have no divisor 2-4
    (40 channels: 5 chunks; 1000 classes: 125) their smallest divisor that leaves 2 columns, so the
    tile is not one block wide. Measured (2 threads, AVX2): 5 x 2 against 1 x 7, EfficientNet's
    144->40 1x1 conv at 28x28 87 -> 59 us, SqueezeNet's 512->1000 at 13x13 2.1 -> 1.7 ms; dense
    classifiers (one pixel, 5 x 1) the same from memory, 2x faster from cache."""
    if splits_small(oc_chunks):
        return 4
    return min((d for d in _divisors(oc_chunks, max_acc // 2) if d > 1), default=4)


#: parallel tasks enough to leave a block's last outer loop serial (``_vectorize_inner``)
SERIAL_ROW_TASKS = 16


def _vectorize_inner(sch: s_tir.Schedule, block, max_vec: int = 64, parallel: bool = True) -> None:
    """Fuse + parallelize the outer spatial loops of a spatial block, vectorize the last one. The
    last outer loop (a blocked tensor's columns) stays serial where the loops above it give
    ``SERIAL_ROW_TASKS`` tasks: with every loop in one parallel loop of one vector per step, LLVM
    vectorized that loop again across steps, gathering the per-channel operands through the
    index divisions (a QDQ requantization of a 28x28x48 blocked tensor: 17 -> 2.2 us)."""
    loops = sch.get_loops(block)
    if not loops:
        return
    loops = _widen_narrow_inner(sch, block, loops)
    ext = _extents(sch, loops)
    inner = loops[-1] if ext[-1] <= max_vec else None
    outer = loops[:-1] if inner is not None else loops
    if len(outer) > 1 and math.prod(ext[:len(outer) - 1]) >= SERIAL_ROW_TASKS:
        outer = outer[:-1]
    if outer and parallel:
        fused = sch.fuse(*outer) if len(outer) > 1 else outer[0]
        sch.parallel(fused)
    if inner is not None and ext[-1] > 1:
        sch.vectorize(inner)


def _contiguous_writes(sch: s_tir.Schedule, block) -> None:
    """Where the loop a spatial block's write follows in its last index is not the innermost,
    move it innermost, so that the vectors are stored whole and the reads gather instead. Why: a
    layout transform out of blocks (NCHW16c -> NCHW: before a GroupNorm's reshape, at an image-to-
    image model's output) iterates its blocked input, and stored each vector of 16 channels to 16
    rows a plane apart: (1, 8, 64, 64, 16) -> (1, 128, 64, 64) took 758 us (znver4, 2 threads),
    50.6 so, gathering from a 4 KB tile in cache. The way back in (NCHW -> NCHW16c: the last
    index is c % 16) reads rows whole: the 16 channels of a block go just above the columns, so a
    block's tile is written in cache by its 16 rows in turn (173 -> 90 us; iterating the output,
    a gather from 16 planes, was 167). Only a block with one loop per iteration variable, in their
    order (as TE writes it), and a last index that is one of them or one modulo a width that
    divides its extent."""
    stmt = sch.get(block)
    loops = sch.get_loops(block)
    store = stmt.body
    if not isinstance(store, tirx.BufferStore) or len(loops) != len(stmt.iter_vars) or len(loops) < 2:
        return
    last = store.indices[-1]
    lanes = None  # a channel block's width: the last index is c % lanes
    if isinstance(last, tirx.FloorMod) and isinstance(last.b, tirx.IntImm):
        last, lanes = last.a, int(last.b)
    found = [i for i, iv in enumerate(stmt.iter_vars) if last.same_as(iv.var)]
    if not found or found[0] == len(loops) - 1:  # innermost already (NHWC -> NCHW16c: c % 16 whole)
        return
    loop = loops[found[0]]
    if lanes is not None:
        if int(sch.get(loop).extent) % lanes:
            return
        loop = sch.split(loop, [None, lanes])[1]
    inner = sch.get(loop)
    rest = [l for l in sch.get_loops(block) if not sch.get(l).same_as(inner)]
    if lanes is not None:
        sch.reorder(*rest[:-1], loop, rest[-1])
    else:
        sch.reorder(*rest, loop)


#: the vector width a narrow innermost loop is widened to (``_widen_narrow_inner``)
NARROW_WIDTH = 16


def _widen_narrow_inner(sch: s_tir.Schedule, block, loops: list) -> list:
    """``loops`` with a last loop of an odd few lanes (an NHWC image's 3 channels) fused with the
    one above it and split into vectors of ``NARROW_WIDTH``, where those divide the two and every
    buffer the block reads or writes ends in those two loops' extents, so that the vectors are
    contiguous: a vector of 3 is scalar code. A TFLite CNN's input dequantize (32 x 32 x 3) took
    0.74 us on one thread, 0.26 us so. A transpose to NCHW3c (224 x 224 x 3 read from NCHW)
    would gather: 13.5 -> 76 us when it was widened."""
    ext = _extents(sch, loops)
    if len(loops) < 2 or ext[-1] % 4 == 0 or ext[-1] >= NARROW_WIDTH or (ext[-2] * ext[-1]) % NARROW_WIDTH:
        return loops
    stmt = sch.get(block)
    for region in (*stmt.reads, *stmt.writes):
        shape = region.source.shape
        if not all(isinstance(d, tirx.IntImm) for d in shape):  # a symbolic extent: not known to match
            return loops
        shape = [int(d) for d in shape]
        if math.prod(shape) > 1 and shape[-2:] != ext[-2:]:
            return loops
    return [*loops[:-2], *sch.split(sch.fuse(*loops[-2:]), [None, NARROW_WIDTH])]


def _is_spatial(sch: s_tir.Schedule, block) -> bool:
    return all(iv.iter_type == tirx.IterVar.DataPar for iv in sch.get(block).iter_vars)


def schedule_conv(func: tirx.PrimFunc, lanes: int, max_acc: int,
                  config: ConvConfig | None = None) -> tirx.PrimFunc | None:
    sch = s_tir.Schedule(func)
    # everything but the conv, its padding and the last block must be inlinable elementwise work
    prepared = _prepare(sch, CONV_BLOCK)
    if prepared is None:
        return None
    conv, pad = prepared.main, prepared.pad

    loops = sch.get_loops(conv)
    # a dot conv has one loop more: the input channels of one dot step (rb: their groups)
    (n, oc, oh, ow, ob, rc, ry, rx, rb), dot = loops[:9], loops[9:]
    shape = conv_shape(sch, conv)
    cfg = config or default_conv_config(shape.ext, shape.weight_bytes, shape.max_acc(max_acc), shape.group_chunks,
                                        shape.flat)
    oc_o, oc_i = sch.split(oc, [None, cfg.tile_c])
    ow_o, ow_i = sch.split(ow, [None, cfg.tile_w])
    if cfg.k_block:
        outer, first = _k_blocked(sch, cfg, (n, oc_o, oh, ow_o, ob, rc, ry, rx, rb, oc_i, ow_i), dot)
        epilogue_at, pad_at = outer, None
    else:
        reduction = (rc, ry, rx) if cfg.reduce_order == "ck" else (ry, rx, rc)
        spatial = (n, oc_o, oh) if cfg.parallel != "rows" else (n, oh, oc_o)
        sch.reorder(*spatial, ow_o, *reduction, rb, oc_i, ow_i, ob, *dot)
        if shape.flat:  # one row of all pixels: its tiles are the tasks
            outer = _parallel_outer(sch, (*spatial, ow_o), cfg.parallel)
            first, epilogue_at, pad_at = reduction[0], outer, None
        else:
            outer = _parallel_outer(sch, spatial if cfg.parallel != "rows" else spatial[:2], cfg.parallel)
            first, epilogue_at, pad_at = reduction[0], ow_o, outer if cfg.pad_per_row else None

    flat = shape.flat and not cfg.k_block
    registers = _VECTOR_REGISTERS.get(max_acc, max_acc + 4) - EPILOGUE_SPARE_REGISTERS if flat else 0
    _tile_epilogue(sch, conv, prepared.epilogue, epilogue_at, not prepared.polynomial, registers)

    if not dot:
        sch.vectorize(ob)
    sch.unroll(ow_i)
    sch.unroll(oc_i)
    _unroll_channels(sch, rb, bool(dot))
    if cfg.unroll_kernel:
        sch.unroll(rx)
        sch.unroll(ry)
    marked = flat and not dot and cfg.parallel == "fused" and _mark_prefetch(sch, conv, first, shape, cfg)
    init = sch.decompose_reduction(conv, first)
    if dot:
        sch.vectorize(sch.get_loops(init)[-1])
        sch.tensorize(ob, shape.instruction.registered())

    if pad is not None:
        _schedule_pad(sch, pad, pad_at, cfg.parallel != "none")
    func = _linking(sch.mod["main"], shape.instruction)
    return func.with_attr(weight_prefetch.ATTR, True) if marked else func


def _mark_prefetch(sch: s_tir.Schedule, conv, first, shape: ConvShape, cfg: ConvConfig) -> bool:
    """Mark the reduction's outer loop ``first`` of a flat float conv (one register tile per
    parallel task, the reduction run once in it) whose weights outgrow the caches
    (``weight_prefetch``). Its tasks run batch, output-channel groups of ``cfg.tile_c`` chunks and
    tiles of pixels, in that order: a group's tasks are its tiles, and its weights are contiguous.
    A conv computed by rows runs its reduction once per tile of a row, and would prefetch the same
    lines each time: not marked. Returns whether it marked the loop."""
    _, occ, rows, columns, *per_chunk = shape.ext
    chunk = math.prod(per_chunk)  # the floats of one output chunk's weights
    weight = next((r.source for r in sch.get(conv).reads if len(r.source.shape) == 6), None)
    if (weight is None or int(weight.shape[0]) != occ or math.prod(int(d) for d in weight.shape) != occ * chunk
            or occ % cfg.tile_c or 4 * occ * chunk < weight_prefetch.MIN_WEIGHT_BYTES):
        return False
    per_group = rows * math.ceil(columns / cfg.tile_w)
    sch.annotate(first, weight_prefetch.ATTR, [weight.name, cfg.tile_c * chunk, per_group, occ // cfg.tile_c])
    return True


#: input channels of a block unrolled per step of a float conv's reduction (the rest loop). All
#: of them (16 on AVX-512) let LLVM's scheduling for Zen 4/5 load the broadcasts of the whole
#: block ahead of their FMAs: a 2 x 8 tile's 128 broadcasts then spilled (the 1x1 convs to 32
#: channels of MobileNetV2-style, EfficientNet and DenseNet). Measured (Zen 5, 2 threads), each
#: kernel alone: EfficientNet's 96->32 at 56x56 0.060 -> 0.038 ms, 144->32 0.087 -> 0.057 ms; in
#: one process: DenseNet-121 layout 6.23 -> 5.70 ms, MobileNetV2-style 7%, Inception 5%,
#: EfficientNet-B0 4%, SqueezeNet 4% faster, ResNet-50, MobileNetV3-Small and ShuffleNetV2 the same
CHANNELS_UNROLLED = 4


def _unroll_channels(sch: s_tir.Schedule, rb, dot: bool) -> None:
    """Unroll a conv's channels-in-block loop ``rb`` by ``CHANNELS_UNROLLED`` where it divides
    it; wholly for a dot conv (its groups: not measured) and a narrower block (a stem's 3)."""
    (extent,) = _extents(sch, [rb])
    if dot or extent <= CHANNELS_UNROLLED or extent % CHANNELS_UNROLLED:
        sch.unroll(rb)
    else:
        sch.unroll(sch.split(rb, [None, CHANNELS_UNROLLED])[1])


def _linking(func: tirx.PrimFunc, dot: int8_dot.DotInstruction | None) -> tirx.PrimFunc:
    """``func`` with the LLVM IR its dot instruction calls (``DotInstruction.llvm_import``) linked
    in once for the whole kernel: inside each tensorized step it would be parsed once per step
    of the unrolled tile (ResNet-50 in bfloat16 built in 28 s instead of 10)."""
    if dot is None or not dot.llvm_import:
        return func
    return func.with_body(tirx.AttrStmt(tvm.ir.StringImm(dot.name), "pragma_import_llvm",
                                        tvm.ir.StringImm(dot.llvm_import), func.body))


def _k_blocked(sch: s_tir.Schedule, cfg: ConvConfig, loops, dot) -> tuple:
    """Order the conv's loops for K-blocking: the reduction's channel chunks in blocks of
    ``cfg.k_block``, each block run over many tiles while its weights are in cache. Where a
    task's (batch x output-channel group) output fits ``K_BLOCK_OUTPUT``, the blocks run outside
    the rows and the task keeps its whole output as the accumulator (each weight read once);
    otherwise they run inside each row and the row is the accumulator (LLVM's build slows with
    the buffer: 3.4 s for a kernel with 107 KB per task, 0.1 s per row). ``dot``: a dot conv's
    innermost loop (``schedule_conv``), or none. Returns (the parallel loop, the outermost
    reduction loop)."""
    n, oc_o, oh, ow_o, ob, rc, ry, rx, rb, oc_i, ow_i = loops
    rc_o, rc_i = sch.split(rc, [None, cfg.k_block])
    tile_c, rows, tiles, tile_w, ocb = _extents(sch, [oc_i, oh, ow_o, ow_i, ob])
    if keeps_task_output(tile_c, rows, tiles * tile_w, ocb):
        sch.reorder(n, oc_o, rc_o, oh, ow_o, rc_i, ry, rx, rb, oc_i, ow_i, ob, *dot)
        return _parallel_outer(sch, (n, oc_o), cfg.parallel), rc_o
    sch.reorder(n, oc_o, oh, rc_o, ow_o, rc_i, ry, rx, rb, oc_i, ow_i, ob, *dot)
    return _parallel_outer(sch, (n, oc_o, oh), cfg.parallel), rc_o


def keeps_task_output(tile_c: int, rows: int, columns: int, ocb: int) -> bool:
    """Whether a K-blocked task (``tile_c`` output-channel blocks of ``ocb``, all rows and
    columns) keeps its whole float32 output as the accumulator (``K_BLOCK_OUTPUT``), rather
    than blocking per row: the one rule for the loop order and the block size."""
    return 4 * tile_c * rows * columns * ocb <= K_BLOCK_OUTPUT


#: K-blocking (``ConvConfig.k_block``) by default when one task's weights (an output-channel group
#: across all input channels) are larger than this: about half of a core's L2 (512 KB on the
#: machines measured), beyond which the tiles of a row no longer find them in cache
K_BLOCK_WEIGHTS = 256 * 1024
#: ... for a flat conv (all pixels one row, ``passes.conv_columns``). Blocked, its task keeps its
#: whole output and its parallel tasks are only its output-channel groups, against groups x tiles
#: unblocked: EfficientNet's 1152 -> 192 1x1 at 7x7 ran 3 tasks on 2 threads, one thread doing two
#: thirds. Unblocked, the tiles of a group read its weights from L2: half of Zen 4's (1 MB), all of
#: Zen 3's. Each kernel alone (znver4, 2 threads; in cache / cold), blocked -> unblocked, by a
#: task's weights: EfficientNet's 1152 -> 192 and 1152 -> 320 at 7x7 (295 KB) 136 -> 103 /
#: 157 -> 119 us and 207 -> 169 / 242 -> 181 us; ResNeXt's 2048 -> 1024 (512 KB) 1015 -> 1012 /
#: 1140 -> 1043 us; ResNet-50's 2048 -> 512 (512 KB) 481 -> 478 / 528 -> 501 us. Over it, ResNet-50's
#: 3x3 512 -> 512 at 7x7 (1.2 MB) 1308 -> 1282 / 1428 -> 1461 us. Whole models in one process
#: (paired medians of 30-40 rounds against the blocked build): EfficientNet 1.017 and 1.001,
#: ResNet-50 1.000, ResNeXt 1.000: on 2 threads the balance is worth about 1% of EfficientNet, inside
#: the noise; on more threads, 3 tasks leave the other cores idle.
K_BLOCK_FLAT_WEIGHTS = 512 * 1024
#: the weights of one block when the task keeps its whole output: comfortably in L2 beside the
#: input rows the block reads
K_BLOCK_BYTES = 96 * 1024
#: ... and when each row is its own accumulator: in L1, reused by every tile of the row
#: (measured: 512->512 3x3 at 28x28 32 -> 24 ms with one 8-channel chunk, 9 KB, per block)
K_ROW_BLOCK_BYTES = 16 * 1024
#: the largest accumulator buffer (a task's whole output) that K-blocking keeps; larger outputs
#: are blocked per row (512->512 3x3 at 14x14, 27 KB per task, builds in 0.4 s; at 28x28,
#: 107 KB, in 3.4 s, and VGG-11 in 68 s instead of 17; per row 0.1 s)
K_BLOCK_OUTPUT = 64 * 1024


@dataclass(frozen=True)
class ConvShape:
    """What the config rules read of a conv block: its loop extents (n, oc chunks, rows, columns,
    oc block, ic chunks, kh, kw, ic block), the dot instruction it was made for
    (``int8_dot.DOT_ATTR``), None for a float32 conv, and a grouped conv's output chunks per group
    (``GROUP_ATTR``; 0: not grouped), and whether it computes all its pixels as one row
    (``FLAT_ATTR``)."""

    ext: list[int]
    instruction: int8_dot.DotInstruction | None
    group_chunks: int = 0
    flat: bool = False

    @property
    def weight_bytes(self) -> int:
        return self.instruction.weight_bytes if self.instruction else 4

    def max_acc(self, default: int) -> int:
        """The register tile's accumulators: the dot instruction's, or ``default`` (the float budget)."""
        return self.instruction.max_acc if self.instruction else default


def conv_shape(sch: s_tir.Schedule, conv) -> ConvShape:
    """``ConvShape`` of a conv block: a dot conv's two channel-in-block loops (groups, the channels of
    a group) count as one ic block."""
    dot = _dot_of(sch, conv)
    ext = _extents(sch, sch.get_loops(conv))
    annotations = sch.get(conv).annotations
    flat = FLAT_ATTR in annotations
    if dot is None:
        return ConvShape(ext, None, int(annotations.get(GROUP_ATTR, 0)), flat)
    return ConvShape(ext[:8] + [ext[8] * ext[9]], dot, flat=flat)


def _dot_of(sch: s_tir.Schedule, block) -> int8_dot.DotInstruction | None:
    """The dot instruction a block was computed for (``DOT_ATTR``), None for plain float32."""
    name = sch.get(block).annotations.get(DOT_ATTR)
    return None if name is None else DOTS[str(name)]


def default_conv_config(ext: list[int], weight_bytes: int, max_acc: int, group_chunks: int = 0,
                        flat: bool = False) -> ConvConfig:
    """The heuristic config of a conv with loop extents, weight size and output chunks per group
    ``conv_shape``'s. A grouped conv's register tile spans the chunks of one group at most: the
    chunks of different groups read different inputs, so a tile across them shares no broadcast
    (measured, 2 threads, znver3: ResNeXt's 3x3 conv of 32 groups of 8 channels at 28x28, a 4 x 3
    tile 0.51 ms, 1 x 7 0.20 ms).

    A conv whose register tile spans all its output channels (one parallel task per row) pads
    its input per task: each padded row is then made once, by the task that reads it, instead of
    in a pass of its own over the whole input. Measured (Zen 5, 2 threads, 16 lanes): DenseNet's
    128->32 3x3 convs at 56x56 0.74 -> 0.65 ms, at 28x28 0.163 -> 0.139 ms, at 14x14 37 -> 33 us,
    the model 8.37 -> 7.86 ms; ResNet-50's 64->64 3x3 and SqueezeNet's 16->64 the same. With
    several channel groups each row would be padded once per group. Float32 convs only: a dot
    conv's padding per task does not schedule with its dot instruction."""
    tile_c, tile_w = choose_tile(ext[3], group_chunks or ext[1], max_acc)
    k_block = default_k_block(ext, tile_c, weight_bytes, flat)
    per_row = not k_block and ext[1] == tile_c and weight_bytes == 4
    return ConvConfig(tile_c, tile_w, k_block=k_block, pad_per_row=per_row)


def default_k_block(ext: list[int], tile_c: int, weight_bytes: int = 4, flat: bool = False) -> int:
    """Input-channel chunks per reduction block for a conv whose weights per task outgrow the
    cache (measured, 2 threads: 512->512 3x3 at 7x7 2.4 -> 2.0 ms, at 28x28 32 -> 24 ms; ResNet-50
    1.13 -> 1.08x onnxruntime in one process), 0 to keep the whole reduction inside each tile.
    A ``flat`` conv's limit is ``K_BLOCK_FLAT_WEIGHTS``."""
    limit = K_BLOCK_FLAT_WEIGHTS if flat else K_BLOCK_WEIGHTS
    if _chunk_bytes(ext, tile_c, weight_bytes) * ext[5] <= limit:
        return 0
    return k_block_size(ext, tile_c, weight_bytes)


def k_block_size(ext: list[int], tile_c: int, weight_bytes: int = 4) -> int:
    """The most input-channel chunks whose weights (for ``tile_c`` output-channel blocks) fit a
    block (``K_BLOCK_BYTES``, or ``K_ROW_BLOCK_BYTES`` when the blocks run per row), fewer than
    all of them. When even one chunk is larger: one chunk per block if the blocks run per row,
    else 0 (not blocked). Per row, blocking at all is what counts: AVX-512's 16-channel chunks of a
    3x3 conv are 37 KB for 4 output blocks, and VGG's 512->512 3x3 at 28x28 (1.2 MB of weights per
    task) took 9.0 ms unblocked, 7.4-7.7 ms with blocks of 1 to 16 chunks (Zen 5, 2 threads)."""
    _, _, oh, out_w, ocb, icc, _, _, _ = ext
    per_row = not keeps_task_output(tile_c, oh, out_w, ocb)
    budget = K_ROW_BLOCK_BYTES if per_row else K_BLOCK_BYTES
    fits = [d for d in _divisors(icc) if d * _chunk_bytes(ext, tile_c, weight_bytes) <= budget and d < icc]
    return max(fits, default=1 if per_row and icc > 1 else 0)


def _chunk_bytes(ext: list[int], tile_c: int, weight_bytes: int) -> int:
    """Bytes of one input-channel chunk of a task's weights."""
    _, _, _, _, ocb, _, kh, kw, icb = ext
    return tile_c * kh * kw * icb * ocb * weight_bytes


def _parallel_outer(sch: s_tir.Schedule, loops, mode: str):
    """Fuse ``loops`` into one; parallel unless ``mode`` is "none". Returns the fused loop."""
    outer = sch.fuse(*loops) if len(loops) > 1 else loops[0]
    if mode != "none":
        sch.parallel(outer)
    return outer


def _schedule_pad(sch: s_tir.Schedule, pad, at, parallel: bool) -> None:
    """Padding under loop ``at`` (only the region one iteration reads), or as its own stage."""
    if at is None:
        _vectorize_inner(sch, pad, parallel=parallel)
        return
    sch.compute_at(pad, at)
    p_loops = sch.get_loops(pad)[1:]
    if p_loops:
        sch.vectorize(p_loops[-1])


@dataclass(frozen=True)
class Prepared:
    """A kernel's blocks after ``_prepare``: its main block, padding and epilogue (or None), and
    whether the epilogue holds a ``fast_math`` polynomial (then it is not unrolled over the tile)."""

    main: object
    pad: object
    epilogue: object
    polynomial: bool


def _prepare(sch: s_tir.Schedule, main_name: str) -> Prepared | None:
    """The kernel's blocks after inlining every elementwise block but the last into it; None when
    the function is not one ``main_name`` block plus padding and elementwise blocks."""
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    names = [sch.get(b).name_hint for b in blocks]
    if names.count(main_name) != 1:
        return None
    ci = names.index(main_name)
    main = blocks[ci]
    pad = blocks[names.index(PAD_BLOCK)] if PAD_BLOCK in names else None
    others = [b for i, b in enumerate(blocks) if i != ci and b != pad]
    epilogue = others[-1] if others and names.index(sch.get(others[-1]).name_hint) > ci else None
    for b in others:
        if epilogue is not None and b == epilogue:
            continue
        sch.compute_inline(b)
    polynomial = any(fast_math.is_polynomial(n) for i, n in enumerate(names) if i > ci)
    if main_name == CONV_BLOCK:
        _fuse_split_block(sch, main)
        _flatten_epilogue(sch, main, epilogue)
    return Prepared(main, pad, epilogue, polynomial)


def _flatten_epilogue(sch: s_tir.Schedule, conv, epilogue) -> None:
    """A conv computed over its pixels as one row (``passes.FLAT_ATTR``) has its epilogue iterate
    over the pixels too, so that it can be computed under the conv's tiles of pixels."""
    width = sch.get(conv).annotations.get(FLAT_ATTR)
    if width is None:
        return
    w = int(width)
    sch.transform_block_layout(epilogue, lambda b, c, y, x, k: (b, c, y * w + x, k))


def _fuse_split_block(sch: s_tir.Schedule, conv) -> None:
    """A conv computed in wider blocks than its layout's writes each block as (parts, lanes)
    (``passes.conv2d_nchwc_wide_compute``): one loop of both, the vector its schedule takes."""
    if sum(iv.iter_type == tirx.IterVar.DataPar for iv in sch.get(conv).iter_vars) == 6:
        loops = sch.get_loops(conv)
        sch.fuse(loops[4], loops[5])


def _tile_epilogue(sch: s_tir.Schedule, block, epilogue, at, unroll: bool = True, registers: int = 0) -> None:
    """Accumulate ``block``'s tile in registers and write it (through ``epilogue``) under loop
    ``at``: vectorized, and unrolled over the tile's other loops when ``unroll``, unless the
    epilogue writes more than the block (a broadcast: ``_broadcasts``). The loops unrolled are
    those below the first two (for a conv, the tile's own), or, given ``registers``, every loop
    below ``at`` where ``_whole_tile_fits`` says so."""
    if epilogue is not None:
        unroll = unroll and not _broadcasts(sch, block, epilogue)
        sch.set_scope(block, 0, ACCUMULATOR_SCOPE)
        tail = epilogue
    else:
        tail = sch.cache_write(block, 0, ACCUMULATOR_SCOPE)
    sch.reverse_compute_at(tail, at)
    loops = sch.get_loops(tail)
    if registers:
        below = loops[_position(sch, loops, at) + 1:]
        loops = below if _whole_tile_fits(sch, tail, below, registers) else loops[2:]
    else:
        loops = loops[2:]
    if loops:
        sch.vectorize(loops[-1])
        for l in loops[:-1] if unroll else ():
            sch.unroll(l)


def _position(sch: s_tir.Schedule, loops: list, loop) -> int:
    """The index of ``loop`` among a block's ``loops``."""
    return [sch.get(l).same_as(sch.get(loop)) for l in loops].index(True)


def _whole_tile_fits(sch: s_tir.Schedule, tail, tile, registers: int) -> bool:
    """Whether an epilogue unrolled over its whole ``tile`` (its loops, the vector last) keeps the
    tile in registers: its accumulators plus a vector per channel block for each buffer it reads
    (the accumulators' own, scales, biases, a residual) within ``registers``, and a result wider
    than 8 bits.

    Why: a conv computed over its pixels as one row (``_flatten_epilogue``) has one loop above
    its tile where others have two, and its epilogue's channel-block loop stayed a loop. LLVM then
    kept the tile on the stack: 15 dead stores of zeros, 15 stores and 15 loads per task around 60
    ``vpdpbusd``. Unrolled, the TFLite int8 CNN's 16 -> 48 expand (3 blocks x 5 pixels, 2 other
    operands) took 1.33-1.56 us instead of 2.04 (znver4, 2 threads), its 48 -> 16 projection (13
    pixels, a residual) 1.95 instead of 2.16, the model 4-8% less. Where the tile and operands
    fill the registers (MobileNetV2 int8: 3 x 5 or 4 x 4 with 3 other operands) it was 2-6%
    slower, and an epilogue casting to 8 bits unrolled was scalarized (a 12-pixel tile: 0.69 ->
    1.94 us), so those keep the loop. That scalarizing was TVM's missing ``nearbyint`` mark
    (``tir_pipeline.vectorizable_rounding``); re-measured with the mark, lifting the 8-bit refusal
    changed only MobileNetV2 int8's build: the model the same (150.5-151.9 us, one thread), one
    kernel 2.6 -> 3.1 us. So it stays. ``registers`` is the register file less
    ``EPILOGUE_SPARE_REGISTERS``: 24 on AVX-512, the line between the two sets of kernels
    measured; AVX2's and armv7's 16 registers leave 8 (not measured)."""
    extents = [int(sch.get(l).extent) for l in tile[:-1]]  # (channel blocks,) pixels
    if not extents or tvm.DataType(str(sch.get(tail).writes[0].source.dtype)).bits <= 8:
        return False
    blocks = extents[0] if len(extents) > 1 else 1
    return math.prod(extents) + len(sch.get(tail).reads) * blocks <= registers


def _broadcasts(sch: s_tir.Schedule, block, epilogue) -> bool:
    """Whether ``epilogue`` writes more values than ``block``: an int8 model's squeeze-excite conv
    (one pixel) whose gate multiplies the whole feature map in its epilogue. Unrolled, that
    epilogue is every pixel of the task over again (4 x 14 x 14 copies of the requantization: 14 s
    of LLVM for one kernel of MobileNetV3-Small QDQ)."""
    def size(b) -> int:
        return math.prod(int(iv.dom.extent) for iv in sch.get(b).iter_vars if iv.iter_type == tirx.IterVar.DataPar)

    return size(epilogue) > size(block)


def choose_dw_tile(out_w: int, max_acc: int) -> int:
    """Output columns per register tile of a depthwise conv: the largest divisor of out_w that
    leaves a register for the weight vector."""
    return max(_divisors(out_w, max(1, max_acc - 1)))


def default_dw_config(out_h: int, out_w: int, max_acc: int, stride: int = 1) -> DwConfig:
    """Two rows of 4 columns where the output splits so, is at least 16 wide and one row would
    hold at most 8 accumulators anyway: each weight vector is loaded once for 8 accumulators and
    the two rows share input rows. Measured (2 threads, AVX2, each kernel alone), 3x3/5x5 against
    one row of 7-8: EfficientNet's 56x56 445 -> 385 us, 28x28 273 -> 224 us, MobileNetV3's 28x28
    35 -> 28 us; no better at 8x8 and below, and 2 x 7 (14 accumulators) was 15-55% slower.

    A strided conv takes AVX2's budget (``STRIDED_DW_ACC``) on AVX-512 too: its input columns are
    2 apart, and a row of 14 (AVX-512's pick at 28 and 56 columns) spilled (EfficientNet's 144
    channels 5x5/2 at 28x28). Measured (Zen 5, 2 threads, each kernel alone), 14 columns against
    this rule's 4 x 2: 144 channels 3x3/2 at 28x28 16.9 -> 14.1 us, 96 at 56x56 45 -> 39 us;
    unstrided, 14 columns stay (240 channels 5x5 at 28x28: the fastest of the space). The spills
    of EfficientNet-B0's and MobileNetV3-Small's depthwise kernels fell from 122 and 111 stack
    accesses to 60 and 14; the models' times moved less than the noise of two runs (0.98-1.01)."""
    if stride > 1:
        max_acc = min(max_acc, STRIDED_DW_ACC)
    one_row = choose_dw_tile(out_w, max_acc)
    if out_h % 2 == 0 and out_w % 4 == 0 and out_w >= 16 and one_row <= 8 <= max_acc:
        return DwConfig(4, tile_h=2)
    return DwConfig(one_row)


#: the accumulators of a strided depthwise conv's default tile (``default_dw_config``)
STRIDED_DW_ACC = 12


def _dw_stride(sch: s_tir.Schedule, dw) -> int:
    """A depthwise block's stride, from the rows of the (padded) input it reads:
    (rows - kernel rows) // (output rows - 1)."""
    _, _, out_h, _, _, kh, _ = _extents(sch, sch.get_loops(dw))
    rows = int(sch.get(dw).reads[0].source.shape[2])
    return (rows - kh) // (out_h - 1) if out_h > 1 else 1


def schedule_depthwise(func: tirx.PrimFunc, lanes: int, max_acc: int,
                       config: DwConfig | None = None) -> tirx.PrimFunc | None:
    sch = s_tir.Schedule(func)
    found = _prepare(sch, DW_BLOCK)
    if found is None:
        return None
    dw, pad = found.main, found.pad
    n, c, oh, ow, cb, ry, rx = sch.get_loops(dw)
    out_h, out_w = _extents(sch, [oh, ow])
    cfg = config or default_dw_config(out_h, out_w, max_acc, _dw_stride(sch, dw))
    rows = sch.split(oh, [None, cfg.tile_h]) if cfg.tile_h > 1 else [oh]
    ow_o, ow_i = sch.split(ow, [None, cfg.tile_w])
    sch.reorder(n, c, rows[0], ow_o, ry, rx, *rows[1:], ow_i, cb)
    outer = _parallel_outer(sch, (n, c, rows[0]), cfg.parallel)
    _tile_epilogue(sch, dw, found.epilogue, ow_o, not found.polynomial)
    sch.vectorize(cb)
    sch.unroll(ow_i)
    for row in rows[1:]:
        sch.unroll(row)
    if cfg.unroll_kernel:
        sch.unroll(rx)
        sch.unroll(ry)
    sch.decompose_reduction(dw, ry)
    if pad is not None and cfg.padding == "inline":
        sch.compute_inline(pad)
    elif pad is not None:
        _schedule_pad(sch, pad, outer if cfg.padding == "row" else None, cfg.parallel != "none")
    return sch.mod["main"]


def schedule_matmul(func: tirx.PrimFunc, lanes: int, max_acc: int,
                    config: MatmulConfig | None = None) -> tirx.PrimFunc | None:
    """One ``matmul`` block (batch dims, M, N, K; + elementwise producers and epilogue).
    Register tile = ``tile_m`` rows x ``tile_n`` vectors of ``lanes`` output columns; K runs
    inside the tile (one broadcast of A per row and one vector load of B per column vector per
    step); (batch, row-tile) loops fused and parallelized, the epilogue written per tile. A
    matmul on a dot instruction (``dot_matmul``: K as groups x the instruction's group) takes it
    for each column vector and group, its own accumulator count."""
    sch = s_tir.Schedule(func)
    found = _prepare(sch, MATMUL_BLOCK)
    if found is None or found.pad is not None:
        return None
    mm = found.main
    split = _matmul_loops(sch, mm)
    if split is None:
        return None
    batch, (m, n, k), dot, group = split
    rows, cols, depth = _extents(sch, [m, n, k])
    if cols % lanes or rows < 2 or (dot is not None and dot.lanes != lanes):
        return None  # GEMV shapes and ragged columns: dlight's schedules
    cfg = config or default_matmul_config(rows, cols // lanes, dot.max_acc if dot else max_acc, depth)
    m_o, m_i = sch.split(m, [None, cfg.tile_m])
    n_o, n_c, n_v = sch.split(n, [None, cfg.tile_n, lanes])
    k_loops = sch.split(k, [None, cfg.k_unroll]) if cfg.k_unroll > 1 else [k]
    sch.reorder(*batch, m_o, n_o, *k_loops, m_i, n_c, n_v, *group)
    _parallel_outer(sch, (*batch, m_o), cfg.parallel)
    if found.epilogue is not None and _ragged_columns(sch, mm, found.epilogue, lanes):
        _row_tile_epilogue(sch, mm, found.epilogue, n_o, lanes)
    else:
        _tile_epilogue(sch, mm, found.epilogue, n_o, not found.polynomial)
    if dot is None:
        sch.vectorize(n_v)
    sch.unroll(n_c)
    sch.unroll(m_i)
    if cfg.k_unroll > 1:
        sch.unroll(k_loops[-1])
    init = sch.decompose_reduction(mm, k_loops[0])
    if dot is not None:
        sch.vectorize(sch.get_loops(init)[-1])
        sch.tensorize(n_v, dot.registered())
    return _linking(sch.mod["main"], dot)


def _ragged_columns(sch: s_tir.Schedule, mm, epilogue, lanes: int) -> bool:
    """Whether ``epilogue`` writes fewer columns than its matmul computes (``matmul_shapes``
    padded them to whole vectors: a ViT's 197 scores of 208), and at least one vector of them."""
    out, computed = sch.get(epilogue).writes[0].source.shape, sch.get(mm).writes[0].source.shape
    return len(out) == len(computed) and lanes <= int(out[-1]) < int(computed[-1])


def _row_tile_epilogue(sch: s_tir.Schedule, mm, epilogue, n_o, lanes: int) -> None:
    """The epilogue of a matmul with ragged columns (``_ragged_columns``), written once per row
    tile after all its column tiles (the loop above ``n_o``): whole vectors, then a scalar tail.
    Why: written per column tile, the epilogue's vector loop held the guard on the last tile's
    columns, and TVM's VectorizeLoop scalarized it in every tile. A ViT's 3 x 197 x 197 scores
    (Q x K^T, scaled) took 88.5 us so, 79 us this way (znver4, 2 threads): the row tile's 11 x
    208 accumulators go through a 9 KB buffer, a TVM workspace (on the stack it ran the same)."""
    loops = sch.get_loops(mm)
    sch.set_scope(mm, 0, ACCUMULATOR_SCOPE)
    sch.reverse_compute_at(epilogue, loops[_position(sch, loops, n_o) - 1])
    row_reductions.vector_steps(sch, sch.get_loops(epilogue)[-1], lanes)


def _matmul_loops(sch: s_tir.Schedule, mm):
    """A matmul block's loops as (batch loops, (M, N, K), its dot instruction or None, the dot's
    loop over one group: empty for float32); None where they are not that."""
    loops = sch.get_loops(mm)
    iters = sch.get(mm).iter_vars
    dot = _dot_of(sch, mm)
    inner = 1 if dot is not None else 0
    if len(loops) != len(iters) or len(loops) < 3 + inner or iters[-1].iter_type != tirx.IterVar.CommReduce:
        return None
    main = loops[:len(loops) - inner]
    return main[:-3], tuple(main[-3:]), dot, loops[len(loops) - inner:]


def default_matmul_config(rows: int, col_vectors: int, max_acc: int, depth: int) -> MatmulConfig:
    """``choose_tile``'s tile of (rows, column vectors), with more rows than vectors where the
    turned tile fits as well, and the reduction (``depth`` steps) unrolled by the largest of
    ``K_UNROLLS`` that divides it: what the tuner chose for BERT-style's dense layers, and on Zen 3 (2
    threads, one process) the model's 0.483 -> 0.442 ms (each dense kernel 8-13% faster, the
    attention products the same). A tile still narrower in rows than in vectors takes twice the
    rows and half the vectors where the rows divide: the same accumulators, each step's loads a
    broadcast more per row and half the vectors (3 x 4 -> 6 x 2: 140 -> 88 bytes). ViT-style's
    198 rows (no divisor 4) took 3 x 4; the tuner chose 6 x 2 for its four dense layers, each
    11-14% faster (412 -> 365, 354 -> 312, 270 -> 232, 87 -> 76 us on Zen 3)."""
    tile_n, tile_m = choose_tile(rows, col_vectors, max_acc)
    if tile_n > tile_m and col_vectors % tile_m == 0 and rows % tile_n == 0 and fits_registers(tile_m, tile_n, max_acc):
        tile_n, tile_m = tile_m, tile_n
    if tile_n > tile_m and tile_n % 2 == 0 and rows % (2 * tile_m) == 0:
        tile_n, tile_m = tile_n // 2, 2 * tile_m
    unroll = max(u for u in K_UNROLLS if depth % u == 0)
    return MatmulConfig(tile_m, tile_n, unroll)


#: the matmul reduction's unroll factors (``MatmulConfig.k_unroll``) the defaults and the tuner take
K_UNROLLS = (1, 2, 4, 8)


def schedule_generic(func: tirx.PrimFunc, keep: tuple[str, ...] = ()) -> tirx.PrimFunc | None:
    """See the module docstring; the blocks named in ``keep`` stay passes of their own (not inlined:
    ``resize``'s first stage)."""
    sch = s_tir.Schedule(func)
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    if not blocks:
        return None
    # inline elementwise producers (keep the last block: it writes the output)
    for b in blocks[:-1]:
        if _is_spatial(sch, b) and sch.get(b).name_hint not in keep:
            try:
                sch.compute_inline(b)
            except Exception:  # noqa: BLE001 (TVM raises ScheduleError subclasses)
                pass
    vector_loop = None  # the last blocked reduction's loop over its output vectors
    for b in sch.get_child_blocks(sch.get_sblock("root")):
        loops = sch.get_loops(b)
        if not loops:
            continue
        if _is_spatial(sch, b):
            if vector_loop is None or not _compute_per_vector(sch, b, vector_loop):
                _contiguous_writes(sch, b)
                _vectorize_inner(sch, b)
            vector_loop = None
            continue
        # reduction (pool, mean, matmul): parallelize the spatial loops above the reduction
        vector_loop = None  # a block after one left unscheduled reads it, not an earlier one
        iters = sch.get(b).iter_vars
        spatial_n = 0
        for iv in iters:
            if iv.iter_type != tirx.IterVar.DataPar:
                break
            spatial_n += 1
        if spatial_n == 0 or spatial_n != sum(iv.iter_type == tirx.IterVar.DataPar for iv in iters):
            continue
        if len(loops) != len(iters):
            continue
        vector_loop = _schedule_reduction(sch, b, loops[:spatial_n], loops[spatial_n:])
    return sch.mod["main"]


def _schedule_resize(func: tirx.PrimFunc, lanes: int) -> tirx.PrimFunc:
    """``resize``'s two stages, each a pass of its own (the ops fused after the second computed in
    it), rows in parallel; an NCHW row (wider than ``_vectorize_inner`` takes) in ``lanes``-wide
    vectors."""
    sch = s_tir.Schedule(schedule_generic(func, keep=(resize.RESIZE_X,)))
    for block in sch.get_child_blocks(sch.get_sblock("root")):
        last = sch.get_loops(block)[-1]
        extent = int(sch.get(last).extent)
        if sch.get(last).kind != tirx.ForKind.VECTORIZED and extent % lanes == 0:
            sch.vectorize(sch.split(last, [None, lanes])[1])
    return sch.mod["main"]


def _compute_per_vector(sch: s_tir.Schedule, block, at: LoopRV) -> bool:
    """Compute an elementwise ``block`` (an average pool's division by its window's count) under
    loop ``at`` of the blocked reduction before it, one output vector at a time, instead of in a
    pass of its own over a buffer of the whole reduction (Inception's 3x3 average pool of 192
    channels at 25x25: 94 -> 49 us on Zen 3). Returns whether it could."""
    try:
        sch.reverse_compute_at(block, at)
    except Exception:  # noqa: BLE001 (TVM raises ScheduleError subclasses)
        return False
    sch.vectorize(sch.get_loops(block)[-1])
    return True


#: innermost extents taken for a channel block (NCHW4c/8c/16c) that reductions vectorize over
_CHANNEL_BLOCKS = (4, 8, 16)


def _schedule_reduction(sch: s_tir.Schedule, block, space, reduce) -> LoopRV | None:
    """Parallelize a reduction's spatial loops; where the innermost is a channel block (pools in
    the blocked layout), move it inside the reduction and vectorize it (one vector max/add per
    window element instead of one scalar per channel: SqueezeNet's first 3x3 max pool 0.38 ->
    0.09-0.13 ms; dlight declines the means of a blocked layout, so they come here too).
    Returns the loop over the output vectors of a reduction so blocked, else None."""
    stmt = sch.get(block)
    blocked = reduce and int(sch.get(space[-1]).extent) in _CHANNEL_BLOCKS
    # one output written, with an init (not argmax-style tuple reductions, which decompose differently)
    inner = space[-1] if blocked and len(stmt.writes) == 1 and stmt.init is not None else None
    outer = space[:-1] if inner is not None else space
    if inner is not None:
        sch.reorder(*outer, *reduce, inner)
    if outer:
        fused = sch.fuse(*outer) if len(outer) > 1 else outer[0]
        if int(sch.get(fused).extent) > 1:
            sch.parallel(fused)
    if inner is None:
        return None
    sch.vectorize(inner)
    init = sch.decompose_reduction(block, reduce[0])
    sch.vectorize(sch.get_loops(init)[-1])
    return fused if outer else None


def _dlight_cpu(mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    from tvm.s_tir import dlight

    with target:
        return dlight.ApplyDefaultSchedule(dlight.cpu.GEMV(), dlight.cpu.Reduction())(mod)


#: a record's config for one PrimFunc: (kind, config), or None to use the defaults
Lookup = Callable[[tirx.PrimFunc], "tuple[str, object] | None"]


def schedule_module(mod: tvm.IRModule, target: tvm.target.Target, lanes: int, max_acc: int,
                    lookup: Lookup | None = None) -> tuple[tvm.IRModule, dict]:
    """Schedule every PrimFunc of ``mod`` (with the config ``lookup`` finds for it, else the
    defaults); returns the module and counts of what got which schedule ("tuned": how many
    took a record's config)."""
    stats = {"conv": 0, "depthwise": 0, "matmul": 0, "winograd": 0, "softmax": 0, "layer_norm": 0, "rows": 0,
             "resize": 0, "lstm": 0, "gru": 0, "dlight": 0, "generic": 0, "unscheduled": 0, "tuned": 0}
    updates = {}
    for gv, func in mod.functions_items():
        if not isinstance(func, tirx.PrimFunc):
            continue
        if func.attrs.get("tirx.is_scheduled", False):  # written scheduled (``recurrence``'s kernels)
            if func.attrs.get(KERNEL_ATTR) in stats:
                stats[func.attrs[KERNEL_ATTR]] += 1
            continue
        kind, new = _from_record(func, lanes, max_acc, lookup, gv.name_hint)
        if new is not None:
            stats["tuned"] += 1
        else:
            kind, new = schedule_default(func, target, lanes, max_acc, gv.name_hint)
            new = new if new is None else small_kernels.mark(func, new, kind)
        if new is None:
            stats["unscheduled"] += 1
            continue
        stats[kind] += 1
        updates[gv] = new.with_attr("tirx.is_scheduled", True)
    for gv, func in updates.items():
        mod[gv] = func
    return mod, stats


def _from_record(func: tirx.PrimFunc, lanes: int, max_acc: int, lookup: Lookup | None,
                 name: str) -> tuple[str, tirx.PrimFunc | None]:
    found = lookup(func) if lookup is not None else None
    if found is None:
        return "", None
    kind, config = found
    try:
        return kind, TUNABLE[kind].schedule(func, lanes, max_acc, config)
    except Exception as exc:  # noqa: BLE001 (a record from another version of the schedules)
        log.info("the tuned %s config %s failed for %s (%s); using the default", kind, config, name, exc)
        return kind, None


def schedule_default(func: tirx.PrimFunc, target: tvm.target.Target, lanes: int, max_acc: int,
                     name: str = "") -> tuple[str, tirx.PrimFunc | None]:
    """(kind, scheduled function or None): the first of conv, depthwise, matmul, dlight, generic
    that takes ``func``, with its default config."""
    for kind in _DEFAULT_ORDER:
        try:
            new = _schedule_kind(kind, func, target, lanes, max_acc)
        except Exception as exc:  # noqa: BLE001
            log.info("%s schedule failed for %s: %s", kind, name, exc)
            new = None
        if new is not None:
            return kind, new
    return "generic", None


def _dlight_one(func: tirx.PrimFunc, target: tvm.target.Target) -> tirx.PrimFunc | None:
    """dlight's schedule, declined for a blocked layout's reductions (``_reduces_channel_blocks``),
    which the generic schedule after it takes."""
    if _reduces_channel_blocks(func):
        return None
    one = _dlight_cpu(tvm.IRModule({"main": func}), target)["main"]
    return one if one.attrs.get("tirx.is_scheduled", False) else None


# --------------------------------------------------------------------------- the tuner's spaces


def _tiles(a: int, b: int, max_acc: int, max_a: int = 4) -> list[tuple[int, int]]:
    """(x, y) dividing (a, b), x <= max_a, with up to 4 accumulators beyond the register budget
    (a tile that spills a little can still win on reuse)."""
    return [(x, y) for x in _divisors(a, max_a) for y in _divisors(b, (max_acc + 4) // x)]


def _default_first(default, candidates) -> list:
    return [default] + [c for c in candidates if c != default]


def conv_space(func: tirx.PrimFunc, lanes: int, max_acc: int) -> list[ConvConfig]:
    sch = s_tir.Schedule(func)
    found = _prepare(sch, CONV_BLOCK)
    if found is None:
        return []
    shape = conv_shape(sch, found.main)
    ext, weight_bytes, max_acc = shape.ext, shape.weight_bytes, shape.max_acc(max_acc)
    occ, out_w = shape.group_chunks or ext[1], ext[3]  # a grouped conv's tiles: within a group
    tiles = _tiles(occ, out_w, max_acc, max_tile_c(occ, max_acc))
    # a 1x1 kernel window has no order or unrolling to choose, a conv without padding no padding:
    # such duplicates were 7 in 8 of a 1x1 conv's space, and the tuner samples it at random
    window = ext[6] * ext[7] > 1
    orders, unrolls = (("ck", "kc"), (False, True)) if window else (("ck",), (False,))
    # a flat conv's padding is a stage of its own either way (``schedule_conv``)
    pads = (False, True) if found.pad is not None and not shape.flat else (False,)
    grid = itertools.product(tiles, orders, unrolls, PARALLEL_MODES, pads)
    # kh/kw unrolled with the padding per (batch x row) task: TVM's lowering takes minutes on a
    # 7x7 stem (over 100 s where every other config takes 5), so that corner is left out
    whole = [ConvConfig(tc, tw, order, unroll, par, pad) for (tc, tw), order, unroll, par, pad in grid
             if not (unroll and pad and par == "rows")]
    sizes = {tc: k_block_size(ext, tc, weight_bytes) for tc, _ in tiles}
    blocked = [ConvConfig(tc, tw, unroll_kernel=unroll, parallel=par, k_block=sizes[tc])
               for (tc, tw), unroll, par in itertools.product(tiles, unrolls, ("fused", "none"))
               if sizes[tc]]
    return _default_first(default_conv_config(ext, weight_bytes, max_acc, shape.group_chunks, shape.flat),
                          whole + blocked)


def depthwise_space(func: tirx.PrimFunc, lanes: int, max_acc: int) -> list[DwConfig]:
    sch = s_tir.Schedule(func)
    found = _prepare(sch, DW_BLOCK)
    if found is None:
        return []
    _, _, out_h, out_w, *_ = _extents(sch, sch.get_loops(found.main))
    widths = _divisors(out_w, max_acc + 4)
    grid = itertools.product(widths, (True, False), ("fused", "none"), DW_PADDINGS, (1, 2))
    configs = [DwConfig(*c) for c in grid if c[-1] == 1 or (out_h % 2 == 0 and 2 * c[0] <= max_acc)]
    return _default_first(default_dw_config(out_h, out_w, max_acc, _dw_stride(sch, found.main)), configs)


def matmul_space(func: tirx.PrimFunc, lanes: int, max_acc: int) -> list[MatmulConfig]:
    sch = s_tir.Schedule(func)
    found = _prepare(sch, MATMUL_BLOCK)
    split = None if found is None else _matmul_loops(sch, found.main)
    if split is None:
        return []
    rows, cols, k = _extents(sch, split[1])
    if cols % lanes or rows < 2:
        return []
    col_vectors, max_acc = cols // lanes, split[2].max_acc if split[2] else max_acc
    unrolls = [u for u in K_UNROLLS if k % u == 0]
    grid = itertools.product(_tiles(col_vectors, rows, max_acc), unrolls, ("fused", "none"))
    return _default_first(default_matmul_config(rows, col_vectors, max_acc, k),
                          [MatmulConfig(tm, tn, u, par) for (tn, tm), u, par in grid])


@dataclass(frozen=True)
class Tunable:
    """A kernel kind the tuner searches: its schedule, its config space (default first) and config type."""

    schedule: Callable[..., tirx.PrimFunc | None]
    space: Callable[[tirx.PrimFunc, int, int], list]
    config: type


TUNABLE = {
    "conv": Tunable(schedule_conv, conv_space, ConvConfig),
    "depthwise": Tunable(schedule_depthwise, depthwise_space, DwConfig),
    "matmul": Tunable(schedule_matmul, matmul_space, MatmulConfig),
}

#: the order in which a function's kind is found: the first schedule that takes it
_DEFAULT_ORDER = (*TUNABLE, "winograd", "softmax", "layer_norm", "rows", "resize", "dlight", "generic")


def _reduces_channel_blocks(func: tirx.PrimFunc) -> bool:
    """A reduction over NCHW{L}c data whose innermost spatial axis is the channel block, read and
    written as the last index (means over H and W: squeeze-excite gates, global pools, kept as
    NCHW{L}c or squeezed to (N, C/L, L)). dlight's Reduction rule sums such a block one channel at
    a time; the generic schedule sums it as one vector per pixel (EfficientNet-B0's 11 means 1.0
    -> 0.17 ms, each 2-7x faster; a TFLite CNN's squeezed global mean 2.8 -> 0.4 us)."""
    sch = s_tir.Schedule(func)
    for block in sch.get_child_blocks(sch.get_sblock("root")):
        stmt = sch.get(block)
        spatial = [iv for iv in stmt.iter_vars if iv.iter_type == tirx.IterVar.DataPar]
        if (len(spatial) < len(stmt.iter_vars) and len(stmt.writes) == 1 and _extent(spatial[-1]) in _CHANNEL_BLOCKS
                and any(len(r.region) == 5 and r.region[-1].min.same_as(spatial[-1].var) for r in stmt.reads)
                and stmt.writes[0].region[-1].min.same_as(spatial[-1].var)):
            return True
    return False


def _extent(iter_var) -> int | None:
    extent = iter_var.dom.extent
    return int(extent) if isinstance(extent, tirx.IntImm) else None


def _schedule_kind(kind: str, func: tirx.PrimFunc, target: tvm.target.Target, lanes: int,
                   max_acc: int) -> tirx.PrimFunc | None:
    if kind in TUNABLE:
        return TUNABLE[kind].schedule(func, lanes, max_acc)
    if kind == "dlight":
        return _dlight_one(func, target)
    if kind == "winograd":
        return winograd.schedule_transform(func)
    if kind == "softmax":
        return softmax.schedule_softmax(func, lanes)
    if kind == "layer_norm":
        return layer_norm.schedule_layer_norm(func, lanes)
    if kind == "rows":
        return row_reductions.schedule_rows(func, lanes)
    if kind == "resize":
        return _schedule_resize(func, lanes) if resize.is_resize(func) else None
    return schedule_generic(func)
