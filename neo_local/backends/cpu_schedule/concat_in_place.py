"""Concatenations without a copy: each input's producer writes its slice of the result.

A concatenation kernel reads every input and writes it again (SqueezeNet's fire modules: two
1x1/3x3 expansions concatenated, eight times; Inception's branches). Where every input of a
concatenation is the output of a kernel used by nothing else, each such kernel is rewritten to
write into the concatenation's result at its offset along the axis, and the concatenation
disappears: the first producer allocates the whole result (``call_tir``), each later one writes
its part in place (``call_tir_inplace``, the result passed along), in the order the block runs
them. The rewrite works on scheduled kernels (their output buffer's accesses shifted), so the
schedules and the tuning records never see it; for the same reason it checks that the
concatenation kernel still only copies, since the schedules inline elementwise producers into it
(``cat(a + b, a - b)`` computes in its block). A producer that reaches its output any other way
than through loads, stores and block regions (its data pointer) is left as it was, and its
concatenation with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
import tvm_ffi
from tvm import relax, tirx
from tvm.s_tir.stmt import TensorRegion

from neo_local.backends.cpu_schedule.rewriting import is_call_tir, static_shape

#: the block topi's concatenate computes (the legalization of ``relax.concat``)
CONCAT_BLOCK = "T_concat"


@dataclass(frozen=True)
class _Producer:
    """A concatenation input's binding: its position in the block and its ``call_tir``."""

    position: int
    binding: relax.VarBinding
    offset: int


def write_concats_in_place(mod: tvm.IRModule) -> tuple[tvm.IRModule, int]:
    """``mod`` with the concatenations of its ``main`` whose inputs all qualify written in place,
    and how many there were."""
    main = mod["main"]
    if not isinstance(main.body, relax.SeqExpr):
        return mod, 0
    uses = _use_counts(main)
    builder = relax.BlockBuilder(mod)
    rewritten = [_rewrite_block(builder, mod, block, uses) if isinstance(block, relax.DataflowBlock) else (block, 0)
                 for block in main.body.blocks]
    count = sum(n for _, n in rewritten)
    if not count:
        return mod, 0
    blocks = [block for block, _ in rewritten]
    builder.update_func(mod.get_global_var("main"), relax.Function(
        main.params, relax.SeqExpr(blocks, main.body.body), main.ret_ty, main.is_pure, main.attrs))
    return relax.transform.DeadCodeElimination(["main"])(builder.get()), count


def _rewrite_block(builder: relax.BlockBuilder, mod: tvm.IRModule, block: relax.DataflowBlock,
                   uses: dict) -> tuple[relax.DataflowBlock, int]:
    """The block with its qualifying concatenations written in place, and how many."""
    bindings = list(block.bindings)
    position = {b.var: i for i, b in enumerate(bindings)}
    count = 0
    for i, binding in enumerate(block.bindings):
        axis = _concat_axis(mod, binding.value)
        if axis is None:
            continue
        producers = _producers(mod, binding.value.args[1].fields, axis, bindings, position, uses)
        if producers is None:
            continue
        out_ty = binding.var.ty
        previous = None
        for producer in sorted(producers, key=lambda p: p.position):
            call = producer.binding.value
            func = _writing_into(mod[call.args[0]], static_shape(binding.var), axis, producer.offset)
            if func is None:
                break
            gv = builder.add_func(func, f"{call.args[0].name_hint}_into_concat")
            args = list(call.args[1].fields)
            value = (relax.op.call_tir(gv, relax.Tuple(args), out_ty) if previous is None else
                     relax.op.call_tir_inplace(gv, relax.Tuple([*args, previous]), [len(args)], out_ty))
            previous = relax.DataflowVar(producer.binding.var.name, out_ty)
            bindings[producer.position] = relax.VarBinding(previous, value)
        else:
            bindings[i] = relax.VarBinding(binding.var, previous)
            count += 1
            continue
        for producer in producers:  # a producer that cannot write in place keeps the copy
            bindings[producer.position] = producer.binding
    return (relax.DataflowBlock(bindings) if count else block), count


def _concat_axis(mod: tvm.IRModule, value: relax.Expr) -> int | None:
    """The axis ``value`` concatenates along, when it is a ``call_tir`` of a plain concatenation
    of two or more static-shaped inputs; None otherwise."""
    if not is_call_tir(value) or len(value.args[1].fields) < 2:
        return None
    func = mod[value.args[0]]
    if not isinstance(func, tirx.PrimFunc) or not _copies_only(func):
        return None
    shapes = [static_shape(a) for a in value.args[1].fields]
    out = [int(d) for d in func.params[-1].shape]
    if any(s is None or len(s) != len(out) for s in shapes):
        return None
    differing = {d for s in shapes for d in range(len(out)) if s[d] != out[d]}
    if len(differing) != 1:
        return None
    (axis,) = differing
    return axis if sum(s[axis] for s in shapes) == out[axis] else None


