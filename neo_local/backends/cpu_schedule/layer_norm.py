"""Layer norm over the last axis (transformers') with vector reductions.

TVM legalizes ``nn.layer_norm`` to topi's, whose mean and variance dlight's Reduction rule sums
one element at a time: 192 dependent scalar adds per row and pass. A ViT's 197 x 192 layer norm
took 37 us (onnxruntime's 22), BERT-style's five were 12% of its time. Here each row's sum and
then its sum of squared deviations (two passes, as topi: no cancellation of a large mean) are
reduced as vectors of ``lanes`` (``row_reductions``), and the row is normalized, scaled and
shifted in vector steps. Rows whose width is not a multiple of the lanes keep topi's.
"""

from __future__ import annotations

import tvm
from tvm import relax, te, tirx

from neo_local.backends.cpu_schedule import row_reductions
from neo_local.backends.cpu_schedule.fast_math import f32

#: the stages of ``layer_norm_rows``, by their blocks' names (``schedule_layer_norm`` finds them so)
PART_SUM, SUM, MEAN = "layer_norm_part_sum", "layer_norm_sum", "layer_norm_mean"
PART_SQUARES, SQUARES, INV_STD, OUT = ("layer_norm_part_squares", "layer_norm_squares", "layer_norm_inv_std",
                                       "layer_norm_out")
_STAGES = (PART_SUM, SUM, MEAN, PART_SQUARES, SQUARES, INV_STD, OUT)


def layer_norm_rows(x: te.Tensor, gamma: te.Tensor, beta: te.Tensor, epsilon: float, lanes: int) -> te.Tensor:
    """(x - mean) / sqrt(var + epsilon) * gamma + beta over x's last axis, whose width is a
    multiple of ``lanes`` (module docstring)."""
    *lead, n = (int(d) for d in x.shape)
    mean = row_reductions.row_mean(x, lanes, (PART_SUM, SUM, MEAN))
    part_squares = row_reductions.lane_parts(row_reductions.squared_deviations(x, mean), lead, n, lanes, te.sum,
                                             PART_SQUARES)
    squares = row_reductions.across_lanes(part_squares, te.sum, SQUARES)
    inv_std = te.compute(lead, lambda *i: tirx.rsqrt(squares(*i) * f32(1.0 / n) + f32(epsilon)), name=INV_STD)
    return te.compute(x.shape, lambda *i: (x(*i) - mean(*i[:-1])) * inv_std(*i[:-1]) * gamma(i[-1]) + beta(i[-1]),
                      name=OUT)


def legalizer(lanes: int):
    """LegalizeOps entry for ``nn.layer_norm``: float32 over the last axis alone, with a static
    shape whose width is a multiple of ``lanes`` (``row_reductions.whole_vector_rows``) ->
    ``layer_norm_rows``; others -> TVM's own legalization (topi's)."""
    other = tvm.ir.Op.get("relax.nn.layer_norm").get_attr("FLegalize")

    def legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        x, gamma, beta = call.args
        if (not row_reductions.whole_vector_rows(x, [int(a) for a in call.attrs.axes], lanes)
                or any(str(p.ty.dtype) != "float32" for p in (gamma, beta))):
            return other(bb, call)
        return bb.call_te(layer_norm_rows, x, gamma, beta, float(call.attrs.epsilon), lanes,
                          primfunc_name_hint="layer_norm")

    return legalize


def schedule_layer_norm(func: tirx.PrimFunc, lanes: int) -> tirx.PrimFunc | None:
    """The rows in parallel; each row's stages computed in its task, the partial reductions and
    the output in vectors of ``lanes`` (``row_reductions``); producers fused into the kernel (a
    residual add) inlined, consumers too. None for a function without ``layer_norm_rows``'
    blocks."""
    staged = row_reductions.staged_rows(func, _STAGES, ((PART_SUM, SUM), (PART_SQUARES, SQUARES)))
    if staged is None:
        return None
    sch, _, col = staged
    row_reductions.vector_steps(sch, col, lanes)
    return sch.mod["main"]
