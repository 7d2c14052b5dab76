"""Reductions of each row over its last axis in vector steps: a sum, mean, max or variance over
the last axis (``legalizer``, ``schedule_rows``), and the parts that softmax's and layer norm's
kernels share (``softmax``, ``layer_norm``).

TVM's own schedules for them (dlight's Reduction rule, topi's ``fast_softmax``) reduce a row one
element at a time, a chain of dependent scalar adds or maxes. Here a row is read as whole vectors
of ``lanes``: reduced into one vector of partial results (a vector add or max per step,
``lane_parts``), then across that vector's lanes (``across_lanes``). The kernel runs its rows in
parallel, every stage of a row inside the row's task (``_parallel_rows``). A layer
norm that an ONNX export before opset 17 wrote as ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div
(a ViT's 197 x 192 rows) took 33 us in three kernels, 13 so and 8 as one ``nn.layer_norm``;
torch's GroupNorm export (an instance norm of the channels reshaped to groups) took 461 us for the
variance of 32 groups of 16384, 33 so (znver4, 2 threads).
"""

from __future__ import annotations

from typing import Callable, Sequence

import tvm
from tvm import relax, s_tir, te, tirx
from tvm.s_tir.schedule import LoopRV

from neo_local.backends.cpu_schedule.rewriting import static_shape

#: a row's value at (leading indices..., column), for ``lane_parts``
RowValue = Callable[..., "tvm.tirx.PrimExpr"]


