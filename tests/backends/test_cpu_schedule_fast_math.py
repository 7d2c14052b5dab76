"""exp, log, tanh, erf, sigmoid, SiLU, GELU, softmax and log-softmax as vectorizable polynomials
(cpu_schedule.fast_math), not libm calls."""

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
    return {line.split()[-1].split("@")[0] for line in out.stdout.splitlines()} & {"expf", "tanhf", "erff", "logf"}


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


def _log_softmax(v: np.ndarray) -> np.ndarray:
    shifted = v - v.max(1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(1, keepdims=True))


@pytest.mark.parametrize("op,ref,lo,hi", [
    (relax.op.nn.gelu, lambda v: v * 0.5 * (1 + np.vectorize(erf)(v / np.sqrt(2))), -10.0, 10.0),
    (relax.op.nn.gelu_tanh, lambda v: 0.5 * v * (1 + np.tanh(np.sqrt(2 / pi) * (v + 0.044715 * v ** 3))), -10.0, 10.0),
    (lambda v: relax.op.nn.log_softmax(v, axis=1), _log_softmax, -30.0, 30.0),
], ids=["gelu", "gelu_tanh", "log_softmax"])
def test_gelus_and_log_softmax_match_float64_to_a_few_ulps_of_their_scale(op, ref, lo, hi, tmp_path):
    """PyTorch's GELUs (``nn.gelu``, ``nn.gelu_tanh``): TVM's legalizations call libm. Below 0 the
    ``1 + erf`` (``1 + tanh``) cancels: with libm's ``erff`` TVM's own is 4.3e-7 off in absolute
    terms there (9.6e-6 relative at -3), these 8.6e-7 and 6.8e-7. A log-softmax near 0 is the
    difference of two larger numbers."""
    data, got = _compiled_on_uniform(op, lo, hi, tmp_path)
    want = ref(data.astype("float64"))
    assert float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0))) < 1.5e-6


def test_log_matches_float64_over_the_float32_range_and_keeps_its_special_values(tmp_path):
    """ONNX's Log and Softplus, Mish, PyTorch's log-sigmoid: TVM's legalization calls libm's ``logf``."""
    rng = np.random.default_rng(2)
    data = np.exp(rng.uniform(-103, 88.7, 4096)).astype("float32")  # subnormals to near the largest float
    special = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1e-45, 3.4e38], "float32")
    data[:special.size] = special
    got = _compiled(relax.op.log, data, tmp_path)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.log(data.astype("float64"))
    assert np.array_equal(got[:special.size], want[:special.size].astype("float32"), equal_nan=True)
    got, want = got[special.size:], want[special.size:]
    assert float(np.max(np.abs(got - want) / np.abs(want).clip(1e-30))) < 2e-7


@pytest.mark.parametrize("op,attrs", [("Softplus", {}), ("Mish", {}), ("LogSoftmax", {"axis": 1}), ("Elu", {}),
                                      ("Selu", {}), ("Gelu", {}), ("Tanh", {}), ("HardSwish", {})])
def test_onnx_activations_compile_without_libm_and_match_the_reference(op, attrs, tmp_path):
    """Each activation as TVM's ONNX importer writes it (Softplus as ``log(1 + e^-|x|) + max(x, 0)``,
    DarkNet's Mish as ``x * tanh(softplus(x))``, ...): vectorized, none left to libm."""
    import onnx
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    from neo_local.frontends.base import TensorSpec
    from neo_local.frontends.onnx_import import import_onnx

    shape = (1, 16, 8, 8)
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], **attrs)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    onnx.checker.check_model(model)
    mod, _ = import_onnx(model, (TensorSpec("x", shape, "float32"),), "m")
    ex, _ = cpu_schedule.compile_cpu(mod, AVX2)
    assert _libm_calls(ex, tmp_path) == set()
    x = (np.random.default_rng(3).standard_normal(shape) * 4).astype("float32")
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    assert float(np.max(np.abs(_run(ex, x) - want) / np.maximum(np.abs(want), 1.0))) < 2e-6


def _compiled_on_uniform(op, lo: float, hi: float, tmp_path) -> tuple[np.ndarray, np.ndarray]:
    """(uniform float32 data in [lo, hi), ``op`` of it compiled by the CPU pipeline)."""
    data = np.random.default_rng(1).uniform(lo, hi, (4, 1024)).astype("float32")
    return data, _compiled(op, data, tmp_path)


def _compiled(op, data: np.ndarray, tmp_path) -> np.ndarray:
    """``op`` of ``data`` compiled by the CPU pipeline and run, after checking that the library
    calls no libm function."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(data.shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(op(x))
        bb.emit_func_output(out)
    ex, _ = cpu_schedule.compile_cpu(bb.get(), AVX2)
    assert _libm_calls(ex, tmp_path) == set()
    return _run(ex, data)


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
