"""Vectorizable exp, log, tanh, erf, sigmoid, SiLU, GELU, softmax, log-softmax and small integer
powers for the scheduled CPU pipeline.

TVM legalizes these ops to calls of libm's scalar ``expf``/``tanhf``/``erff``, which LLVM cannot
vectorize: a GELU (BERT's FFN epilogue: 64 x 512 erf per layer) then runs one lane at a time
inside otherwise vectorized kernels. topi's ``fast_exp``/``fast_tanh``/``fast_erf`` are
polynomial forms that vectorize; measured against float64 over their working ranges their
largest relative error is 2.9e-7, 3.1e-7 and 3.3e-7 (a few float32 ulps), and the job's
verification still compares the outputs. float32 only: other dtypes keep TVM's legalization.

Softmax is topi's ``fast_softmax``: the same with ``fast_exp`` (BERT-style's two softmax kernels
0.038 -> 0.018 ms a run; onnxruntime's 0.012); over the last axis, the float32 one with static
shapes is ``softmax``'s, with vector reductions. Sigmoid is ``1 / (1 + e^-x)``
with a cheaper exp of its own (``exp_poly``; 3.4e-7), and ``x * sigmoid(x)`` (EfficientNet's SiLU,
from ONNX and from torch.export alike) becomes ``nn.silu``, ``x / (1 + e^-x)`` (``silu_calls``).
PyTorch's GELUs arrive as ``nn.gelu``/``nn.gelu_tanh`` (ONNX's as erf, above): on fast_erf and
fast_tanh (a BERT-style .pt2 0.297 -> 0.198-0.216 ms; with libm's ``erff`` it ran 1.5x the ONNX
file's time). ``ln`` has its own polynomial (``_log``; 7.7e-8): Softplus and Mish (DarkNet's YOLOs)
called libm's ``logf`` per element (four 64-channel 3x3 convs at 104x104 with Mish 6.05 ->
3.99 ms; onnxruntime 20 ms). Fused into a conv's epilogue the polynomial must not be unrolled
over the register tile (EfficientNet's TVM build went from 35 s to 200 s when it was): the
schedules keep epilogues holding one of these blocks (``is_polynomial``) as loops, vectorized
only.
"""

from __future__ import annotations

import math
from typing import Callable

import tvm
from tvm import relax, te, topi

from neo_local.backends.cpu_schedule.rewriting import bound_call, rewrite_functions, static_shape

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
#: 1.5 * 2^23: a float32 in [2^23, 2^24) has no fraction bits, so adding it rounds to an integer,
#: which its low mantissa bits then hold
_ROUNDER = 12582912.0


def f32(v: float) -> tvm.tirx.PrimExpr:
    return tvm.tirx.const(v, "float32")


def exp_poly(v: tvm.tirx.PrimExpr) -> tvm.tirx.PrimExpr:
    """``e^v`` for the sigmoid and SiLU, 12 vector operations where fast_exp takes 21:
    ``e^v = 2^n e^r`` with ``n = round(v / ln 2)``, ``r = v - n ln 2`` (fast_exp's reduction, so
    its accuracy: 3e-7), ``e^r`` a degree-5 polynomial where fast_exp has 7. ``v`` is clamped to
    +-87 once, so that ``2^n`` stays a normal float; ``n`` is rounded by adding and subtracting
    ``_ROUNDER`` and taken from the sum's bits, shifted into the exponent of ``e^r``."""
    v = te.max(te.min(v, f32(87.0)), f32(-87.0))
    shifted = v * f32(1.4426950408889634) + f32(_ROUNDER)
    # shifted * 1 - _ROUNDER: TVM's simplifier cancels a plain subtraction against the addition above
    n = tvm.tirx.call_intrin("float32", "tirx.fma", shifted, f32(1.0), f32(-_ROUNDER))
    r = v - n * f32(0.6931471805599453)
    p = f32(_EXP[-1])
    for c in reversed(_EXP[:-1]):
        p = p * r + f32(c)
    two_n = tvm.tirx.reinterpret("uint32", shifted) << tvm.tirx.const(23, "uint32")  # unsigned: wraps
    return tvm.tirx.reinterpret("float32", tvm.tirx.reinterpret("uint32", p) + two_n)


