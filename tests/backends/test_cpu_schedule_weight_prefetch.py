"""Large convs prefetch their next weights (neo_local.backends.cpu_schedule.weight_prefetch): the
kernels of convs with a megabyte of weights or more carry ``llvm.prefetch`` calls, smaller ones do
not, and both compute what numpy does."""

from __future__ import annotations

import re

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

from tvm import relax  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule.weight_prefetch import MIN_WEIGHT_BYTES  # noqa: E402
from test_cpu_schedule import AVX2, _conv_module, _rel, _run, needs_avx2  # noqa: E402


def _conv(cin, cout, hw):
    rng = np.random.default_rng(cin + cout)
    x = rng.standard_normal((1, cin, hw, hw)).astype("float32")
    w = (rng.standard_normal((cout, cin, 1, 1)) / np.sqrt(cin)).astype("float32")
    b = rng.standard_normal(cout).astype("float32")
    want = np.maximum(np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x) + b.reshape(1, -1, 1, 1), 0)
    return x, w, b, want


def _prefetches(executable) -> int:
    return len(re.findall(r"call void @llvm\.prefetch", executable.mod.imports[0].inspect_source("ll")))


@needs_avx2
@pytest.mark.parametrize("cin, cout, prefetched", [(512, 512, True), (64, 128, False)])
def test_convs_with_large_weights_prefetch_them_and_compute_the_same(cin, cout, prefetched):
    """512 -> 512 (1 MB of weights) at 7x7 prefetches; 64 -> 128 (32 KB) does not."""
    assert (4 * cin * cout >= MIN_WEIGHT_BYTES) == prefetched
    x, w, b, want = _conv(cin, cout, 7)
    executable, stats = cpu_schedule.compile_cpu(_conv_module(x.shape, w, b, 1, 0, False, "relu"), AVX2)
    assert stats["conv"] == 1, stats
    assert (_prefetches(executable) > 0) == prefetched
    assert _rel(_run(executable, x), want) < 1e-5


@needs_avx2
def test_a_conv_computed_by_rows_is_not_marked(monkeypatch):
    """A conv whose reduction runs once per tile of a row would prefetch the same lines for every
    tile: with flat convs turned off, the 512 -> 512 conv above carries no prefetch."""
    from neo_local.backends.cpu_schedule import passes

    by_rows = passes.conv_columns
    monkeypatch.setattr(passes, "conv_columns", lambda *args, **kwargs: by_rows(*args, **{**kwargs, "flatten": False}))
    x, w, b, want = _conv(512, 512, 7)
    executable, _ = cpu_schedule.compile_cpu(_conv_module(x.shape, w, b, 1, 0, False, "relu"), AVX2)
    assert _prefetches(executable) == 0
    assert _rel(_run(executable, x), want) < 1e-5
