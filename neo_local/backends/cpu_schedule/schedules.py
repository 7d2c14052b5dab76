"""TIR schedules for the fused kernels the Relax passes produce (``tvm.s_tir.Schedule``).

- ``schedule_conv``: a PrimFunc holding one ``conv2d_nchwc`` block (+ optional ``data_pad`` before
  it and elementwise epilogue blocks after it). Register tile = ``tile_w`` output columns x
  ``tile_c`` output-channel blocks of ``lanes`` floats (at most ``max_acc`` vector accumulators),
  held in a local buffer; the reduction loops (channel chunk, kh, kw, channel-in-block) run
  inside the tile; the channel block is vectorized, the tile unrolled, the (batch, oc-chunk,
  output row) loops fused and parallelized; the epilogue (bias, residual, relu/clip) is computed
  for the tile right after its reduction; padding is a separate parallel, vectorized stage.
- ``schedule_depthwise``: a PrimFunc holding one ``depthwise_conv2d_nchwc`` block (+ padding and
  epilogue as above). Register tile = ``tile_w`` output columns of one channel block (each
  accumulator is independent: one input vector and one weight vector per FMA, the weight vector
  reused across the tile); kh, kw unrolled inside the tile; (batch, channel chunk, output row)
  fused and parallelized; the epilogue computed for the tile; padding computed per output row
  (only the rows that row reads), so no padded copy of the whole input is written.
- ``schedule_generic``: any other PrimFunc (elementwise, layout transforms, pooling, mean,
  matmul): each root block gets its spatial loops fused + parallelized and the innermost
  spatial loop vectorized (when it is the block's last loop); first, elementwise producers are
  inlined into their consumers. Matmul/GEMV first go through ``dlight.cpu`` (GEMV, Reduction).

Every function that raises while being scheduled is left as it was (TVM builds it unscheduled:
slow but correct), never half-scheduled.
"""

from __future__ import annotations

import logging

import tvm
from tvm import s_tir, tirx

from neo_local.backends.cpu_schedule.passes import CONV_BLOCK, DW_BLOCK, MATMUL_BLOCK, PAD_BLOCK

log = logging.getLogger(__name__)


def _extents(sch: s_tir.Schedule, loops) -> list[int]:
    return [int(sch.get(l).extent) for l in loops]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def choose_tile(out_w: int, oc_chunks: int, max_acc: int) -> tuple[int, int]:
    """(tile_c, tile_w) dividing (oc_chunks, out_w) with tile_c * tile_w <= max_acc accumulators,
    maximising FMAs per load (tile_c weight vectors + tile_w broadcasts per step of the reduction),
    then the number of accumulators."""
    best, best_key = (1, 1), (-1.0, 0)
    for tc in _divisors(oc_chunks):
        for tw in _divisors(out_w):
            acc = tc * tw
            if acc > max_acc or tc > 4:
                continue
            key = (acc / (tc + tw), acc)
            if key > best_key:
                best, best_key = (tc, tw), key
    return best


def _vectorize_inner(sch: s_tir.Schedule, block, max_vec: int = 64, parallel: bool = True) -> None:
    """Fuse + parallelize the outer spatial loops of a spatial block, vectorize the last one."""
    loops = sch.get_loops(block)
    if not loops:
        return
    ext = _extents(sch, loops)
    inner = loops[-1] if ext[-1] <= max_vec else None
    outer = loops[:-1] if inner is not None else loops
    if outer and parallel:
        fused = sch.fuse(*outer) if len(outer) > 1 else outer[0]
        sch.parallel(fused)
    if inner is not None and ext[-1] > 1:
        sch.vectorize(inner)


def _is_spatial(sch: s_tir.Schedule, block) -> bool:
    return all(iv.iter_type == tirx.IterVar.DataPar for iv in sch.get(block).iter_vars)


