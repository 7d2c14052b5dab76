"""ONNX BitCast, TensorScatter and Det: operators TVM 0.27's Relax importer lacks."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import dtype_of, index, static_shape

#: Det is expanded over permutations (n! products): fine for the small matrices models carry
MAX_DET_SIZE = 5


@register("BitCast", 26)
def bitcast(bb: Any, node: OnnxNode) -> Any:
    """The input's bits read as the ``to`` type (same bit width): Relax has no reinterpret op,
    so a TE compute with TIR's ``reinterpret``."""
    from tvm import te, tirx
    from tvm.relax.frontend.onnx.onnx_frontend import get_type

    x = node.input(0)
    source, target = dtype_of(bb, x), get_type(node.attr("to"))
    if "bool" in (source, target):
        raise ValueError(f"BitCast from {source} to {target} is not supported (bool has no defined bit layout here)")
    if np.dtype(source).itemsize != np.dtype(target).itemsize:
        raise ValueError(f"BitCast from {source} to {target}: the bit widths differ")
    return bb.emit_te(lambda t: te.compute(t.shape, lambda *i: tirx.reinterpret(target, t(*i)), name="bitcast"), x)


@register("TensorScatter", 24)
def tensor_scatter(bb: Any, node: OnnxNode) -> Any:
    """KV-cache update: cache position ``s`` of batch entry ``b`` takes ``update[s - w[b]]`` (mod
    the cache length in circular mode) when that index lies inside the update, else keeps the
    past value; one gather along the sequence axis and a select."""
    from tvm import relax

    past, update, writes = node.input(0), node.input(1), node.input(2)
    shape = static_shape(bb, past, "TensorScatter past_cache")
    axis = int(node.attr("axis", -2)) % len(shape)
    capacity, length = shape[axis], static_shape(bb, update, "TensorScatter update")[axis]
    position_shape = [1] * len(shape)
    position_shape[axis] = capacity
    positions = relax.op.reshape(relax.op.arange(0, capacity, 1, "int64"), position_shape)
    if writes is None:
        offset = positions
    else:
        batch_shape = [shape[0]] + [1] * (len(shape) - 1)
        offset = relax.op.subtract(positions, relax.op.reshape(relax.op.astype(writes, "int64"), batch_shape))
    if node.attr("mode", "linear") == "circular":
        offset = relax.op.floor_mod(offset, relax.const(capacity, "int64"))
    offset = bb.emit(relax.op.broadcast_to(offset, shape))
    inside = relax.op.logical_and(relax.op.greater_equal(offset, relax.const(0, "int64")),
                                  relax.op.less(offset, relax.const(length, "int64")))
    taken = relax.op.gather_elements(update, relax.op.clip(offset, 0, length - 1), axis=axis)
    return relax.op.where(inside, taken, past)


@register("Det", 22)
def det(bb: Any, node: OnnxNode) -> Any:
    """Determinant of [..., n, n] for n <= MAX_DET_SIZE, as the Leibniz sum over permutations of
    the matrix entries (each entry a [...] tensor)."""
    from tvm import relax

    x = node.input(0)
    shape = static_shape(bb, x, "Det input")
    n = shape[-1]
    if n > MAX_DET_SIZE:
        raise ValueError(f"Det of {n}x{n} matrices is not supported (at most {MAX_DET_SIZE}x{MAX_DET_SIZE})")
    rows = [index(bb, x, i, axis=len(shape) - 2) for i in range(n)]
    entries = [[index(bb, row, j, axis=len(shape) - 2) for j in range(n)] for row in rows]
    total = None
    for perm in itertools.permutations(range(n)):
        term = entries[0][perm[0]]
        for i in range(1, n):
            term = relax.op.multiply(term, entries[i][perm[i]])
        if _parity(perm):
            total = relax.op.negative(term) if total is None else relax.op.subtract(total, term)
        else:
            total = term if total is None else relax.op.add(total, term)
    return total


def _parity(perm: tuple[int, ...]) -> int:
    """1 for an odd permutation, 0 for an even one."""
    inversions = sum(1 for i, j in itertools.combinations(range(len(perm)), 2) if perm[i] > perm[j])
    return inversions % 2
