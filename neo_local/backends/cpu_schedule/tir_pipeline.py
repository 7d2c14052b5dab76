"""The TIR pipeline the CPU schedules are built with: TVM's own (s_tir), then ours.

``small_kernels.serial_loops`` takes the thread pool out of the kernels too small for it,
``stack_buffers`` keeps small buffers on the stack, and ``weight_prefetch.prefetch_weights`` has
large convs fetch their next weights early; all run after TVM's lowering and before the
host's finalization (LowerTVMBuiltin, which places the buffers, and the code generator, which
makes each parallel loop a thread-pool launch).
"""

from __future__ import annotations

import tvm
from tvm import tirx

from neo_local.backends.cpu_schedule.small_kernels import serial_loops
from neo_local.backends.cpu_schedule.stack_buffers import stack_buffers
from neo_local.backends.cpu_schedule.weight_prefetch import prefetch_weights

#: the name ``pipeline()`` registers with TVM's tirx.build
PIPELINE = "neo_local_cpu"


def vectorizable_rounding() -> None:
    """Mark ``tirx.nearbyint`` (round half to even: every requantization's rounding) vectorizable,
    as TVM 0.27 marks round, floor and the other math ops but not it. Without the mark, TVM's
    VectorizeLoop scalarized every loop holding one, each epilogue of an int8 model's kernels, and
    left them for LLVM to vectorize again: where LLVM did not (a 12-pixel uint8 epilogue), the
    kernel ran its requantization one value at a time."""
    op = tvm.ir.Op.get("tirx.nearbyint")
    if not op.get_attr("TVectorizable"):
        op.set_attr("TVectorizable", True)


vectorizable_rounding()


def _factory():
    lower, finalize_host, finalize_device = tirx.get_tir_pipeline("s_tir")
    return tvm.transform.Sequential([lower, serial_loops, stack_buffers, prefetch_weights]), finalize_host, finalize_device


def pipeline() -> str:
    """The name to build CPU schedules with (``tir_pipeline=``)."""
    tirx.compilation_pipeline.register_tir_pipeline(PIPELINE, _factory)
    return PIPELINE