def schedule_conv(func: tirx.PrimFunc, lanes: int, max_acc: int) -> tirx.PrimFunc | None:
    sch = s_tir.Schedule(func)
    # everything but the conv, its padding and the last block must be inlinable elementwise work
    prepared = _prepare(sch, CONV_BLOCK)
    if prepared is None:
        return None
    conv, pad, epilogue = prepared

    n, oc, oh, ow, ob, rc, ry, rx, rb = sch.get_loops(conv)
    _, occ, _, out_w, ocb = _extents(sch, [n, oc, oh, ow, ob])
    tile_c, tile_w = choose_tile(out_w, occ, max_acc)
    oc_o, oc_i = sch.split(oc, [None, tile_c])
    ow_o, ow_i = sch.split(ow, [None, tile_w])
    sch.reorder(n, oc_o, oh, ow_o, rc, ry, rx, rb, oc_i, ow_i, ob)
    outer = sch.fuse(n, oc_o, oh)
    sch.parallel(outer)

    _tile_epilogue(sch, conv, epilogue, ow_o)

    sch.vectorize(ob)
    sch.unroll(ow_i)
    sch.unroll(oc_i)
    sch.unroll(rb)
    sch.decompose_reduction(conv, rc)

    if pad is not None:
        _vectorize_inner(sch, pad)
    return sch.mod["main"]


def _prepare(sch: s_tir.Schedule, main_name: str):
    """(main block, pad block or None, epilogue block or None) after inlining every other
    elementwise block; None when the function is not one ``main_name`` block plus those."""
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
    return main, pad, epilogue


def _tile_epilogue(sch: s_tir.Schedule, block, epilogue, at) -> None:
    """Accumulate ``block``'s tile in registers and write it (through ``epilogue``) under loop ``at``."""
    if epilogue is not None:
        sch.set_scope(block, 0, "local")
        tail = epilogue
    else:
        tail = sch.cache_write(block, 0, "local")
    sch.reverse_compute_at(tail, at)
    loops = sch.get_loops(tail)[2:]
    if loops:
        sch.vectorize(loops[-1])
        for l in loops[:-1]:
            sch.unroll(l)


def choose_dw_tile(out_w: int, max_acc: int) -> int:
    """Output columns per register tile of a depthwise conv: the largest divisor of out_w that
    leaves a register for the weight vector."""
    return max(d for d in _divisors(out_w) if d <= max(1, max_acc - 1))


def schedule_depthwise(func: tirx.PrimFunc, lanes: int, max_acc: int) -> tirx.PrimFunc | None:
    sch = s_tir.Schedule(func)
    found = _prepare(sch, DW_BLOCK)
    if found is None:
        return None
    dw, pad, epilogue = found
    n, c, oh, ow, cb, ry, rx = sch.get_loops(dw)
    out_w = _extents(sch, [ow])[0]
    tile_w = choose_dw_tile(out_w, max_acc)
    ow_o, ow_i = sch.split(ow, [None, tile_w])
    sch.reorder(n, c, oh, ow_o, ry, rx, ow_i, cb)
    outer = sch.fuse(n, c, oh)
    sch.parallel(outer)
    _tile_epilogue(sch, dw, epilogue, ow_o)
    sch.vectorize(cb)
    sch.unroll(ow_i)
    sch.unroll(rx)
    sch.unroll(ry)
    sch.decompose_reduction(dw, ry)
    if pad is not None:
        sch.compute_at(pad, outer)
        p_loops = sch.get_loops(pad)[1:]
        if p_loops:
            sch.vectorize(p_loops[-1])
    return sch.mod["main"]