#: log(1 + f) = f - f^2 / 2 + f^3 P(f) for f in [sqrt(1/2) - 1, sqrt(2) - 1]: P's coefficients from
#: the highest power (Cephes' logf; 1 ulp)
_LOG = (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
        -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1)
#: the float32 bits of sqrt(1/2): subtracted, the exponent field counts from there, so that the
#: mantissa left, with this exponent put back, lies in [sqrt(1/2), sqrt(2))
_SQRT_HALF_BITS = 0x3F3504F3
#: ln 2 in two parts, the first exact in few bits, so that e * ln 2 adds without rounding error
_LN2_HI, _LN2_LO = 0.693359375, -2.12194440e-4


def _log(x: tvm.tirx.PrimExpr) -> tvm.tirx.PrimExpr:
    """``ln x``, vectorizable (TVM's legalization calls libm's ``logf`` one lane at a time: ONNX's
    Log and Softplus, Mish, PyTorch's log-sigmoid): ``x = 2^e (1 + f)`` from the bits, ``f`` in
    [sqrt(1/2) - 1, sqrt(2) - 1], ``ln(1 + f)`` a polynomial (``_LOG``). Subnormal ``x`` is
    scaled by 2^23 first; 0 gives -inf, inf gives inf, a negative ``x`` or NaN gives NaN."""
    tiny = x < f32(1.1754943508222875e-38)
    scaled = tvm.tirx.Select(tiny, x * f32(8388608.0), x)
    bits = tvm.tirx.reinterpret("int32", scaled) - tvm.tirx.const(_SQRT_HALF_BITS, "int32")
    e = (bits >> 23).astype("float32") - tvm.tirx.Select(tiny, f32(23.0), f32(0.0))
    mantissa = (bits & tvm.tirx.const(0x7FFFFF, "int32")) + tvm.tirx.const(_SQRT_HALF_BITS, "int32")
    f = tvm.tirx.reinterpret("float32", mantissa) - f32(1.0)
    z = f * f
    p = f32(_LOG[0])
    for c in _LOG[1:]:
        p = p * f + f32(c)
    y = f * z * p + e * f32(_LN2_LO) - f32(0.5) * z
    result = f + y + e * f32(_LN2_HI)
    special = tvm.tirx.Select(x == f32(0.0), f32(-math.inf), f32(math.nan))
    finite = tvm.tirx.Select(x < f32(math.inf), result, x)
    return tvm.tirx.Select(x > f32(0.0), finite, special)


def _fast_log(x: te.Tensor) -> te.Tensor:
    return te.compute(x.shape, lambda *i: _log(x(*i)), name="T_fast_log")


def _log_softmax(x: te.Tensor, axis: int) -> te.Tensor:
    """``x - max - ln(sum(e^(x - max)))`` on fast_exp and ``_log`` (TVM's calls libm's ``expf``
    per element and ``logf`` per row)."""
    axis = axis % len(x.shape)
    shifted = topi.subtract(x, topi.max(x, axis=axis, keepdims=True))
    return topi.subtract(shifted, _fast_log(topi.sum(topi.fast_exp(shifted), axis=axis, keepdims=True)))


def _sigmoid(x: te.Tensor) -> te.Tensor:
    """``1 / (1 + e^-x)`` on ``exp_poly``: 3.4e-7 relative error over [-87, 87] (2^20 points)."""
    return te.compute(x.shape, lambda *i: f32(1.0) / (f32(1.0) + exp_poly(-x(*i))), name="T_fast_sigmoid")


def _silu(x: te.Tensor) -> te.Tensor:
    """``x / (1 + e^-x)``: one division where ``x * sigmoid(x)`` takes a division and a product
    (LLVM may not fold them without fast-math); 3.7e-7 relative error over [-87, 87]. With
    ``exp_poly``'s rounding, 1.82 -> 1.47 ns per 16 lanes against ``x * sigmoid(x)`` with the
    sigmoid's earlier exp (znver5, a C loop of the same operations); EfficientNet-B0 1.3% faster
    (2.83 -> 2.79 ms in one process, 7 rounds)."""
    return te.compute(x.shape, lambda *i: x(*i) / (f32(1.0) + exp_poly(-x(*i))), name="T_fast_silu")


