"""Vectorizable exp, tanh, erf, sigmoid and softmax for the scheduled CPU pipeline.

TVM legalizes these ops to calls of libm's scalar ``expf``/``tanhf``/``erff``, which LLVM cannot
vectorize: a GELU (BERT's FFN epilogue: 64 x 512 erf per layer) then runs one lane at a time
inside otherwise vectorized kernels. topi's ``fast_exp``/``fast_tanh``/``fast_erf`` are
polynomial forms that vectorize; measured against float64 over their working ranges their
largest relative error is 2.9e-7, 3.1e-7 and 3.3e-7 (a few float32 ulps), and the job's
verification still compares the outputs. float32 only: other dtypes keep TVM's legalization.

Softmax (attention) is topi's ``fast_softmax``: the same with ``fast_exp`` (BERT-style's two
softmax kernels 0.038 -> 0.018 ms a run; onnxruntime's 0.012). Sigmoid (EfficientNet's SiLU) is
``1 / (1 + e^-x)`` with a cheaper exp of its own (``_sigmoid``; 3.3e-7). Fused into a conv's
epilogue the polynomial must not be unrolled over the register tile (EfficientNet's TVM build
went from 35 s to 200 s when it was): the schedules keep epilogues holding one of these blocks
(``is_polynomial``) as loops, vectorized only.
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


#: e^r on [-ln 2 / 2, ln 2 / 2], degree 5, fitted at Chebyshev nodes: 2.5e-7 relative in float32
_EXP = (1.0000001192092896, 1.0, 0.49998870491981506, 0.16666415333747864, 0.041917528957128525,
        0.008375128731131554)


def _sigmoid(x: te.Tensor) -> te.Tensor:
    """``1 / (1 + e^-x)``, with ``e^-x = 2^n e^r``: ``n = round(-x / ln 2)``, ``r = -x - n ln 2``
    (the reduction fast_exp makes, so its accuracy: 3e-7), ``e^r`` a degree-5 polynomial where
    fast_exp has 7, ``2^n`` added to its exponent bits where fast_exp builds and multiplies it, and
    ``x`` clamped once. 15 vector operations against 21: EfficientNet's SiLU epilogues, 6% of the
    model (2.85 -> 2.68 ms in one process)."""
    f32 = lambda v: tvm.tirx.const(v, "float32")  # noqa: E731

    def sigmoid(*i):
        neg = te.max(te.min(-x(*i), f32(87.0)), f32(-87.0))  # 2^n stays a normal float
        n = tvm.tirx.round(neg * f32(1.4426950408889634))
        r = neg - n * f32(0.6931471805599453)
        p = f32(_EXP[-1])
        for c in reversed(_EXP[:-1]):
            p = p * r + f32(c)
        bits = tvm.tirx.reinterpret("int32", p) + (n.astype("int32") << 23)
        return f32(1.0) / (f32(1.0) + tvm.tirx.reinterpret("float32", bits))

    return te.compute(x.shape, sigmoid, name="T_fast_sigmoid")


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
