"""Softmax over the last axis with vector reductions (neo_local.backends.cpu_schedule.softmax):
which softmaxes take it, and their outputs against numpy's, rows that do not fill whole vectors
included."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

from tvm import relax  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from test_cpu_schedule import AVX2, _rel, _run, needs_avx2  # noqa: E402


def _softmax_module(shape: tuple[int, ...], axis: int):
    x = relax.Var("x", relax.TensorType(shape, "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            scaled = bb.emit(relax.op.multiply(x, relax.const(0.125, "float32")))
            y = bb.emit_output(relax.op.nn.softmax(scaled, axis=axis))
        bb.emit_func_output(y)
    return bb.get()


@needs_avx2
@pytest.mark.parametrize("shape,axis,ours", [
    ((1, 3, 13, 13), -1, True),  # attention scores of 13 tokens: rows of one vector and 5 lanes
    ((1, 4, 64, 64), 3, True),  # BERT-style's: whole vectors
    ((2, 1000), -1, True),
    ((2, 16, 10), 1, False),  # not the last axis: topi's fast_softmax
    ((7, 5), -1, False),  # rows shorter than a vector: the same
])
def test_softmax_rows(shape, axis, ours):
    ex, stats = cpu_schedule.compile_cpu(_softmax_module(shape, axis), AVX2)
    assert stats["softmax"] == int(ours) and stats["unscheduled"] == 0, stats
    x = (np.random.default_rng(0).standard_normal(shape) * 20).astype("float32")
    z = x.astype("float64") * 0.125
    z = np.exp(z - z.max(axis, keepdims=True))
    want = z / z.sum(axis, keepdims=True)
    got = _run(ex, x)
    assert got.shape == want.shape and _rel(got, want) < 1e-6
    np.testing.assert_allclose(got.sum(axis), 1.0, rtol=1e-5)
