"""The scheduled CPU pipeline (neo_local.backends.cpu_schedule): kernels and whole models against
torch, which target gets which vector width, and the fallback to TVM's plain pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
torch = pytest.importorskip("torch")

from tvm import relax  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule.schedules import choose_tile  # noqa: E402


def _host_has(flag: str) -> bool:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return flag in line.split(":", 1)[1].split()
    except OSError:
        pass
    return False


AVX2 = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "core-avx2"}
needs_avx2 = pytest.mark.skipif(not _host_has("avx2"), reason="the host cannot run AVX2 code")


def _run(executable, *arrays):
    vm = relax.VirtualMachine(executable, tvm.cpu())
    return vm["main"](*(tvm.runtime.tensor(a) for a in arrays)).numpy()


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


# --------------------------------------------------------------------------- target selection


def test_vector_config_by_target():
    assert cpu_schedule.vector_config(AVX2) == (8, 12)
    assert cpu_schedule.vector_config({**AVX2, "mcpu": "znver3"}) == (8, 12)
    assert cpu_schedule.vector_config({**AVX2, "mcpu": "skylake-avx512"}) == (16, 16)
    assert cpu_schedule.vector_config({**AVX2, "mcpu": "x86-64"}) is None  # SSE2 only: plain build
    assert cpu_schedule.vector_config({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"}) is None


@pytest.mark.parametrize("out_w,oc_chunks,max_acc", [(56, 8, 12), (7, 64, 12), (112, 8, 16), (13, 3, 12), (1, 1, 12)])
def test_tile_keeps_accumulators_in_registers(out_w, oc_chunks, max_acc):
    tc, tw = choose_tile(out_w, oc_chunks, max_acc)
    assert out_w % tw == 0 and oc_chunks % tc == 0
    assert 1 <= tc * tw <= max_acc


# --------------------------------------------------------------------------- kernels


def _conv_module(x_shape, w, b, stride, pad, residual: bool, act: str):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(x_shape, "float32"))
    params = [x]
    with bb.function("main", params):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(x, relax.const(w), strides=stride, padding=pad))
            y = bb.emit(relax.op.add(y, relax.const(b.reshape(1, -1, 1, 1))))
            if residual:
                y = bb.emit(relax.op.add(y, relax.op.nn.avg_pool2d(x, 1, strides=stride) if stride != 1 else x))
            if act == "relu":
                y = bb.emit(relax.op.nn.relu(y))
            elif act == "clip":
                y = bb.emit(relax.op.minimum(relax.op.maximum(y, relax.const(0.0)), relax.const(6.0)))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get()


@needs_avx2
@pytest.mark.parametrize(
    "cin,cout,hw,k,stride,pad,residual,act",
    [
        (16, 16, 14, 3, 1, 1, True, "relu"),    # 3x3 + bias + residual + relu
        (32, 64, 15, 3, 2, 1, False, "clip"),   # odd size, stride 2, relu6
        (16, 48, 7, 1, 1, 0, False, "none"),    # 1x1 without epilogue (cache_write path)
        (3, 16, 20, 7, 2, 3, False, "relu"),    # 3-channel stem (NCHW3c input block)
    ],
)
def test_scheduled_conv_matches_torch(cin, cout, hw, k, stride, pad, residual, act):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, cin, hw, hw)).astype("float32")
    w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype("float32")
    b = rng.standard_normal(cout).astype("float32")
    if residual:
        assert cin == cout
    mod = _conv_module(x.shape, w, b, stride, pad, residual, act)
    ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
    assert stats["conv"] >= 1 and stats["unscheduled"] == 0, stats
    got = _run(ex, x)

    with torch.no_grad():
        xt = torch.from_numpy(x)
        y = torch.nn.functional.conv2d(xt, torch.from_numpy(w), torch.from_numpy(b), stride=stride, padding=pad)
        if residual:
            y = y + (xt if stride == 1 else torch.nn.functional.avg_pool2d(xt, 1, stride))
        if act == "relu":
            y = torch.relu(y)
        elif act == "clip":
            y = torch.clamp(y, 0.0, 6.0)
    assert got.shape == tuple(y.shape)
    assert _rel(got, y.numpy()) < 1e-5


# --------------------------------------------------------------------------- whole models


@needs_avx2
@pytest.mark.parametrize("name", ["resnet_like", "mobilenet_like"])
def test_models_match_torch(name, tmp_path):
    import onnx

    from models.build import build_example
    from neo_local.frontends.base import TensorSpec
    from neo_local.frontends.onnx_import import import_onnx

    built = build_example(name, "onnx", tmp_path)
    import tarfile

    with tarfile.open(built.archive) as tar:
        tar.extractall(tmp_path / "model", filter="data")
    model = onnx.load(str(tmp_path / "model" / built.model_file))
    specs = tuple(TensorSpec(i["name"], tuple(i["shape"]), i["dtype"]) for i in built.inputs)
    mod, _ = import_onnx(model, specs, name)
    ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
    assert stats["conv"] > 0 and stats["unscheduled"] == 0, stats
    inputs = built.load_inputs()
    got = _run(ex, *(inputs[s.name] for s in specs))
    want = built.load_outputs()[0]
    assert _rel(got, want) < 1e-4


# --------------------------------------------------------------------------- fallback


def test_backend_falls_back_to_plain_build(monkeypatch):
    from neo_local.backends import tvm_relax

    def broken(mod, target):
        raise RuntimeError("schedule bug")

    monkeypatch.setattr(cpu_schedule, "compile_cpu", broken)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((2, 3), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(relax.op.nn.relu(x)))
        bb.emit_func_output(out)
    ex, pipeline = tvm_relax._compile(bb.get(), AVX2)
    assert pipeline == "TVM default (unscheduled: the scheduled pipeline failed: schedule bug)"
    a = np.array([[-1, 2, -3], [4, -5, 6]], "float32")
    if _host_has("avx2"):
        np.testing.assert_array_equal(_run(ex, a), np.maximum(a, 0))
