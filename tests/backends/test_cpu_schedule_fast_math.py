"""exp, tanh, erf, sigmoid, SiLU, GELU and softmax as vectorizable polynomials (cpu_schedule.fast_math), not
libm calls."""

from __future__ import annotations

import subprocess
from math import erf, pi

import numpy as np
import pytest
import tvm
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


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize("op,ref,lo,hi,tolerance", [
    (relax.op.exp, np.exp, -80.0, 80.0, 1e-6), (relax.op.tanh, np.tanh, -10.0, 10.0, 1e-6),
    (relax.op.sigmoid, lambda v: 1 / (1 + np.exp(-v)), -80.0, 80.0, 1e-6),
    # x - max(x) rounds in float32 first: TVM's own softmax (libm's expf) is 2.7e-6 off here,
    # numpy's in float32 2.1e-6, this one 2.9e-6
    (lambda v: relax.op.nn.softmax(v, axis=1), _softmax, -30.0, 30.0, 5e-6),
    (relax.op.nn.silu, lambda v: v / (1 + np.exp(-v)), -80.0, 80.0, 1e-6),
], ids=["exp", "tanh", "sigmoid", "softmax", "silu"])
def test_activations_match_float64_to_a_few_ulps(op, ref, lo, hi, tolerance, tmp_path):
    data, got = _compiled_on_uniform(op, lo, hi, tmp_path)
    want = ref(data.astype("float64"))
    assert float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-30))) < tolerance


@pytest.mark.parametrize("op,ref", [
    (relax.op.nn.gelu, lambda v: v * 0.5 * (1 + np.vectorize(erf)(v / np.sqrt(2)))),
    (relax.op.nn.gelu_tanh, lambda v: 0.5 * v * (1 + np.tanh(np.sqrt(2 / pi) * (v + 0.044715 * v ** 3)))),
], ids=["gelu", "gelu_tanh"])
def test_gelus_match_float64_to_a_few_ulps_of_their_scale(op, ref, tmp_path):
    """PyTorch's GELUs (``nn.gelu``, ``nn.gelu_tanh``): TVM's legalizations call libm. Below 0 the
    ``1 + erf`` (``1 + tanh``) cancels: with libm's ``erff`` TVM's own is 4.3e-7 off in absolute
    terms there (9.6e-6 relative at -3), these 8.6e-7 and 6.8e-7."""
    data, got = _compiled_on_uniform(op, -10.0, 10.0, tmp_path)
    want = ref(data.astype("float64"))
    assert float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0))) < 1.5e-6


def _compiled_on_uniform(op, lo: float, hi: float, tmp_path) -> tuple[np.ndarray, np.ndarray]:
    """(uniform float32 data in [lo, hi), ``op`` of it compiled by the CPU pipeline), after checking
    that the library calls no libm function."""
    data = np.random.default_rng(1).uniform(lo, hi, (4, 1024)).astype("float32")
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(data.shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(op(x))
        bb.emit_func_output(out)
    ex, _ = cpu_schedule.compile_cpu(bb.get(), AVX2)
    assert _libm_calls(ex, tmp_path) == set()
    return data, _run(ex, data)


def test_other_dtypes_keep_tvms_legalization():
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((8,), "float64"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.exp(x))
        bb.emit_func_output(out)
    text = relax.transform.LegalizeOps(customize_legalize_map=cpu_schedule.fast_math.LEGALIZERS)(bb.get()).script()
    assert "T.exp(" in text and "fast" not in text


def _fused_names(mod) -> list[str]:
    from neo_local.backends.cpu_schedule.passes import relax_passes

    return [gv.name_hint for gv, f in relax_passes(mod, 8, 12).functions_items() if isinstance(f, tvm.tirx.PrimFunc)]


@pytest.mark.parametrize("gate_first", [False, True])
def test_x_times_sigmoid_x_becomes_one_silu_in_the_conv_epilogue(gate_first):
    rng = np.random.default_rng(0)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 16, 8, 8), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(x, relax.const(rng.standard_normal((16, 16, 1, 1)).astype("float32"))))
            gate = bb.emit(relax.op.sigmoid(y))
            out = bb.emit_output(relax.op.multiply(gate, y) if gate_first else relax.op.multiply(y, gate))
        bb.emit_func_output(out)
    names = _fused_names(bb.get())
    assert any("conv2d" in n and "silu" in n for n in names) and not any("sigmoid" in n for n in names), names


def test_a_sigmoid_gating_another_tensor_stays_a_sigmoid():
    """A squeeze-excite gate multiplies the feature map, not its own input: no SiLU there."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 16, 8, 8), "float32"))
    g = relax.Var("g", relax.TensorType((1, 16, 1, 1), "float32"))
    with bb.function("main", [x, g]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.multiply(x, relax.op.sigmoid(g)))
        bb.emit_func_output(out)
    names = _fused_names(bb.get())
    assert any("sigmoid" in n for n in names) and not any("silu" in n for n in names), names
