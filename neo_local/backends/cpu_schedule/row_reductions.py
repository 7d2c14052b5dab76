"""Reductions of each row over its last axis in vector steps: the parts that softmax's and layer
norm's kernels share (``softmax``, ``layer_norm``).

TVM's own schedules for them (topi's ``fast_softmax``, dlight's Reduction rule for layer norm)
reduce a row one element at a time, a chain of dependent scalar adds or maxes. Here a row is read
as whole vectors of ``lanes``: reduced into one vector of partial results (a vector add or max per
step, ``lane_parts``), then across that vector's lanes (``across_lanes``). The kernel runs its rows
in parallel, every stage of a row inside the row's task (``rows_in_parallel``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import tvm
from tvm import s_tir, te
from tvm.s_tir.schedule import LoopRV

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


def stages(sch: s_tir.Schedule, names: Sequence[str]) -> dict | None:
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


def rows_in_parallel(sch: s_tir.Schedule, stage: dict, names: Sequence[str]) -> tuple[LoopRV, LoopRV]:
    """The last stage's rows as one parallel loop, every other stage computed inside it; returns
    (that loop, the last stage's loop over the columns)."""
    *lead, col = sch.get_loops(stage[names[-1]])
    row = sch.fuse(*lead) if len(lead) > 1 else lead[0]
    sch.parallel(row)
    for name in reversed(names[:-1]):
        sch.compute_at(stage[name], row)
    return row, col


def vector_reduction(sch: s_tir.Schedule, parts, total) -> None:
    """``lane_parts``' block ``parts`` as a vector per step, ``across_lanes``' ``total`` unrolled."""
    *_, lane, c = sch.get_loops(parts)
    sch.reorder(c, lane)
    sch.vectorize(lane)
    init = sch.decompose_reduction(parts, c)
    sch.vectorize(sch.get_loops(init)[-1])
    sch.unroll(sch.get_loops(total)[-1])


def vector_steps(sch: s_tir.Schedule, loop: LoopRV, lanes: int, whole: int) -> None:
    """``loop``'s first ``whole`` iterations (a multiple of ``lanes``, one at least) as vectors,
    the rest (a row's tail) a scalar loop of its own. Why: in a vector loop, the tail's guard (a
    predicate, an ``if_then_else`` on the column) makes TVM's VectorizeLoop scalarize the whole
    loop. A ViT's 3 x 197 x 197 attention scores took 99.6 us a layer in softmax so, 39.2 split
    (znver4, 2 threads; onnxruntime's 28)."""
    if whole < int(sch.get(loop).extent):
        loop = sch.loop_partition(loop, [whole, None])[0]
    _, vec = sch.split(loop, [None, lanes])
    sch.vectorize(vec)
