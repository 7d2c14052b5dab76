"""The bfloat16 precision of the scheduled CPU pipeline (neo_local.backends.cpu_schedule.bf16_dot):
float32 -> bfloat16 rounding, convs on AVX512_BF16's dot product against numpy on the same
rounded operands, and the targets that can and cannot take it."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

from tvm import relax, te  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule import bf16_dot  # noqa: E402
from neo_local.targets.cpu_features import host_cpu_flags  # noqa: E402
from neo_local.targets.options import BFLOAT16  # noqa: E402

ZNVER4 = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "znver4"}

needs_bf16 = pytest.mark.skipif(not {"avx512_bf16", "avx512vl"} <= (host_cpu_flags() or frozenset()),
                                reason="the host cannot run AVX512_BF16 code")


def _round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 -> the nearest bfloat16 (ties to even), as float32: numpy's own arithmetic on the bits."""
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16).astype(np.uint32)
    return np.where(np.isnan(x), np.float32("nan"), rounded.view(np.float32))


def test_rounding_to_bfloat16_is_to_nearest_even():
    """Ties (a low half of exactly 0x8000) go to the even neighbour, anything above up, NaN stays
    NaN, infinities and the largest finite bfloat16 stay put; against numpy's float64 arithmetic."""
    specials = np.array([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -(1 + 2 ** -8), np.inf, -np.inf,
                         np.nan, 0.0, -0.0, 3.3895314e38, 1e-40], "float32")
    x = np.concatenate([specials, np.random.default_rng(0).standard_normal(1000).astype("float32") * 100])
    t = te.placeholder(x.shape, "float32")
    lib = tvm.compile(te.create_prim_func([t, bf16_dot.to_bits(t)]), target="llvm")
    out = tvm.runtime.tensor(np.zeros(x.shape, "int16"))
    lib(tvm.runtime.tensor(x), out)
    got = (out.numpy().view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(got, _round_bf16(x))
    assert got[0] == 1 and got[1] == 1 + 4 * 2 ** -8 and got[2] == 1 + 2 ** -7  # tie down, tie up, above: up


def _two_convs(x_shape, w1, w2):
    """conv 3x3 (padded) -> relu -> conv 1x1: the second conv's input is the first's output, so its
    rounding to bfloat16 happens in the first kernel's epilogue."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(x_shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.relu(relax.op.nn.conv2d(x, relax.const(w1), padding=1)))
            out = bb.emit_output(bb.emit(relax.op.nn.conv2d(y, relax.const(w2))))
        bb.emit_func_output(out)
    return bb.get()


def _conv(x: np.ndarray, w: np.ndarray, padding: int) -> np.ndarray:
    import torch

    return torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(), padding=padding).numpy()


@needs_bf16
@pytest.mark.parametrize("lanes", [16, 8])
def test_convs_sum_bfloat16_products_in_float32(lanes, monkeypatch):
    """Each conv's result is the float32 sum of its bfloat16-rounded input and weights: numpy's
    float64 convs of the same rounded operands agree to float32 summation's error, while the
    float32 build's result is two orders of magnitude further off (so the test would see a build
    that stayed float32). 48 channels: 3 blocks of 16, 24 bfloat16 pairs each; in 8-lane blocks
    (ShuffleNet's, on ymm registers) 6 blocks of 8."""
    if lanes == 8:  # what an AVX-512 target does for a model that shuffles channels in groups of 8
        monkeypatch.setattr(cpu_schedule, "model_vector_config", lambda mod, target: (8, 16))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 48, 10, 10)).astype("float32")
    w1 = (rng.standard_normal((32, 48, 3, 3)) * 0.1).astype("float32")
    w2 = (rng.standard_normal((16, 32, 1, 1)) * 0.2).astype("float32")
    mod = _two_convs(x.shape, w1, w2)
    y = np.maximum(_conv(_round_bf16(x), _round_bf16(w1), 1), 0).astype("float32")
    want = _conv(_round_bf16(y), _round_bf16(w2), 0)
    tol = 1e-5 * np.abs(want).max()
    got = {}
    for precision in (BFLOAT16, "float32"):
        ex, stats = cpu_schedule.compile_cpu(mod, ZNVER4, precision=precision)
        assert stats["conv"] == 2 and stats["unscheduled"] == 0 and stats["lanes"] == lanes, stats
        dot = {16: bf16_dot.BF16_512, 8: bf16_dot.BF16_256}[lanes]
        assert stats.get("bf16_dot") == (dot.name if precision == BFLOAT16 else None), stats
        got[precision] = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
    np.testing.assert_allclose(got[BFLOAT16], want, rtol=0, atol=tol)
    assert np.abs(got["float32"] - want).max() > 100 * tol


