"""Vectorizable exp, tanh, erf, sigmoid and softmax for the scheduled CPU pipeline.

TVM legalizes these ops to calls of libm's scalar ``expf``/``tanhf``/``erff``, which LLVM cannot
vectorize: a GELU (BERT's FFN epilogue: 64 x 512 erf per layer) then runs one lane at a time
inside otherwise vectorized kernels. topi's ``fast_exp``/``fast_tanh``/``fast_erf`` are
polynomial forms that vectorize; measured against float64 over their working ranges their
largest relative error is 2.9e-7, 3.1e-7 and 3.3e-7 (a few float32 ulps), and the job's
verification still compares the outputs. float32 only: other dtypes keep TVM's legalization.

Softmax (attention) is topi's ``fast_softmax``: the same with ``fast_exp`` (BERT-style's two
softmax kernels 0.038 -> 0.018 ms a run; onnxruntime's 0.012). Sigmoid (EfficientNet's SiLU) is
``1 / (1 + fast_exp(-x))``. Fused into a conv's epilogue the polynomial must not be unrolled over
the register tile (EfficientNet's TVM build went from 35 s to 200 s when it was): the schedules
keep epilogues holding one of these blocks (``is_polynomial``) as loops, vectorized only.
"""

from __future__ import annotations

from typing import Callable

import tvm
from tvm import relax, te, topi

Legalizer = Callable[[relax.BlockBuilder, relax.Call], relax.Expr]


def _on_float32(op: str, compute: Callable[..., te.Tensor], *attrs: str) -> Legalizer:
    """``compute`` (of the call's one argument and its ``attrs``) for float32 calls of ``op``, TVM's
    own legalization for other dtypes."""
    default = tvm.ir.Op.get(op).get_attr("FLegalize")

    def legalize(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
        if call.ty.dtype != "float32":
            return default(bb, call)
        return bb.call_te(compute, call.args[0], *(getattr(call.attrs, a) for a in attrs))

    return legalize


def _sigmoid(x: te.Tensor) -> te.Tensor:
    one = tvm.tirx.const(1.0, x.dtype)
    neg_exp = topi.fast_exp(topi.negative(x))
    return te.compute(x.shape, lambda *i: one / (one + neg_exp(*i)), name="T_fast_sigmoid")


#: LegalizeOps entries: op name -> legalizer
LEGALIZERS: dict[str, Legalizer] = {
    **{op: _on_float32(op, compute)
       for op, compute in {"relax.exp": topi.fast_exp, "relax.tanh": topi.fast_tanh, "relax.erf": topi.fast_erf,
                           "relax.sigmoid": _sigmoid}.items()},
    "relax.nn.softmax": _on_float32("relax.nn.softmax", topi.nn.fast_softmax, "axis"),
}


def is_polynomial(block_name: str) -> bool:
    """Whether a TIR block (by name) computes one of the polynomials above (its body is dozens of ops)."""
    return block_name.startswith("T_fast_")