def _producers(mod: tvm.IRModule, inputs, axis: int, bindings: list, position: dict,
               uses: dict) -> list[_Producer] | None:
    """Each input's producing binding with its offset along ``axis``; None unless every input is a
    dataflow var of this block, used only here, bound to a ``call_tir`` of a PrimFunc whose last
    parameter is its one output."""
    producers, offset = [], 0
    for value in inputs:
        if not isinstance(value, relax.DataflowVar) or value not in position or uses.get(value, 0) != 1:
            return None
        binding = bindings[position[value]]
        call = binding.value
        if not is_call_tir(call) or not isinstance(mod[call.args[0]], tirx.PrimFunc):
            return None
        if len(mod[call.args[0]].params) != len(call.args[1].fields) + 1:
            return None
        producers.append(_Producer(position[value], binding, offset))
        offset += static_shape(value)[axis]
    return producers


def _copies_only(func: tirx.PrimFunc) -> bool:
    """Whether ``func`` is one ``T_concat`` block storing a choice (``if_then_else``) among loads
    of its inputs, each loaded once, at the stored index on every axis but one. The schedules
    inline elementwise producers into it (``cat(a + b, a - b)``): then it computes and is no copy."""
    blocks: list = []
    tvm_ffi.structural_walk(func.body, [(tvm.s_tir.stmt.SBlock, blocks.append)])
    blocks = [b for b in blocks if b.name_hint != "root"]
    if len(blocks) != 1 or blocks[0].name_hint != CONCAT_BLOCK or not isinstance(blocks[0].body, tirx.BufferStore):
        return False
    store = blocks[0].body
    loads: list = []

    def choice_of_loads(e) -> bool:
        if isinstance(e, tvm.ir.TensorLoad):
            loads.append(e)
            return True
        return (isinstance(e, tvm.ir.Call) and e.op.same_as(tvm.ir.Op.get("prim.if_then_else"))
                and choice_of_loads(e.args[1]) and choice_of_loads(e.args[2]))

    if not choice_of_loads(store.value):
        return False
    inputs = func.params[:-1]
    sources = [next((i for i, p in enumerate(inputs) if p.same_as(e.source)), -1) for e in loads]
    if sorted(sources) != list(range(len(inputs))):
        return False
    return all(sum(not tvm_ffi.structural_equal(a, b) for a, b in zip(e.indices, store.indices)) <= 1 for e in loads)


def _writing_into(func: tirx.PrimFunc, shape: list[int], axis: int, offset: int) -> tirx.PrimFunc | None:
    """``func`` with its output (last parameter) replaced by a buffer of ``shape`` it writes at
    ``offset`` along ``axis``; None when the old output is still referenced after the rewrite."""
    old = func.params[-1]
    big = tirx.decl_buffer(shape, old.dtype, old.name)

    def shifted(indices):
        return [i + offset if d == axis else i for d, i in enumerate(indices)]

    def store(s):
        return tirx.BufferStore(big, s.value, shifted(s.indices)) if s.buffer.same_as(old) else s

    def load(e):
        return tirx.BufferLoad(big, shifted(e.indices)) if e.source.same_as(old) else e

    def region(r):
        if not r.source.same_as(old):
            return r
        return tirx.BufferRegion(big, [tvm.ir.Range.from_min_extent(x.min + offset, x.extent) if d == axis else x
                                       for d, x in enumerate(r.region)])

    body = tvm_ffi.structural_map(func.body, [(tirx.BufferStore, store), (tvm.ir.TensorLoad, load),
                                              (TensorRegion, region)])
    left: list = []
    tvm_ffi.structural_walk(body, [(tvm.ir.expr.Var, lambda v: left.append(v) if v.same_as(old) else None)])
    if left:
        return None
    return tirx.PrimFunc([*func.params[:-1], big], body, func.ret_type, func.attrs)


def _use_counts(func: relax.Function) -> dict:
    """How many times each var is used in ``func``."""
    counts: dict = {}

    def count(expr: relax.Expr) -> None:
        if isinstance(expr, relax.Var):
            counts[expr] = counts.get(expr, 0) + 1

    relax.analysis.post_order_visit(func.body, count)
    return counts
