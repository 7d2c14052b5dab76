"""Softmax over the last axis (attention's) with vector reductions.

topi's ``fast_softmax`` reduces each row's max and sum one element at a time (dlight schedules
them as scalar loops): a ViT's 3 x 197 x 197 scores took 0.2 ms a layer, onnxruntime's 0.06.
Here each row is read as whole vectors of ``lanes``: the row padded to a multiple of them (-inf,
which leaves the max alone; its exponentials are then set to 0), the max and the sum each
reduced into one vector of partial results (a vector max or add per step) and then across its
lanes, the exponentials kept in a row buffer, and the row scaled by the sum's reciprocal.
``schedule_softmax`` runs the rows in parallel, every stage of a row inside its task. A row that
does not fill whole vectors (197 tokens) is copied and scaled as whole vectors and then a scalar
tail: with the tail in the vector loop, TVM scalarized the loop (``row_reductions.vector_steps``).
"""

from __future__ import annotations

import math

from tvm import relax, te, tirx

from neo_local.backends.cpu_schedule import fast_math, row_reductions
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
    part_max = row_reductions.lane_parts(lambda *i: padded(*i), lead, width, lanes, te.max, PART_MAX)
    row_max = row_reductions.across_lanes(part_max, te.max, MAX)
    exp = te.compute((*lead, width), lambda *i: tirx.Select(
        i[-1] < n, fast_math.exp_poly(padded(*i) - row_max(*i[:-1])), f32(0.0)), name=EXP)
    part_sum = row_reductions.lane_parts(lambda *i: exp(*i), lead, width, lanes, te.sum, PART_SUM)
    row_sum = row_reductions.across_lanes(part_sum, te.sum, SUM)
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
    """The rows in parallel; each row's stages computed in its task, the partial reductions and
    the exponentials in vectors of ``lanes``, the padded copy and the output in whole vectors and a
    scalar tail (``row_reductions``); producers fused into the kernel inlined, consumers too. None
    for a function without ``softmax_rows``' blocks."""
    staged = row_reductions.staged_rows(func, _STAGES, ((PART_MAX, MAX), (PART_SUM, SUM)))
    if staged is None:
        return None
    sch, stage, col = staged
    whole = int(sch.get(col).extent) // lanes * lanes  # the padded copy's guard starts past the row's
    row_reductions.vector_steps(sch, sch.get_loops(stage[EXP])[-1], lanes)
    row_reductions.vector_steps(sch, sch.get_loops(stage[PADDED])[-1], lanes, whole)
    row_reductions.vector_steps(sch, col, lanes)
    return sch.mod["main"]
