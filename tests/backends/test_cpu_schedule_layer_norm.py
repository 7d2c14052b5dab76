"""Layer norm over the last axis with vector reductions (neo_local.backends.cpu_schedule.layer_norm):
which layer norms take it, and their outputs against numpy's, a residual add fused before it
included."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

from tvm import relax  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from test_cpu_schedule import AVX2, _rel, _run, needs_avx2  # noqa: E402


def _layer_norm_module(shape: tuple[int, ...], axes: list[int], seed: int = 0):
    """layer_norm(x + r) with seeded gamma and beta over ``axes``."""
    rng = np.random.default_rng(seed)
    norm_shape = [shape[a] for a in axes]
    gamma = rng.standard_normal(norm_shape).astype("float32")
    beta = rng.standard_normal(norm_shape).astype("float32")
    x = relax.Var("x", relax.TensorType(shape, "float32"))
    r = relax.Var("r", relax.TensorType(shape, "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x, r]):
        with bb.dataflow():
            s = bb.emit(relax.op.add(x, r))
            y = bb.emit_output(relax.op.nn.layer_norm(s, relax.const(gamma), relax.const(beta), axes=axes,
                                                      epsilon=1e-5))
        bb.emit_func_output(y)
    return bb.get(), gamma, beta


@needs_avx2
@pytest.mark.parametrize("shape,axes,ours", [
    ((1, 197, 192), [-1], True),  # a ViT's tokens
    ((1, 64, 128), [2], True),  # BERT-style's
    ((2, 16), [-1], True),  # one row of two vectors per batch item
    ((3, 20), [-1], False),  # a width off the vectors: topi's
    ((2, 8, 16), [-2, -1], False),  # over two axes: topi's
])
def test_layer_norm_rows(shape, axes, ours):
    mod, gamma, beta = _layer_norm_module(shape, axes)
    ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
    assert stats["layer_norm"] == int(ours) and stats["unscheduled"] == 0, stats
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 3 + 5).astype("float32")  # a mean far from 0
    r = rng.standard_normal(shape).astype("float32")
    s = x.astype("float64") + r
    axis = tuple(a % len(shape) for a in axes)
    want = (s - s.mean(axis, keepdims=True)) / np.sqrt(s.var(axis, keepdims=True) + 1e-5) * gamma + beta
    got = _run(ex, x, r)
    assert got.shape == want.shape and _rel(got, want) < 1e-5
