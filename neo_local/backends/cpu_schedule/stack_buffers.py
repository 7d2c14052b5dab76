"""The TIR pipeline the CPU schedules are built with: TVM's own, with small buffers on the stack.

TVM's LowerTVMBuiltin keeps a CPU buffer of constant size on the stack only below 1024 bytes
(``kMaxStackAlloca``, a strict bound); every other buffer is taken from TVMBackendAllocWorkspace
and given back after use. A register tile of 16 accumulators of 16 float32 lanes (2 x 8, 4 x 4:
the tiles an AVX-512 target picks, ``max_acc`` 16) is exactly 1024 bytes, and so is allocated
and freed in every parallel task of its kernel; a padded row per task (``pad_per_row``) is
larger still. ``stack_buffers`` marks each constant buffer up to ``STACK_BYTES`` as TVM's own
``disable_lower_builtin``, which LowerTVMBuiltin leaves to LLVM, where it is an alloca in the
function's entry. Measured on znver4 (2 threads, one process, 7 rounds): MobileNetV2-style 3%
and ShuffleNetV2 8% faster.
"""

from __future__ import annotations

import tvm
from tvm import tirx

from neo_local.backends.cpu_schedule.tir_rewrite import rewrite

#: the largest buffer put on the stack: a register tile of 64 vectors of 64 bytes, or a padded
#: row of a few KB. Larger ones (a K-blocked task's whole output, a padded input) stay workspace.
STACK_BYTES = 4096

#: the annotation of an allocation that LowerTVMBuiltin leaves as it is (TVM's kDisableLowerTVMBuiltin)
KEEP = "disable_lower_builtin"


def _constant_bytes(buffer: tirx.Buffer) -> int | None:
    size = buffer.dtype.bits * buffer.dtype.lanes // 8
    for extent in buffer.shape:
        if not isinstance(extent, tirx.IntImm):
            return None
        size *= int(extent)
    return size


def _on_stack(stmt: tirx.Stmt) -> tirx.Stmt | None:
    """A small global allocation marked ``KEEP``; None for any other statement."""
    if not isinstance(stmt, tirx.AllocBuffer):
        return None
    size = _constant_bytes(stmt.buffer)
    if stmt.buffer.scope() != "global" or size is None or size > STACK_BYTES or KEEP in stmt.annotations:
        return None
    return tirx.AllocBuffer(stmt.buffer, {**stmt.annotations, KEEP: tirx.IntImm("bool", 1)})


@tirx.transform.prim_func_pass(opt_level=0, name="neo_local.StackBuffers")
def stack_buffers(func: tirx.PrimFunc, _mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tirx.PrimFunc:
    """Small constant buffers on the stack (module doc)."""
    return func.with_body(rewrite(func.body, _on_stack))

