"""Large convs fetch the next task group's weights ahead of time, spread over the current group.

A register-tiled conv's parallel tasks run in groups that share one block of output channels:
every row (or tile of pixels) of those channels, one after another. The first task of a group reads
the group's weights from memory and the others find them in cache. Inside a model whose weights
outgrow the caches, that first task waits on memory while its cores compute nothing, and the
others compute while the memory bus idles: the weight stream and the arithmetic do not overlap.
ResNet-50's 512 -> 2048 1x1 conv at 7x7 (4 MB of weights; 128 KB per group of 4 output chunks, 13
tasks of 4 pixels each) ran 480-510 us alone in cache and 590-630 us with its weights cold.

``schedules.schedule_conv`` marks the reduction's outer loop of such a conv (``ATTR``: the weight
buffer, the floats of a group's weights, the tasks per group, the groups); ``prefetch_weights``, a
pass of the build's TIR pipeline after lowering, puts in that loop a few ``llvm.prefetch`` of the
next group's weights, each task a share of them, each step of the loop a share of the task's. The
same kernel, alternated with its unprefetched build, its weights rotated over 12 copies (48 MB:
cold), 30 rounds (znver4, 2 threads), three runs: 0.89, 0.91 and 0.93 of its time (616 -> 546 us
in the first), within 5% of its time in cache. ResNet-50-style, the two builds alternated in one
process on a noisy machine (paired medians of 30-40 rounds): 0.995, 0.976 and 1.004 at 2 threads,
0.973 at one. Only flat convs are marked (one register tile of pixels per task, the reduction
run once in it: ``schedules._mark_prefetch``). Convs that K-block (``schedules.default_k_block``)
stream their weights block by block already; prefetching each block's successor in a 3x3 conv
(512 -> 512 at 7x7, 165 lines at the start of each row) made it 14% slower.
"""

from __future__ import annotations

import math

import tvm
from tvm import tirx

from neo_local.backends.cpu_schedule.tir_rewrite import rewrite, with_loop

#: the loop annotation ``prefetch_weights`` reads: [weight buffer name, floats per group, tasks per
#: group, groups]
ATTR = "neo_local.prefetch_weights"
#: convs with fewer bytes of weights than this are not marked: their weights stay in a model's L3
MIN_WEIGHT_BYTES = 1 << 20
#: bytes per prefetch (a cache line)
LINE_BYTES = 64


@tirx.transform.prim_func_pass(opt_level=0, name="neo_local.PrefetchWeights")
def prefetch_weights(func: tirx.PrimFunc, _mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tirx.PrimFunc:
    """Every loop marked ``ATTR`` inside a parallel loop, with its prefetches (module doc). Only
    kernels whose schedule marked one (the function's ``ATTR`` attribute) are walked."""
    if func.attrs is None or ATTR not in func.attrs:
        return func
    flat = {}

    def find(stmt: tirx.Stmt) -> None:
        if isinstance(stmt, tirx.DeclBuffer) and len(stmt.buffer.shape) == 1:
            flat[stmt.buffer.name] = stmt.buffer

    rewrite(func.body, find)

    def in_task(stmt: tirx.Stmt) -> tirx.Stmt | None:
        if isinstance(stmt, tirx.For) and stmt.kind == tirx.ForKind.PARALLEL:
            return with_loop(stmt, body=rewrite(stmt.body, lambda s: _prefetched(s, stmt.loop_var, flat)))
        return None

    return func.with_body(rewrite(func.body, in_task))


def _prefetched(stmt: tirx.Stmt, task: tirx.Var, flat: dict) -> tirx.Stmt | None:
    """A marked loop under the parallel loop of ``task``, each of its steps first prefetching its
    share of the next group's weights."""
    if not isinstance(stmt, tirx.For) or ATTR not in stmt.annotations:
        return None
    name, group_floats, per_group, groups = stmt.annotations[ATTR]
    buffer = flat.get(str(name))
    if buffer is None:
        return None
    group_floats, per_group, groups = int(group_floats), int(per_group), int(groups)
    floats_per_line = LINE_BYTES * 8 // buffer.dtype.bits
    lines = group_floats // floats_per_line
    per_task = math.ceil(lines / per_group)
    steps = int(stmt.extent)
    per_step = math.ceil(per_task / steps)
    nxt = (task // per_group + 1) % groups
    first = (task % per_group) * per_task + (stmt.loop_var - stmt.min) * per_step
    fetches = []
    for j in range(per_step):
        line = tirx.min(first + j, lines - 1)
        index = (nxt * group_floats + line * floats_per_line).astype(str(buffer.shape[0].ty))
        address = tirx.address_of(tirx.BufferLoad(buffer, [index]))
        fetches.append(tirx.Evaluate(tirx.call_intrin("void", "tirx.prefetch", address, 0, 3, 1)))
    return with_loop(stmt, body=tirx.SeqStmt([*fetches, stmt.body]))
