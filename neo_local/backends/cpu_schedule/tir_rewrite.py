"""Rewriting lowered TIR statements bottom-up, for the passes of the CPU pipeline (``tir_pipeline``).

TVM 0.27's Python binding has no statement mutator, and a lowered kernel is flat (allocations
are statements of a sequence, not scopes), so the passes need only walk the statements that hold
others: sequences, loops, attributes and branches.
"""

from __future__ import annotations

from typing import Callable

from tvm import tirx

#: a statement's replacement, or None to keep it
Change = Callable[[tirx.Stmt], "tirx.Stmt | None"]


def rewrite(stmt: tirx.Stmt, change: Change) -> tirx.Stmt:
    """``stmt`` with ``change`` applied to it and to every statement inside it, inner ones first;
    a statement whose parts did not change is returned as it was (the same object)."""
    stmt = _children(stmt, change)
    new = change(stmt)
    return stmt if new is None else new


def _children(stmt: tirx.Stmt, change: Change) -> tirx.Stmt:
    if isinstance(stmt, tirx.SeqStmt):
        seq = [rewrite(s, change) for s in stmt.seq]
        return stmt if all(a.same_as(b) for a, b in zip(seq, stmt.seq)) else tirx.SeqStmt(seq)
    if isinstance(stmt, tirx.For):
        body = rewrite(stmt.body, change)
        return stmt if body.same_as(stmt.body) else with_loop(stmt, body=body)
    if isinstance(stmt, tirx.AttrStmt):
        body = rewrite(stmt.body, change)
        return stmt if body.same_as(stmt.body) else tirx.AttrStmt(stmt.node, stmt.attr_key, stmt.value, body)
    if isinstance(stmt, tirx.IfThenElse):
        then, other = rewrite(stmt.then_case, change), stmt.else_case and rewrite(stmt.else_case, change)
        if then.same_as(stmt.then_case) and (other is None or other.same_as(stmt.else_case)):
            return stmt
        return tirx.IfThenElse(stmt.condition, then, other)
    return stmt


def with_loop(loop: tirx.For, body: tirx.Stmt | None = None, kind: tirx.ForKind | None = None) -> tirx.For:
    """``loop`` with another body or kind."""
    return tirx.For(loop.loop_var, loop.min, loop.extent, loop.kind if kind is None else kind,
                    loop.body if body is None else body, loop.thread_binding, loop.annotations, loop.step)
