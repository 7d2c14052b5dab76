"""exp, tanh, erf, sigmoid and softmax as topi's vectorizable polynomials (cpu_schedule.fast_math), not libm
calls."""

from __future__ import annotations

import subprocess
from math import erf

import numpy as np
import pytest
from tvm import relax

from neo_local.backends import cpu_schedule
from test_cpu_schedule import AVX2, _matmul_module, _rel, _run, needs_avx2


def _libm_calls(executable, tmp_path) -> set[str]:
    lib = tmp_path / "k.so"
    executable.export_library(str(lib))
    out = subprocess.run(["nm", "-D", "--undefined-only", str(lib)], capture_output=True, text=True, check=True)
    return {line.split()[-1].split("@")[0] for line in out.stdout.splitlines()} & {"expf", "tanhf", "erff"}


@needs_avx2
def test_gelu_epilogue_uses_no_libm_erf_and_matches(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 64, 128)).astype("float32")
    b = (rng.standard_normal((128, 512)) / 8).astype("float32")
    ex, stats = cpu_schedule.compile_cpu(_matmul_module(x.shape, b, None, True), AVX2)
    assert stats["matmul"] == 1 and _libm_calls(ex, tmp_path) == set()
    want = x.astype("float64") @ b
    want = want * 0.5 * (1 + np.vectorize(erf)(want / np.sqrt(2)))
    assert _rel(_run(ex, x), want) < 1e-6


@needs_avx2
def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("op,ref,lo,hi,tolerance", [
    (relax.op.exp, np.exp, -80.0, 80.0, 1e-6), (relax.op.tanh, np.tanh, -10.0, 10.0, 1e-6),
    (relax.op.sigmoid, lambda v: 1 / (1 + np.exp(-v)), -80.0, 80.0, 1e-6),
    # x - max(x) rounds in float32 first: TVM's own softmax (libm's expf) is 2.7e-6 off here,
    # numpy's in float32 2.1e-6, this one 2.9e-6
    (lambda v: relax.op.nn.softmax(v, axis=1), _softmax, -30.0, 30.0, 5e-6),
], ids=["exp", "tanh", "sigmoid", "softmax"])
def test_exp_tanh_sigmoid_and_softmax_match_float64_to_a_few_ulps(op, ref, lo, hi, tolerance, tmp_path):
    data = np.random.default_rng(1).uniform(lo, hi, (4, 1024)).astype("float32")
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(data.shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(op(x))
        bb.emit_func_output(out)
    ex, _ = cpu_schedule.compile_cpu(bb.get(), AVX2)
    assert _libm_calls(ex, tmp_path) == set()
    want = ref(data.astype("float64"))
    assert float(np.max(np.abs(_run(ex, data) - want) / np.maximum(np.abs(want), 1e-30))) < tolerance


def test_other_dtypes_keep_tvms_legalization():
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((8,), "float64"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.exp(x))
        bb.emit_func_output(out)
    text = relax.transform.LegalizeOps(customize_legalize_map=cpu_schedule.fast_math.LEGALIZERS)(bb.get()).script()
    assert "T.exp(" in text and "fast" not in text
