"""Softmax over the last axis (attention's) with vector reductions.

topi's ``fast_softmax`` reduces each row's max and sum one element at a time (dlight schedules
them as scalar loops): a ViT's 3 x 197 x 197 scores took 0.2 ms a layer, onnxruntime's 0.06.
Here each row is read as whole vectors of ``lanes``: the row padded to a multiple of them (-inf,
which leaves the max alone; its exponentials are then set to 0), the max and the sum each
reduced into one vector of partial results (a vector max or add per step) and then across its
lanes, the exponentials kept in a row buffer, and the row scaled by the sum's reciprocal.
``schedule_softmax`` runs the rows in parallel, every stage of a row inside its task. A row that
does not fill whole vectors (197 tokens) is copied and scaled as whole vectors and then a scalar
tail: with the tail in the vector loop, TVM scalarized the loop (``_vector_steps``).
"""

from __future__ import annotations

import math

from tvm import relax, s_tir, te, tirx

from neo_local.backends.cpu_schedule import fast_math
from neo_local.backends.cpu_schedule.rewriting import static_shape

#: the stages of ``softmax_rows``, by their blocks' names (``schedule_softmax`` finds them so)
PADDED, PART_MAX, MAX, EXP = "softmax_padded", "softmax_part_max", "softmax_max", "softmax_exp"
PART_SUM, SUM, SCALE, NORM = "softmax_part_sum", "softmax_sum", "softmax_scale", "softmax_norm"
_STAGES = (PADDED, PART_MAX, MAX, EXP, PART_SUM, SUM, SCALE, NORM)


def softmax_rows(x: te.Tensor, lanes: int) -> te.Tensor:
    """softmax(x) over its last axis, in vector steps of ``lanes`` (module docstring)."""
    *lead, n = (int(d) for d in x.shape)
    width = -(-n // lanes) * lanes
    f32 = fast_math.f32

    padded = te.compute((*lead, width), lambda *i: tirx.if_then_else(
        i[-1] < n, x(*i), f32(-math.inf)), name=PADDED)
    c = te.reduce_axis((0, width // lanes), name="c")
    part_max = te.compute((*lead, lanes), lambda *i: te.max(padded[(*i[:-1], c * lanes + i[-1])], axis=c),
                          name=PART_MAX)
    lane = te.reduce_axis((0, lanes), name="lane")
    row_max = te.compute(lead, lambda *i: te.max(part_max[(*i, lane)], axis=lane), name=MAX)
    exp = te.compute((*lead, width), lambda *i: tirx.Select(
        i[-1] < n, fast_math.exp_poly(padded(*i) - row_max(*i[:-1])), f32(0.0)), name=EXP)
    c2 = te.reduce_axis((0, width // lanes), name="c")
    part_sum = te.compute((*lead, lanes), lambda *i: te.sum(exp[(*i[:-1], c2 * lanes + i[-1])], axis=c2),
                          name=PART_SUM)
    lane2 = te.reduce_axis((0, lanes), name="lane")
    row_sum = te.compute(lead, lambda *i: te.sum(part_sum[(*i, lane2)], axis=lane2), name=SUM)
    scale = te.compute(lead, lambda *i: f32(1.0) / row_sum(*i), name=SCALE)
    return te.compute(x.shape, lambda *i: exp(*i) * scale(*i[:-1]), name=NORM)


def legalizer(lanes: int):
    """LegalizeOps entry for ``nn.softmax``: float32 over the last axis with a static shape and
    rows of a vector or more -> ``softmax_rows``; others -> ``fast_math``'s (topi's
    ``fast_softmax``)."""
    other = fast_math.LEGALIZERS["relax.nn.softmax"]

    def legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        x = call.args[0]
        shape = static_shape(x)
        if (str(call.ty.dtype) != "float32" or not shape or int(call.attrs.axis) % len(shape) != len(shape) - 1
                or shape[-1] < lanes):
            return other(bb, call)
        return bb.call_te(softmax_rows, x, lanes, primfunc_name_hint="softmax")

    return legalize


def schedule_softmax(func: tirx.PrimFunc, lanes: int) -> tirx.PrimFunc | None:
    """The rows in parallel; each row's stages computed in its task (``compute_at``), the partial
    reductions and the exponentials in vectors of ``lanes``; producers fused into the kernel
    inlined, consumers too. None for a function without ``softmax_rows``' blocks."""
    sch = s_tir.Schedule(func)
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    names = [sch.get(b).name_hint for b in blocks]
    if not all(s in names for s in _STAGES):
        return None
    stage = {n: b for n, b in zip(names, blocks) if n in _STAGES}
    for b in blocks[:names.index(PADDED)]:
        sch.compute_inline(b)
    for b in reversed(blocks[names.index(NORM) + 1:]):
        sch.reverse_compute_inline(b)
    out = stage[NORM]
    *lead, col = sch.get_loops(out)
    row = sch.fuse(*lead) if len(lead) > 1 else lead[0]
    sch.parallel(row)
    for name in reversed(_STAGES[:-1]):  # all but NORM, last first
        sch.compute_at(stage[name], row)
    for name in (PART_MAX, PART_SUM):
        block = stage[name]
        *_, lane, c = sch.get_loops(block)
        sch.reorder(c, lane)
        sch.vectorize(lane)
        init = sch.decompose_reduction(block, c)
        sch.vectorize(sch.get_loops(init)[-1])
    for name in (MAX, SUM):
        sch.unroll(sch.get_loops(stage[name])[-1])
    width = int(sch.get(sch.get_loops(stage[EXP])[-1]).extent)
    whole = int(sch.get(col).extent) // lanes * lanes
    _vector_steps(sch, sch.get_loops(stage[EXP])[-1], lanes, width)
    _vector_steps(sch, sch.get_loops(stage[PADDED])[-1], lanes, whole)
    _vector_steps(sch, col, lanes, whole)
    return sch.mod["main"]


def _vector_steps(sch: s_tir.Schedule, loop, lanes: int, whole: int) -> None:
    """``loop``'s first ``whole`` iterations (a multiple of ``lanes``, one at least: the
    legalizer's rows are a vector or longer) as vectors, the rest (a row's tail) a scalar loop of
    its own. Why: in a vector loop, the tail's guard (a predicate, an ``if_then_else`` on the
    column) makes TVM's VectorizeLoop scalarize the whole loop. A ViT's 3 x 197 x 197 scores
    took 99.6 us a layer so, 39.2 split (znver4, 2 threads; onnxruntime's 28)."""
    if whole < int(sch.get(loop).extent):
        loop = sch.loop_partition(loop, [whole, None])[0]
    _, vec = sch.split(loop, [None, lanes])
    sch.vectorize(vec)
