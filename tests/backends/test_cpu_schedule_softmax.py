"""Softmax over the last axis with vector reductions (neo_local.backends.cpu_schedule.softmax):
which softmaxes take it, and their outputs against numpy's, rows that do not fill whole vectors
included."""

from __future__ import annotations

import re

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

from tvm import relax  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule import softmax  # noqa: E402
from test_cpu_schedule import AVX2, _after_vectorizing, _rel, _run, needs_avx2  # noqa: E402


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



def test_rows_with_a_tail_keep_their_whole_vectors():
    """A ViT's 197-token rows end in 5 columns past 12 whole vectors (8 lanes here). With the
    tail's guard (a predicate, an ``if_then_else`` on the column) inside the vector loop, TVM's
    VectorizeLoop scalarized the whole loop: the padded copy and the scaled output went one float
    at a time (the scores' softmax 99.6 us a layer, 39.2 once split; znver4, 2 threads). Here both
    stages store whole vectors after VectorizeLoop (a slice), and only their tails single floats."""
    opt, _ = cpu_schedule.optimize(_softmax_module((1, 3, 197, 197), -1), AVX2)
    script = _after_vectorizing(opt, "softmax")
    stores = re.findall(r"\b(softmax_norm|softmax_padded)\w*\[([^\]=]*)\] =", script)
    vectors = {name: {":" in index for n, index in stores if n == name} for name in (softmax.PADDED, softmax.NORM)}
    assert vectors == {softmax.PADDED: {True, False}, softmax.NORM: {True, False}}, stores