def schedule_matmul(func: tirx.PrimFunc, lanes: int, max_acc: int) -> tirx.PrimFunc | None:
    """One ``matmul`` block (batch dims, M, N, K; + elementwise producers and epilogue).
    Register tile = ``tile_m`` rows x ``tile_n`` vectors of ``lanes`` output columns; K runs
    inside the tile (one broadcast of A per row and one vector load of B per column vector per
    step); (batch, row-tile) loops fused and parallelized, the epilogue written per tile."""
    sch = s_tir.Schedule(func)
    found = _prepare(sch, MATMUL_BLOCK)
    if found is None or found[1] is not None:
        return None
    mm, _, epilogue = found
    loops = sch.get_loops(mm)
    iters = sch.get(mm).iter_vars
    if len(loops) != len(iters) or len(loops) < 3 or iters[-1].iter_type != tirx.IterVar.CommReduce:
        return None
    *batch, m, n, k = loops
    rows, cols = _extents(sch, [m, n])
    if cols % lanes or rows < 2:
        return None  # GEMV shapes and ragged columns: dlight's schedules
    tile_n, tile_m = choose_tile(rows, cols // lanes, max_acc)
    m_o, m_i = sch.split(m, [None, tile_m])
    n_o, n_c, n_v = sch.split(n, [None, tile_n, lanes])
    sch.reorder(*batch, m_o, n_o, k, m_i, n_c, n_v)
    outer = sch.fuse(*batch, m_o) if batch else m_o
    sch.parallel(outer)
    _tile_epilogue(sch, mm, epilogue, n_o)
    sch.vectorize(n_v)
    sch.unroll(n_c)
    sch.unroll(m_i)
    sch.decompose_reduction(mm, k)
    return sch.mod["main"]


def schedule_generic(func: tirx.PrimFunc) -> tirx.PrimFunc | None:
    sch = s_tir.Schedule(func)
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    if not blocks:
        return None
    # inline elementwise producers (keep the last block: it writes the output)
    for b in blocks[:-1]:
        if _is_spatial(sch, b):
            try:
                sch.compute_inline(b)
            except Exception:  # noqa: BLE001 (TVM raises ScheduleError subclasses)
                pass
    for b in sch.get_child_blocks(sch.get_sblock("root")):
        loops = sch.get_loops(b)
        if not loops:
            continue
        if _is_spatial(sch, b):
            _vectorize_inner(sch, b)
            continue
        # reduction (pool, mean, matmul): parallelize the spatial loops above the reduction
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
        space = loops[:spatial_n]
        fused = sch.fuse(*space) if len(space) > 1 else space[0]
        if int(sch.get(fused).extent) > 1:
            sch.parallel(fused)
    return sch.mod["main"]


def _dlight_cpu(mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule:
    from tvm.s_tir import dlight

    with target:
        return dlight.ApplyDefaultSchedule(dlight.cpu.GEMV(), dlight.cpu.Reduction())(mod)


def schedule_module(mod: tvm.IRModule, target: tvm.target.Target, lanes: int, max_acc: int) -> tuple[tvm.IRModule, dict]:
    """Schedule every PrimFunc of ``mod``; returns the module and counts of what got which schedule."""
    stats = {"conv": 0, "depthwise": 0, "matmul": 0, "dlight": 0, "generic": 0, "unscheduled": 0}
    updates = {}
    for gv, func in mod.functions_items():
        if not isinstance(func, tirx.PrimFunc) or func.attrs.get("tirx.is_scheduled", False):
            continue
        new = None
        for kind, schedule in (("conv", schedule_conv), ("depthwise", schedule_depthwise), ("matmul", schedule_matmul)):
            try:
                new = schedule(func, lanes, max_acc)
            except Exception as exc:  # noqa: BLE001
                log.info("%s schedule failed for %s: %s", kind, gv.name_hint, exc)
                new = None
            if new is not None:
                break
        if new is None:
            kind = "dlight"
            try:
                one = _dlight_cpu(tvm.IRModule({"main": func}), target)
                if one["main"].attrs.get("tirx.is_scheduled", False):
                    new = one["main"]
            except Exception as exc:  # noqa: BLE001
                log.info("dlight failed for %s: %s", gv.name_hint, exc)
                new = None
        if new is None:
            kind = "generic"
            try:
                new = schedule_generic(func)
            except Exception as exc:  # noqa: BLE001
                log.info("generic schedule failed for %s: %s", gv.name_hint, exc)
                new = None
        if new is None:
            stats["unscheduled"] += 1
            continue
        stats[kind] += 1
        updates[gv] = new.with_attr("tirx.is_scheduled", True)
    for gv, func in updates.items():
        mod[gv] = func
    return mod, stats
