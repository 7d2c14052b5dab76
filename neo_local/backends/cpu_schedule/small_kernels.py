"""Kernels too small for the thread pool run on the calling thread.

Every parallel loop is a launch on TVM's thread pool and a join: the other thread is woken, and the
data each thread wrote moves to the core that reads it next. On znver4 (2 threads) that costs about
0.3-0.9 us a kernel, more than a small kernel's whole work: a TFLite CNN's input dequantize (3072
values, in 16-lane vectors) took 0.26 us on one thread and 1.1-1.7 us on two; its softmax 0.19 and
0.49 us. ``mark`` flags a kernel of the simple schedules (elementwise, layout, reductions, softmax)
with fewer than ``SERIAL_ITERATIONS`` iterations of its blocks, and ``serial_loops``, a pass of the
build's TIR pipeline, makes its parallel loops serial. The register-tiled kernels (conv, depthwise,
matmul) keep their loops: their serial forms are the tuner's to choose, and a VNNI conv built
serial was 7x slower (LLVM hoists its weights out of the loop and spills them).

Measured in one process, builds of the model with and without the flag, their calls alternated
in batches, the order reversed each batch (znver4, 2 threads): the TFLite int8 CNN 0.955 -> 0.876
of session 37's time, the float CNN 1.017 -> 0.993, the MobileNetV2 int8 0.939 -> 0.934; the
ONNX suite's float models within their build-to-build noise (up to 5% on ShuffleNetV2).
"""

from __future__ import annotations

import math

import tvm
from tvm import s_tir, tirx

from neo_local.backends.cpu_schedule.tir_rewrite import rewrite, with_loop

#: the block iterations (outputs x reduction steps, over every block) below which a kernel is serial
SERIAL_ITERATIONS = 16384

#: the kinds of schedule whose kernels ``mark`` may make serial
SIMPLE_KINDS = frozenset({"generic", "dlight", "softmax", "layer_norm", "rows", "resize"})

#: the PrimFunc attribute ``serial_loops`` reads
ATTR = "neo_local.serial"


def iterations(func: tirx.PrimFunc) -> int:
    """How many times the blocks of an unscheduled ``func`` run, all together."""
    sch = s_tir.Schedule(func)
    return sum(math.prod(int(sch.get(loop).extent) for loop in sch.get_loops(block))
               for block in sch.get_child_blocks(sch.get_sblock("root")))


def mark(func: tirx.PrimFunc, scheduled: tirx.PrimFunc, kind: str) -> tirx.PrimFunc:
    """``scheduled`` (the schedule ``kind`` made of ``func``), flagged serial when it is small."""
    if kind not in SIMPLE_KINDS:
        return scheduled
    try:
        small = iterations(func) < SERIAL_ITERATIONS
    except (tvm.TVMError, TypeError):  # a block under loops of no constant extent: not small
        return scheduled
    return scheduled.with_attr(ATTR, True) if small else scheduled


def _serial(stmt: tirx.Stmt) -> tirx.Stmt | None:
    if isinstance(stmt, tirx.For) and stmt.kind == tirx.ForKind.PARALLEL:
        return with_loop(stmt, kind=tirx.ForKind.SERIAL)
    return None


@tirx.transform.prim_func_pass(opt_level=0, name="neo_local.SerialLoops")
def serial_loops(func: tirx.PrimFunc, _mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tirx.PrimFunc:
    """The parallel loops of a function ``mark`` flagged, serial (module doc)."""
    if not func.attrs or not func.attrs.get(ATTR, False):
        return func
    return func.with_body(rewrite(func.body, _serial))