def test_the_first_conv_rounds_in_the_producer_s_epilogue():
    """Scheduled (no build needed): both convs on the 16-lane bfloat16 dot, and the rounding of the
    second conv's input fused into the first conv's kernel, which writes bfloat16 bits."""
    rng = np.random.default_rng(1)
    mod = _two_convs((1, 48, 10, 10), rng.standard_normal((32, 48, 3, 3)).astype("float32"),
                     rng.standard_normal((16, 32, 1, 1)).astype("float32"))
    out, stats = cpu_schedule.optimize(mod, ZNVER4, precision=BFLOAT16)
    assert stats["bf16_dot"] == bf16_dot.BF16_512.name and stats["conv"] == 2, stats
    kernels = {gv.name_hint: f for gv, f in out.functions_items() if "conv2d_nchwc_dot" in gv.name_hint}
    assert len(kernels) == 2, list(kernels)
    first = next(f for name, f in kernels.items() if "relu" in name)
    assert "to_bf16" in first.script() and str(first.params[-1].ty.dtype) == "int16"


def test_bfloat16_dot_steps_allocate_no_workspace():
    """The dot step is one expression (as ``int8_dot``'s): a named value would be a local buffer
    allocated through TVMBackendAllocWorkspace in every parallel task. An unpadded 1x1 conv
    allocates nothing else."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 48, 10, 10), "float32"))
    w = np.random.default_rng(2).standard_normal((32, 48, 1, 1)).astype("float32")
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(relax.op.nn.conv2d(x, relax.const(w))))
        bb.emit_func_output(out)
    ex, stats = cpu_schedule.compile_cpu(bb.get(), ZNVER4, precision=BFLOAT16)
    assert stats["bf16_dot"] == bf16_dot.BF16_512.name, stats
    assert "TVMBackendAllocWorkspace" not in ex.mod.imports[0].inspect_source("ll")


def test_bfloat16_needs_the_instruction():
    """A bfloat16 build for a CPU without AVX512_BF16 is refused here too, not built in float32."""
    with pytest.raises(ValueError, match="AVX512_BF16"):
        cpu_schedule.dots_for({"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "skylake-avx512"}, 16, BFLOAT16)
    assert cpu_schedule.dots_for(ZNVER4, 8, BFLOAT16).bf16 is bf16_dot.BF16_256
    assert cpu_schedule.dots_for(ZNVER4, 16).bf16 is None


@needs_bf16
def test_tuning_times_bfloat16_convs_on_bfloat16_inputs(tmp_path):
    """The tuner's random inputs for a bfloat16 conv are bit patterns of floats (small integers
    there read as NaNs, whose outputs would fail every candidate's check): each trial's outputs
    are checked and kept, and the tuned build still computes the rounded operands' convs."""
    from neo_local.backends.cpu_schedule.tuning import random_inputs, workloads
    from neo_local.backends.cpu_schedule.passes import Dots, relax_passes
    from neo_local.targets.options import TuningOptions

    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 32, 8, 8)).astype("float32")
    w1 = (rng.standard_normal((32, 32, 3, 3)) * 0.1).astype("float32")
    w2 = (rng.standard_normal((16, 32, 1, 1)) * 0.2).astype("float32")
    mod = _two_convs(x.shape, w1, w2)
    conv = next(w for w in workloads(relax_passes(mod, 16, 16, Dots(bf16=bf16_dot.BF16_512)), 16, 16)
                if w.kind == "conv")
    bits = [a for a in random_inputs(conv.func) if a.dtype == np.int16]
    assert bits and all(np.isfinite((b.view(np.uint16).astype(np.uint32) << 16).view(np.float32)).all() for b in bits)

    lines = []
    ex, stats = cpu_schedule.compile_cpu(mod, ZNVER4, TuningOptions(trials=8, records=str(tmp_path / "r.jsonl")),
                                         progress=lines.append, precision=BFLOAT16)
    assert stats["tuning_trials"] == 8 and not [line for line in lines if "wrong outputs" in line], lines
    y = np.maximum(_conv(_round_bf16(x), _round_bf16(w1), 1), 0).astype("float32")
    want = _conv(_round_bf16(y), _round_bf16(w2), 0)
    got = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


