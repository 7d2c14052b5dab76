"""Dense layers' legalization: their constant weights repacked at compile time.

float32: ``matmul(x[..., M, K], C[K, N])`` with a constant ``C`` and at least 2 rows reads ``C``
as [N/L, K, L] (``panels``; L: the schedule's vector lanes), so each vector of output columns
finds its weights in one run down K instead of one vector per 4N-byte row. Measured (Zen 3, 2
threads, one process): BERT-style 0.609 -> 0.492 ms, its dense kernels 12-28% faster.

bfloat16 (the build's CompilerOptions ``precision``): ``x`` rounded to bfloat16
(``bf16_dot.to_bits``, which fuses into the producing kernel) times ``C`` rounded once at compile
time and repacked as [K/2, N, 2] (each output column's two input rows adjacent: the 32-bit word
pairs one ``vdpbf16ps`` step reads), summed in float32. ``schedules.schedule_matmul`` tiles both as
it tiles any float32 matmul, and tensorizes each (column vector, input pair) step of the latter
into the instruction.

Products of two computed values (attention's Q K^T and its weights times V) keep Relax's layout
and float32: their second operand would need the repacking at run time.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, te

from neo_local.backends.cpu_schedule import bf16_dot
from neo_local.backends.cpu_schedule.int8_dot import DOT_ATTR, DotInstruction
from neo_local.backends.cpu_schedule.rewriting import plain_dense

#: the block name ``schedules.schedule_matmul`` looks for: Relax's legalized matmul (dense layers,
#: batched attention products), ``matmul_panels_compute`` and ``matmul_dot_compute``
MATMUL_BLOCK = "matmul"


def dense_dims(call: relax.Call, group: int, lanes: int) -> tuple[int, int] | None:
    """(K, N) of a float32 ``matmul(x[..., M, K], C[K, N])`` that a kernel stepping ``group``
    input rows and ``lanes`` columns at a time can take: ``C`` a constant, K a multiple of
    ``group``, N of ``lanes``, M at least 2 (one-row dense layers become convs:
    ``passes.dense_as_conv``); None otherwise."""
    shapes = plain_dense(call)
    if shapes is None or shapes[0][-2] < 2:
        return None
    k, n = shapes[1]
    return (k, n) if k % group == 0 and n % lanes == 0 else None


def pair_rows(weights: np.ndarray, group: int) -> np.ndarray:
    """[K, N] -> [K/group, N, group]: each column's ``group`` consecutive rows adjacent."""
    k, n = weights.shape
    return np.ascontiguousarray(weights.reshape(k // group, group, n).transpose(0, 2, 1))


def matmul_dot_compute(x: te.Tensor, weights: te.Tensor, name: str) -> te.Tensor:
    """out[..., m, n] = sum_{g, k} widen(x[..., m, g * group + k]) * widen(weights[g, n, k]),
    ``x`` and ``weights`` in the dot instruction ``name``'s operand types (``pair_rows``' layout)."""
    dot = bf16_dot.BY_NAME[name]
    groups, n, group = (int(d) for d in weights.shape)
    rg = te.reduce_axis((0, groups), name="rg")
    rk = te.reduce_axis((0, group), name="rk")

    def body(*i):
        row = x[(*i[:-1], rg * group + rk)]
        return te.sum(dot.widen(row) * dot.widen(weights[rg, i[-1], rk]), axis=[rg, rk])

    return te.compute((*x.shape[:-1], n), body, name=MATMUL_BLOCK, attrs={DOT_ATTR: name})


def panels(weights: np.ndarray, lanes: int) -> np.ndarray:
    """[K, N] -> [N/lanes, K, lanes]: each vector of output columns' weights in one run down K."""
    k, n = weights.shape
    return np.ascontiguousarray(weights.reshape(k, n // lanes, lanes).transpose(1, 0, 2))


def matmul_panels_compute(x: te.Tensor, packed: te.Tensor) -> te.Tensor:
    """out[..., m, n] = sum_k x[..., m, k] * packed[n / lanes, k, n % lanes] (``panels``' layout)."""
    vectors, depth, lanes = (int(d) for d in packed.shape)
    rk = te.reduce_axis((0, depth), name="k")

    def body(*i):
        return te.sum(x[(*i[:-1], rk)] * packed[i[-1] // lanes, rk, i[-1] % lanes], axis=rk)

    return te.compute((*x.shape[:-1], vectors * lanes), body, name=MATMUL_BLOCK)


def legalizer(lanes: int, dot: DotInstruction | None):
    """Relax's matmul legalization, with the dense layers (constant weights, at least 2 rows)
    as ``matmul_dot_compute`` on ``dot`` where there is one, else as ``matmul_panels_compute``
    where their columns fill ``lanes``-wide vectors."""
    default = tvm.ir.Op.get("relax.matmul").get_attr("FLegalize")

    def legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        if dot is not None and dense_dims(call, dot.group, dot.lanes) is not None:
            x = bb.emit_te(bf16_dot.to_bits, call.args[0], primfunc_name_hint="to_bf16")
            paired = relax.const(pair_rows(call.args[1].value.numpy(), dot.group))
            weights = bb.emit_te(bf16_dot.to_bits, paired, primfunc_name_hint="to_bf16")
            return bb.call_te(matmul_dot_compute, x, weights, dot.name, primfunc_name_hint="matmul_bf16")
        if dot is None and dense_dims(call, 1, lanes) is not None:
            packed = relax.const(panels(call.args[1].value.numpy(), lanes))
            return bb.call_te(matmul_panels_compute, call.args[0], packed, primfunc_name_hint="matmul")
        return default(bb, call)

    return legalize