def lane_parts(value: RowValue, lead: Sequence[int], width: int, lanes: int, reduce, name: str) -> te.Tensor:
    """Per row, ``lanes`` partial results: ``reduce`` (``te.sum``, ``te.max``) of ``value`` over
    the row's ``width // lanes`` vectors, lane by lane."""
    c = te.reduce_axis((0, width // lanes), name="c")
    return te.compute((*lead, lanes), lambda *i: reduce(value(*i[:-1], c * lanes + i[-1]), axis=c), name=name)


def across_lanes(parts: te.Tensor, reduce, name: str) -> te.Tensor:
    """Per row, ``reduce`` of its partial results (``lane_parts``)."""
    *lead, lanes = parts.shape
    lane = te.reduce_axis((0, lanes), name="lane")
    return te.compute(lead, lambda *i: reduce(parts[(*i, lane)], axis=lane), name=name)


def staged_rows(func: tirx.PrimFunc, names: Sequence[str],
                reductions: Sequence[tuple[str, str]]) -> tuple[s_tir.Schedule, dict, LoopRV] | None:
    """A kernel whose stages are the blocks ``names`` (first to last: softmax's, layer norm's) as
    rows in parallel (``_parallel_rows``), each ``lane_parts`` / ``across_lanes`` pair of
    ``reductions`` (their names) in vectors. Returns (the schedule, the stages' blocks by name, the
    last stage's loop over the columns), for the caller's vector steps; None for a function
    without those stages."""
    sch = s_tir.Schedule(func)
    stage = _stages(sch, names)
    if stage is None:
        return None
    *lead, col = sch.get_loops(stage[names[-1]])
    _parallel_rows(sch, stage[names[-1]], [stage[n] for n in names[:-1]], len(lead))
    for part, total in reductions:
        vector_reduction(sch, stage[part], stage[total])
    return sch, stage, col


def _stages(sch: s_tir.Schedule, names: Sequence[str]) -> dict | None:
    """The blocks named ``names`` (a kernel's stages, first to last), with the elementwise
    producers fused before the first inlined into it and the consumers after the last into it;
    None for a function without them all."""
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    found = [sch.get(b).name_hint for b in blocks]
    if not all(n in found for n in names):
        return None
    for b in blocks[:found.index(names[0])]:
        sch.compute_inline(b)
    for b in reversed(blocks[found.index(names[-1]) + 1:]):
        sch.reverse_compute_inline(b)
    return {n: b for n, b in zip(found, blocks) if n in names}


def _parallel_rows(sch: s_tir.Schedule, out, earlier: list, rows: int) -> None:
    """``out``'s first ``rows`` loops (its rows) as one parallel loop, every block of ``earlier``
    computed inside it."""
    loops = sch.get_loops(out)
    row = sch.fuse(*loops[:rows]) if rows > 1 else loops[0]
    sch.parallel(row)
    for b in reversed(earlier):
        sch.compute_at(b, row)


def vector_reduction(sch: s_tir.Schedule, parts, total) -> None:
    """``lane_parts``' block ``parts`` as a vector per step, ``across_lanes``' ``total`` unrolled."""
    *_, lane, c = sch.get_loops(parts)
    sch.reorder(c, lane)
    sch.vectorize(lane)
    init = sch.decompose_reduction(parts, c)
    sch.vectorize(sch.get_loops(init)[-1])
    sch.unroll(sch.get_loops(total)[-1])


def vector_steps(sch: s_tir.Schedule, loop: LoopRV, lanes: int, whole: int | None = None) -> None:
    """``loop``'s first ``whole`` iterations (a multiple of ``lanes``, one at least; by default
    all the whole vectors of its extent) as vectors, the rest (a row's tail) a scalar loop of its
    own. Why: in a vector loop, the tail's guard (a predicate, an ``if_then_else`` on the column)
    makes TVM's VectorizeLoop scalarize the whole loop. A ViT's 3 x 197 x 197 attention scores
    took 99.6 us a layer in softmax so, 39.2 split (znver4, 2 threads; onnxruntime's 28)."""
    extent = int(sch.get(loop).extent)
    whole = extent // lanes * lanes if whole is None else whole
    if whole < extent:
        loop = sch.loop_partition(loop, [whole, None])[0]
    _, vec = sch.split(loop, [None, lanes])
    sch.vectorize(vec)


#: the blocks of ``row_reduce``, by the start of their names (a fused kernel may hold several)
ROW_PART, ROW_TOTAL, ROW_MEAN, ROW_OUT = "row_part", "row_total", "row_mean", "row_out"

#: the reductions ``legalizer`` takes: op -> (TE reducer, whether the result is divided by the
#: width, whether it is of the squared deviations from the row's mean)
REDUCTIONS = {"relax.sum": (te.sum, False, False), "relax.mean": (te.sum, True, False),
              "relax.max": (te.max, False, False), "relax.variance": (te.sum, True, True)}


def row_reduce(x: te.Tensor, op: str, keepdims: bool, lanes: int) -> te.Tensor:
    """``op`` (``REDUCTIONS``) of x over its last axis, whose width is a multiple of ``lanes``. A
    variance takes two passes, as topi's: the mean's, then the squared deviations' (no
    cancellation of a large mean)."""
    *lead, n = (int(d) for d in x.shape)
    reduce, mean, squared = REDUCTIONS[op]
    if squared:
        value = squared_deviations(x, row_mean(x, lanes, (ROW_PART + "_mean", ROW_TOTAL + "_mean", ROW_MEAN)))
    else:
        value = lambda *i: x(*i)  # noqa: E731
    total = across_lanes(lane_parts(value, lead, n, lanes, reduce, ROW_PART), reduce, ROW_TOTAL)
    inv_n = tirx.const(1.0 / n, "float32")
    return te.compute((*lead, 1) if keepdims else tuple(lead),
                      lambda *i: total(*i[:len(lead)]) * inv_n if mean else total(*i[:len(lead)]), name=ROW_OUT)


def row_mean(x: te.Tensor, lanes: int, names: tuple[str, str, str]) -> te.Tensor:
    """Each row's mean over x's last axis: ``lane_parts`` and ``across_lanes`` of a sum, scaled;
    its three blocks named ``names``."""
    *lead, n = (int(d) for d in x.shape)
    total = across_lanes(lane_parts(lambda *i: x(*i), lead, n, lanes, te.sum, names[0]), te.sum, names[1])
    return te.compute(lead, lambda *i: total(*i) * tirx.const(1.0 / n, "float32"), name=names[2])


def squared_deviations(x: te.Tensor, mean: te.Tensor) -> RowValue:
    """(x - its row's ``mean``)^2, a ``RowValue``."""

    def value(*i):
        d = x(*i) - mean(*i[:-1])
        return d * d

    return value


def whole_vector_rows(x: relax.Expr, axes: list[int], lanes: int) -> bool:
    """Whether a float32 ``x`` with a static shape is reduced over its last axis alone (``axes``)
    and that axis fills whole vectors of ``lanes``: what ``row_reduce`` and ``layer_norm`` take."""
    shape = static_shape(x)
    return (str(x.ty.dtype) == "float32" and bool(shape) and [a % len(shape) for a in axes] == [len(shape) - 1]
            and shape[-1] % lanes == 0)


def legalizer(op: str, lanes: int):
    """LegalizeOps entry for ``op``: float32 over the last axis alone, with a static shape whose
    width is a multiple of ``lanes`` -> ``row_reduce``; others -> TVM's own legalization."""
    other = tvm.ir.Op.get(op).get_attr("FLegalize")

    def legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        x = call.args[0]
        axes = call.attrs.axis
        if axes is None or not whole_vector_rows(x, [int(a) for a in axes], lanes) or x.ty.ndim < 2:
            return other(bb, call)
        return bb.call_te(row_reduce, x, op, bool(call.attrs.keepdims), lanes, primfunc_name_hint=op.split(".")[-1])

    return legalize


def schedule_rows(func: tirx.PrimFunc, lanes: int) -> tirx.PrimFunc | None:
    """A kernel of ``row_reduce``'s reductions and the elementwise ops fused around them (a
    decomposed layer norm's ``x - mean``, its normalizing): the output's rows in parallel, the
    other blocks that write whole rows inlined where they can be, the rest and the per-row values
    computed in the row's task, the reductions and the whole rows in vector steps. None for a
    function without ``row_reduce``'s blocks, or whose output's rows are not the reductions'."""
    sch = s_tir.Schedule(func)
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    stages = [b for b in blocks if sch.get(b).name_hint.startswith((ROW_PART, ROW_TOTAL))]
    parts = [b for b in stages if sch.get(b).name_hint.startswith(ROW_PART)]
    if not parts:
        return None
    lead = [int(d) for d in sch.get(parts[0]).writes[0].source.shape[:-1]]
    out = blocks[-1]
    out_shape = [int(d) for d in sch.get(out).writes[0].source.shape]
    if out_shape[:len(lead)] != lead or len(out_shape) > len(lead) + 1:
        return None
    rows = [b for b in blocks if b not in stages and _whole_rows(sch, b, lead)]  # the output's among them
    for b in rows[:-1]:
        try:
            sch.compute_inline(b)
        except Exception:  # noqa: BLE001 (TVM raises ScheduleError subclasses: a second output, say)
            continue
        rows.remove(b)
    _parallel_rows(sch, out, sch.get_child_blocks(sch.get_sblock("root"))[:-1], len(lead))
    for part in parts:
        vector_reduction(sch, part, sch.get_consumers(part)[0])
    for b in rows:
        col = sch.get_loops(b)[-1]
        if int(sch.get(col).extent) >= lanes:
            vector_steps(sch, col, lanes)
    return sch.mod["main"]


def _whole_rows(sch: s_tir.Schedule, block, lead: list[int]) -> bool:
    """Whether ``block`` writes whole rows (the leading dims ``lead`` and a last axis wider than 1),
    not one value per row."""
    shape = [int(d) for d in sch.get(block).writes[0].source.shape]
    return len(shape) == len(lead) + 1 and shape[:-1] == lead and shape[-1] > 1