def _dense_layers(x_shape, c1, b1, c2):
    """dense (constant weights) + bias -> relu -> dense, then the result times its own transpose:
    two dense layers for the bfloat16 dot and a product of two computed values (attention's kind)."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(x_shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            h = bb.emit(relax.op.nn.relu(relax.op.add(relax.op.matmul(x, relax.const(c1)), relax.const(b1))))
            y = bb.emit(relax.op.matmul(h, relax.const(c2)))
            scores = bb.emit(relax.op.matmul(y, relax.op.permute_dims(y, [0, 2, 1])))
            out = bb.emit_output(relax.Tuple([y, scores]))
        bb.emit_func_output(out)
    return bb.get()


@needs_bf16
def test_dense_layers_sum_bfloat16_products_in_float32():
    """A bfloat16 build's dense layers (``dot_matmul``): each is the float32 sum of its input and
    weights rounded to bfloat16, as numpy computes it from the same rounded operands; the float32
    build's is two orders of magnitude further off. The product of two computed values stays
    float32 (its operands are the rounded layers' float32 outputs)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 32, 64)).astype("float32")
    c1 = (rng.standard_normal((64, 32)) * 0.2).astype("float32")
    b1 = rng.standard_normal(32).astype("float32")
    c2 = (rng.standard_normal((32, 48)) * 0.2).astype("float32")
    mod = _dense_layers(x.shape, c1, b1, c2)
    h = np.maximum(_round_bf16(x).astype(np.float64) @ _round_bf16(c1) + b1, 0).astype("float32")
    want = _round_bf16(h).astype(np.float64) @ _round_bf16(c2)
    tol = 1e-5 * np.abs(want).max()
    got = {}
    for precision in (BFLOAT16, "float32"):
        ex, stats = cpu_schedule.compile_cpu(mod, ZNVER4, precision=precision)
        assert stats["matmul"] == 3 and stats["unscheduled"] == 0, stats
        y, scores = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x))
        got[precision] = y.numpy()
        np.testing.assert_allclose(scores.numpy(), y.numpy() @ y.numpy().transpose(0, 2, 1), rtol=1e-5,
                                   atol=1e-5 * np.abs(scores.numpy()).max())
    np.testing.assert_allclose(got[BFLOAT16], want, rtol=0, atol=tol)
    assert np.abs(got["float32"] - want).max() > 100 * tol


def test_dense_layers_take_the_dot_and_its_tuning_space():
    """Scheduled (no build needed): the two dense layers on the 16-lane bfloat16 dot with their
    weights paired at compile time, the product of computed values not; every config of the
    tuner's space for a dense layer schedules."""
    from neo_local.backends.cpu_schedule import schedules
    from neo_local.backends.cpu_schedule.passes import Dots, relax_passes

    rng = np.random.default_rng(3)
    mod = _dense_layers((1, 32, 64), rng.standard_normal((64, 32)).astype("float32"),
                        rng.standard_normal(32).astype("float32"), rng.standard_normal((32, 48)).astype("float32"))
    out, stats = cpu_schedule.optimize(mod, ZNVER4, precision=BFLOAT16)
    assert stats["matmul"] == 3, stats
    dense = [name for name, f in ((gv.name_hint, f) for gv, f in out.functions_items())
             if "matmul_bf16" in name and bf16_dot.BF16_512.name in f.script()]
    assert len(dense) == 2, dense
    legal = relax_passes(mod, 16, 16, Dots(bf16=bf16_dot.BF16_512))
    func = next(f for gv, f in legal.functions_items() if gv.name_hint.startswith("matmul_bf16"))
    space = schedules.matmul_space(func, 16, 16)
    assert len(space) > 4 and all(schedules.schedule_matmul(func, 16, 16, cfg) is not None for cfg in space)
