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

Rows: ``schedule_matmul`` tiles them by a divisor of their count. Where none makes a tile more
than one row deep (a ViT's 197 tokens), the float32 product is computed a few rows deeper
(``computed_rows``: ``passes.tile_width``'s rule for conv columns), the extra rows reading the
last one again, and cropped; the crop inlines into the kernel's epilogue. A ViT's MLP layers
(197 x 192 x 768 with bias and GELU, 197 x 768 x 192 with bias and residual), each timed inside
the model (znver3, 2 threads): 1.12 -> 0.52 ms and 0.92 -> 0.46 ms, in tiles of 3 rows x 4
vectors over 198 rows where 197 took 1 x 4.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, te

from neo_local.backends.cpu_schedule import bf16_dot
from neo_local.backends.cpu_schedule.int8_dot import DOT_ATTR, DotInstruction
from neo_local.backends.cpu_schedule.rewriting import plain_dense, static_shape

#: the block name ``schedules.schedule_matmul`` looks for: Relax's legalized matmul (dense layers,
#: batched attention products), ``matmul_panels_compute`` and ``matmul_dot_compute``
MATMUL_BLOCK = "matmul"
#: the block that keeps a product's own rows where it was computed deeper (``computed_rows``)
CROP_BLOCK = "matmul_crop"


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


def computed_rows(rows: int, vectors: int, max_acc: int) -> int:
    """The rows to compute a float32 product of ``rows`` rows and ``vectors`` column vectors at:
    ``rows``, or where no divisor of it makes a register tile more than one row deep (a ViT's
    197 tokens, a prime: 1 x 4 tiles, a load per FMA), ``passes.tile_width``'s few rows more
    (198: 3 x 4), which read the last row again and are cropped off (``CROP_BLOCK``)."""
    from neo_local.backends.cpu_schedule.passes import tile_width
    from neo_local.backends.cpu_schedule.schedules import choose_tile

    if rows < 2 or choose_tile(rows, vectors, max_acc)[1] > 1:
        return rows
    return tile_width(rows, vectors, max_acc)


def _row(x: te.Tensor, i: tuple, rows: int) -> tuple:
    """``x``'s index for output row ``i[-2]`` of a product computed ``rows`` rows deep: past x's
    last row, its last row again."""
    m = int(x.shape[-2])
    return (*i[:-1], i[-1] if rows == m else te.min(i[-1], m - 1))


def _cropped(out: te.Tensor, rows: int) -> te.Tensor:
    """``out``'s first ``rows`` rows."""
    if int(out.shape[-2]) == rows:
        return out
    return te.compute((*out.shape[:-2], rows, out.shape[-1]), lambda *i: out(*i), name=CROP_BLOCK)


def matmul_panels_compute(x: te.Tensor, packed: te.Tensor, rows: int) -> te.Tensor:
    """out[..., m, n] = sum_k x[..., m, k] * packed[n / lanes, k, n % lanes] (``panels``' layout),
    computed ``rows`` rows deep (``computed_rows``)."""
    vectors, depth, lanes = (int(d) for d in packed.shape)
    rk = te.reduce_axis((0, depth), name="k")

    def body(*i):
        return te.sum(x[(*_row(x, i[:-1], rows), rk)] * packed[i[-1] // lanes, rk, i[-1] % lanes], axis=rk)

    shape = (*x.shape[:-2], rows, vectors * lanes)
    return _cropped(te.compute(shape, body, name=MATMUL_BLOCK), int(x.shape[-2]))


def matmul_rows_compute(x: te.Tensor, w: te.Tensor, rows: int) -> te.Tensor:
    """out[..., m, n] = sum_k x[..., m, k] * w[..., k, n] for two computed values with the same
    batch dims (attention's products), computed ``rows`` rows deep (``computed_rows``)."""
    rk = te.reduce_axis((0, int(w.shape[-2])), name="k")

    def body(*i):
        return te.sum(x[(*_row(x, i[:-1], rows), rk)] * w[(*i[:-2], rk, i[-1])], axis=rk)

    shape = (*x.shape[:-2], rows, w.shape[-1])
    return _cropped(te.compute(shape, body, name=MATMUL_BLOCK), int(x.shape[-2]))


def _deeper_product(call: relax.Call, lanes: int, max_acc: int) -> int | None:
    """``computed_rows`` of a float32 product of two computed values with static shapes, the same
    batch dims and whole column vectors, where that is more rows than it has; None otherwise."""
    x, w = (static_shape(a) for a in call.args)
    if (x is None or w is None or len(x) != len(w) or len(x) < 2 or x[:-2] != w[:-2] or w[-1] % lanes
            or any(str(e.ty.dtype) != "float32" for e in (call, *call.args))):
        return None
    rows = computed_rows(x[-2], w[-1] // lanes, max_acc)
    return rows if rows > x[-2] else None


def legalizer(lanes: int, dot: DotInstruction | None, max_acc: int):
    """Relax's matmul legalization, with the dense layers (constant weights, at least 2 rows)
    as ``matmul_dot_compute`` on ``dot`` where there is one, else as ``matmul_panels_compute``
    where their columns fill ``lanes``-wide vectors, and products of computed values whose rows
    tile poorly as ``matmul_rows_compute`` (``computed_rows``; ``max_acc``: the register budget)."""
    default = tvm.ir.Op.get("relax.matmul").get_attr("FLegalize")

    def legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        if dot is not None and dense_dims(call, dot.group, dot.lanes) is not None:
            x = bb.emit_te(bf16_dot.to_bits, call.args[0], primfunc_name_hint="to_bf16")
            paired = relax.const(pair_rows(call.args[1].value.numpy(), dot.group))
            weights = bb.emit_te(bf16_dot.to_bits, paired, primfunc_name_hint="to_bf16")
            return bb.call_te(matmul_dot_compute, x, weights, dot.name, primfunc_name_hint="matmul_bf16")
        if dot is None and dense_dims(call, 1, lanes) is not None:
            packed = panels(call.args[1].value.numpy(), lanes)
            rows = computed_rows(static_shape(call.args[0])[-2], packed.shape[0], max_acc)
            return bb.call_te(matmul_panels_compute, call.args[0], relax.const(packed), rows,
                              primfunc_name_hint="matmul")
        rows = _deeper_product(call, lanes, max_acc)
        if rows is not None:
            return bb.call_te(matmul_rows_compute, call.args[0], call.args[1], rows, primfunc_name_hint="matmul")
        return default(bb, call)

    return legalize