def _gelu(x: te.Tensor) -> te.Tensor:
    """``x (1 + erf(x / sqrt 2)) / 2`` on fast_erf: TVM's legalization of ``nn.gelu`` (PyTorch's
    GELU) calls libm's ``erff`` one lane at a time."""
    erf = topi.fast_erf(topi.multiply(x, f32(0.5 ** 0.5)))
    return te.compute(x.shape, lambda *i: x(*i) * (f32(0.5) + f32(0.5) * erf(*i)), name="T_gelu")


def _gelu_tanh(x: te.Tensor) -> te.Tensor:
    """GELU's tanh form on fast_tanh: TVM's legalization of ``nn.gelu_tanh`` calls libm's ``expf``."""
    inner = te.compute(x.shape, lambda *i: f32((2.0 / math.pi) ** 0.5) * x(*i) * (
        f32(1.0) + f32(0.044715) * x(*i) * x(*i)), name="T_gelu_tanh_inner")
    tanh = topi.fast_tanh(inner)
    return te.compute(x.shape, lambda *i: f32(0.5) * x(*i) * (f32(1.0) + tanh(*i)), name="T_gelu_tanh")


#: the exponents ``_power`` multiplies out
_SMALL_POWERS = (2.0, 3.0, 4.0)

_DEFAULT_POWER = tvm.ir.Op.get("relax.power").get_attr("FLegalize")


def _power(bb: relax.BlockBuilder, call: relax.Call) -> relax.Expr:
    """``x ** e`` for a float32 ``x`` and a constant scalar ``e`` of 2, 3 or 4 as products: TVM
    legalizes ``power`` to ``pow``, which LLVM turns into a product for a square but leaves a call
    of libm's ``powf`` per element otherwise. The tanh GELU of ONNX exports cubes x with Pow: for
    a ViT's 197 x 768 MLP activations, 0.044715 * x ** 3 + x took 1196 us so, 23 as x * x * x
    (znver4, 2 threads). Others: TVM's legalization."""
    x, e = call.args
    exponent = e.value.numpy() if isinstance(e, tvm.ir.expr.Constant) else None
    if (call.ty.dtype != "float32" or exponent is None or exponent.size != 1
            or float(exponent.reshape(())) not in _SMALL_POWERS or static_shape(x) is None
            or static_shape(call) != static_shape(x)):  # a broadcast exponent: TVM's
        return _DEFAULT_POWER(bb, call)
    n = int(exponent.reshape(()))

    def product(t: te.Tensor) -> te.Tensor:
        def value(*i):
            v = t(*i)
            for _ in range(n - 1):
                v = v * t(*i)
            return v
        return te.compute(t.shape, value, name="T_power")

    return bb.call_te(product, x, primfunc_name_hint="power")


@relax.expr_functor.mutator
class _SiluFinder(relax.PyExprMutator):
    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802 (TVM's naming)
        call = super().visit_call_(call)
        if call.op != tvm.ir.Op.get("relax.multiply"):
            return call
        for x, gate in (call.args, reversed(call.args)):
            sigmoid = bound_call(self, gate, "relax.sigmoid")
            if sigmoid is not None and sigmoid.args[0].same_as(x):
                return relax.op.nn.silu(x)
        return call


def silu_calls(mod: tvm.IRModule) -> tvm.IRModule:
    """``x * sigmoid(x)`` (ONNX has no SiLU: EfficientNet's activations, either operand order) as
    ``nn.silu(x)``, so that it legalizes to ``_silu``."""
    return relax.transform.DeadCodeElimination()(rewrite_functions(_SiluFinder(mod), mod))


#: LegalizeOps entries: op name -> legalizer
LEGALIZERS: dict[str, Legalizer] = {
    **{op: _on_float32(op, compute)
       for op, compute in {"relax.exp": topi.fast_exp, "relax.tanh": topi.fast_tanh, "relax.erf": topi.fast_erf,
                           "relax.sigmoid": _sigmoid, "relax.nn.silu": _silu, "relax.nn.gelu": _gelu,
                           "relax.nn.gelu_tanh": _gelu_tanh, "relax.log": _fast_log}.items()},
    "relax.nn.softmax": _on_float32("relax.nn.softmax", topi.nn.fast_softmax, "axis"),
    "relax.nn.log_softmax": _on_float32("relax.nn.log_softmax", _log_softmax, "axis"),
    "relax.power": _power,
}


def is_polynomial(block_name: str) -> bool:
    """Whether a TIR block (by name) computes one of the polynomials above (its body is dozens of ops)."""
    return block_name.startswith("T_fast_")
