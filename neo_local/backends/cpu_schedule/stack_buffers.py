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

#: the largest buffer put on the stack: a register tile of 64 vectors of 64 bytes, or a padded
#: row of a few KB. Larger ones (a K-blocked task's whole output, a padded input) stay workspace.
STACK_BYTES = 4096

#: the annotation of an allocation that LowerTVMBuiltin leaves as it is (TVM's kDisableLowerTVMBuiltin)
KEEP = "disable_lower_builtin"

#: the name ``pipeline()`` registers with TVM's tirx.build
PIPELINE = "neo_local_cpu"


def _constant_bytes(buffer: tirx.Buffer) -> int | None:
    size = buffer.dtype.bits * buffer.dtype.lanes // 8
    for extent in buffer.shape:
        if not isinstance(extent, tirx.IntImm):
            return None
        size *= int(extent)
    return size


def _on_stack(stmt: tirx.Stmt) -> tirx.Stmt:
    """``stmt`` with its small global allocations marked ``KEEP``; the statements that can hold
    allocations (sequences, loops, attributes, branches) are searched, the rest kept as they are."""
    if isinstance(stmt, tirx.AllocBuffer):
        size = _constant_bytes(stmt.buffer)
        if stmt.buffer.scope() != "global" or size is None or size > STACK_BYTES or KEEP in stmt.annotations:
            return stmt
        return tirx.AllocBuffer(stmt.buffer, {**stmt.annotations, KEEP: tirx.IntImm("bool", 1)})
    if isinstance(stmt, tirx.SeqStmt):
        seq = [_on_stack(s) for s in stmt.seq]
        return stmt if all(a.same_as(b) for a, b in zip(seq, stmt.seq)) else tirx.SeqStmt(seq)
    if isinstance(stmt, tirx.For):
        body = _on_stack(stmt.body)
        return stmt if body.same_as(stmt.body) else tirx.For(
            stmt.loop_var, stmt.min, stmt.extent, stmt.kind, body, stmt.thread_binding, stmt.annotations, stmt.step)
    if isinstance(stmt, tirx.AttrStmt):
        body = _on_stack(stmt.body)
        return stmt if body.same_as(stmt.body) else tirx.AttrStmt(stmt.node, stmt.attr_key, stmt.value, body)
    if isinstance(stmt, tirx.IfThenElse):
        then, other = _on_stack(stmt.then_case), stmt.else_case and _on_stack(stmt.else_case)
        if then.same_as(stmt.then_case) and (other is None or other.same_as(stmt.else_case)):
            return stmt
        return tirx.IfThenElse(stmt.condition, then, other)
    return stmt


@tirx.transform.prim_func_pass(opt_level=0, name="neo_local.StackBuffers")
def stack_buffers(func: tirx.PrimFunc, _mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tirx.PrimFunc:
    """Small constant buffers on the stack (module doc)."""
    return func.with_body(_on_stack(func.body))


def _factory():
    lower, finalize_host, finalize_device = tirx.get_tir_pipeline("s_tir")
    return tvm.transform.Sequential([lower, stack_buffers]), finalize_host, finalize_device


def pipeline() -> str:
    """The name to build CPU schedules with (``tir_pipeline=``): TVM's default CPU pipeline
    (s_tir), then ``stack_buffers`` before the host's finalization (LowerTVMBuiltin)."""
    tirx.compilation_pipeline.register_tir_pipeline(PIPELINE, _factory)
    return PIPELINE
