"""Sums, means, maxes and variances over the last axis with vector reductions
(neo_local.backends.cpu_schedule.row_reductions): which take them, a decomposed layer norm (an
ONNX export before opset 17) and a decomposed softmax against numpy, and small powers as products
(``fast_math._power``)."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

from tvm import relax  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from test_cpu_schedule import AVX2, _rel, _run, needs_avx2  # noqa: E402


def _module(shape, body):
    """main(x) = body(x) for a float32 x of ``shape``."""
    x = relax.Var("x", relax.TensorType(shape, "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(body(x))
        bb.emit_func_output(y)
    return bb.get()


def _f32(v: float):
    return relax.const(v, "float32")


@needs_avx2
@pytest.mark.parametrize("op,axis,keepdims,rows", [
    (relax.op.mean, [-1], True, 1),
    (relax.op.sum, [2], False, 1),
    (relax.op.max, [-1], True, 1),
    (relax.op.variance, [-1], False, 1),  # an instance norm's (torch's GroupNorm export)
    (relax.op.mean, [1], True, 0),  # not the last axis: TVM's
    (relax.op.sum, [-2, -1], False, 0),  # two axes: TVM's
])
def test_reductions_over_the_last_axis(op, axis, keepdims, rows):
    shape = (2, 5, 24)
    ex, stats = cpu_schedule.compile_cpu(_module(shape, lambda x: op(x, axis=axis, keepdims=keepdims)), AVX2)
    assert stats["rows"] == rows and stats["unscheduled"] == 0, stats
    x = (np.random.default_rng(0).standard_normal(shape) + 4).astype("float32")  # a mean far from 0
    want = {relax.op.mean: np.mean, relax.op.sum: np.sum, relax.op.max: np.max, relax.op.variance: np.var}[op](
        x.astype("float64"), axis=tuple(axis), keepdims=keepdims)
    got = _run(ex, x)
    assert got.shape == want.shape and _rel(got, want) < 1e-6


def _decomposed_layer_norm(x):
    """ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add: an ONNX layer norm before opset 17."""
    d = relax.op.subtract(x, relax.op.mean(x, axis=[-1], keepdims=True))
    var = relax.op.mean(relax.op.power(d, _f32(2.0)), axis=[-1], keepdims=True)
    gamma = relax.const(np.linspace(0.5, 1.5, 48, dtype="float32"))
    return relax.op.add(relax.op.multiply(relax.op.divide(d, relax.op.sqrt(relax.op.add(var, _f32(1e-5)))), gamma),
                        _f32(0.25))


def _decomposed_softmax(x):
    """ReduceMax, Sub, Exp, ReduceSum, Div."""
    e = relax.op.exp(relax.op.subtract(x, relax.op.max(x, axis=[-1], keepdims=True)))
    return relax.op.divide(e, relax.op.sum(e, axis=[-1], keepdims=True))


@needs_avx2
@pytest.mark.parametrize("body", [_decomposed_layer_norm, _decomposed_softmax])
def test_decomposed_row_ops_take_vector_reductions(body):
    """Each reduction's kernel, with the elementwise ops fused around it, takes the row schedule;
    the outputs match numpy's with a mean far from 0."""
    shape = (1, 37, 48)
    ex, stats = cpu_schedule.compile_cpu(_module(shape, body), AVX2)
    assert stats["rows"] == 2 and stats["dlight"] == 0 and stats["unscheduled"] == 0, stats
    x = (np.random.default_rng(1).standard_normal(shape) * 3 + 5).astype("float32")
    s = x.astype("float64")
    if body is _decomposed_layer_norm:
        want = (s - s.mean(-1, keepdims=True)) / np.sqrt(s.var(-1, keepdims=True) + 1e-5) * np.linspace(
            0.5, 1.5, 48) + 0.25
    else:
        e = np.exp(s - s.max(-1, keepdims=True))
        want = e / e.sum(-1, keepdims=True)
    assert _rel(_run(ex, x), want) < 1e-5


@needs_avx2
@pytest.mark.parametrize("exponent,products", [(2.0, True), (3.0, True), (4.0, True), (2.5, False)])
def test_small_powers_become_products(exponent, products):
    """A cube (the tanh GELU of ONNX exports) was a call of libm's ``powf`` per element."""
    shape = (4, 32)
    mod = _module(shape, lambda x: relax.op.power(x, _f32(exponent)))
    opt, _ = cpu_schedule.optimize(mod, AVX2)
    text = "\n".join(f.script() for f in opt.functions.values() if isinstance(f, tvm.tirx.PrimFunc))
    assert ("T.pow(" not in text) == products
    x = np.random.default_rng(2).uniform(0.5, 2.0, shape).astype("float32")
    got = _run(cpu_schedule.compile_cpu(mod, AVX2)[0], x)
    assert _rel(got, np.power(x.astype("float64"), exponent)) < 1e-6
