"""int8 QDQ models on the scheduled CPU pipeline (neo_local.backends.cpu_schedule.quantized):
quantize/dequantize pairs as float ops with ONNX's rounding and clipping, convs on integer-valued
floats where the sums stay exact, and a real QDQ CNN from onnxruntime's quantizer against
onnxruntime's own int8 outputs."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
pytest.importorskip("onnxruntime")

from tvm import relax  # noqa: E402

from example_archives import CACHE  # noqa: E402
from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule import int8_dot  # noqa: E402
from neo_local.backends.cpu_schedule.quantized import EXACT_LIMIT, pairs_fit_int16, rewrite_with_stats  # noqa: E402
from neo_local.targets.cpu_features import host_cpu_flags  # noqa: E402

AVX2 = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "core-avx2"}
ZNVER4 = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "znver4"}


def _host_has_avx2() -> bool:
    try:
        return any(line.startswith("flags") and " avx2" in line for line in open("/proc/cpuinfo"))
    except OSError:
        return False


needs_avx2 = pytest.mark.skipif(not _host_has_avx2(), reason="the host cannot run AVX2 code")


def _qdq_conv_module(x_shape, w_int, w_scale, x_scale, x_zp, padding=1, layout="NCHW", residual=False):
    """quantize(x) -> dequantize -> conv2d(., dequantize(w_int, w_scale per channel)), as the ONNX
    importer writes a QDQ conv (``layout`` "NHWC": as the TFLite importer does, with HWIO weights
    from ``w_int`` in OIHW); int8 activations. ``residual``: the dequantized input added to the
    conv's output, as a ResNet block does."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(x_shape, "float32"))
    s, zp = relax.const(x_scale, "float32"), relax.const(x_zp, "int8")
    kernel, w_axis = ("OIHW", 0) if layout == "NCHW" else ("HWIO", 3)
    w_int = w_int.transpose(["OIHW".index(axis) for axis in kernel])
    with bb.function("main", [x]):
        with bb.dataflow():
            q = bb.emit(relax.op.quantize(x, s, zp, axis=1, out_dtype="int8"))
            dq = bb.emit(relax.op.dequantize(q, s, zp, axis=1, out_dtype="float32"))
            w = bb.emit(relax.op.dequantize(relax.const(w_int), relax.const(w_scale), relax.const(np.zeros(len(w_scale), "int8")),
                                            axis=w_axis, out_dtype="float32"))
            y = bb.emit(relax.op.nn.conv2d(dq, w, padding=padding, data_layout=layout, kernel_layout=kernel))
            out = bb.emit_output(bb.emit(relax.op.add(y, dq)) if residual else y)
        bb.emit_func_output(out)
    return bb.get()


def _reference(x, w_int, w_scale, x_scale, x_zp, padding=1):
    """ONNX's QuantizeLinear (round half to even, saturate) and the exact integer conv, in numpy/torch."""
    import torch

    t = np.clip(np.round(x / np.float32(x_scale)) + x_zp, -128, 127) - x_zp
    acc = torch.nn.functional.conv2d(torch.from_numpy(t).double(), torch.from_numpy(w_int).double(), padding=padding).numpy()
    return acc * (np.float64(x_scale) * w_scale.astype(np.float64)).reshape(1, -1, 1, 1)


def _run(mod, x):
    ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
    vm = relax.VirtualMachine(ex, tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy(), stats


@needs_avx2
def test_small_conv_sums_exactly_on_integer_valued_floats():
    """16 input channels, 3x3, int8 weights: the sum bound is far below 2^24, so the conv runs on
    the integers themselves; inputs on rounding ties (k + 0.5 steps) and beyond the int8 range check
    ONNX's round-half-to-even and saturation. The only float rounding left is the final scale."""
    rng = np.random.default_rng(0)
    w_int = rng.integers(-127, 128, (16, 16, 3, 3)).astype("int8")
    w_scale = rng.uniform(0.001, 0.01, 16).astype("float32")
    x_scale, x_zp = 0.05, 3
    x = (rng.integers(-300, 300, (1, 16, 12, 12)) + 0.5).astype("float32") * np.float32(x_scale)
    mod = _qdq_conv_module(x.shape, w_int, w_scale, x_scale, x_zp)
    assert rewrite_with_stats(mod)[1].integer_convs == 1
    got, stats = _run(mod, x)
    assert stats["conv"] == 1 and stats["unscheduled"] == 0, stats
    want = _reference(x, w_int, w_scale, x_scale, x_zp)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


@needs_avx2
def test_unpadded_conv_of_shifted_inputs_runs_on_int8_kernels():
    """int8 activations with a zero point of 3 (t in [-131, 124]) into an unpadded 1x1 and 3x3 conv
    of 7-bit weights: u = t + 131 as uint8 on AVX2's int8 dot, 131 * sum(w) taken off after. The
    integer sums are exact; the only float rounding left is the final scale."""
    rng = np.random.default_rng(2)
    for k in (1, 3):
        w_int = rng.integers(-64, 64, (16, 24, k, k)).astype("int8")
        w_scale = rng.uniform(0.001, 0.01, 16).astype("float32")
        x_scale, x_zp = 0.05, 3
        x = (rng.integers(-300, 300, (1, 24, 9, 9)) + 0.5).astype("float32") * np.float32(x_scale)
        mod = _qdq_conv_module(x.shape, w_int, w_scale, x_scale, x_zp, padding=0)
        assert rewrite_with_stats(mod, int8_dot.AVX2)[1].int8_convs == 1
        got, stats = _run(mod, x)
        assert stats["int8_kernel_convs"] == 1 and stats["unscheduled"] == 0, stats
        want = _reference(x, w_int, w_scale, x_scale, x_zp, padding=0)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


@needs_avx2
@pytest.mark.parametrize("k,x_zp,padding,path", [(1, -128, 0, "int8_convs"), (3, 3, 0, "int8_convs"),
                                                 (3, 3, 1, "integer_convs")])
def test_channels_last_convs_take_the_integer_paths(k, x_zp, padding, path):
    """A TFLite int8 model's convs are NHWC with HWIO weights: they take the same integer paths as
    ONNX's NCHW ones (before, they kept the dequantized float form). A padded conv of shifted inputs
    (zero point 3) sums on integer-valued floats; the others on int8 kernels."""
    rng = np.random.default_rng(4)
    w_int = rng.integers(-64, 64, (16, 24, k, k)).astype("int8")
    w_scale = rng.uniform(0.001, 0.01, 16).astype("float32")
    x_scale = 0.05
    x = (rng.integers(-300, 300, (1, 24, 9, 9)) + 0.5).astype("float32") * np.float32(x_scale)
    nhwc = x.transpose(0, 2, 3, 1)
    mod = _qdq_conv_module(nhwc.shape, w_int, w_scale, x_scale, x_zp, padding, layout="NHWC")
    assert getattr(rewrite_with_stats(mod, int8_dot.AVX2)[1], path) == 1
    got, stats = _run(mod, nhwc)
    assert stats["unscheduled"] == 0 and stats["int8_kernel_convs"] == (path == "int8_convs"), stats
    want = _reference(x, w_int, w_scale, x_scale, x_zp, padding).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


def _on_vnni_only(mod, x):
    """``mod``'s one conv takes VNNI's int8 kernel (an int16-pair instruction keeps the integer-valued
    floats), built blocked for znver4; its output on ``x``, None where this host lacks VNNI."""
    assert rewrite_with_stats(mod, int8_dot.VNNI_512)[1].int8_convs == 1
    assert rewrite_with_stats(mod, int8_dot.AVX512BW)[1].integer_convs == 1
    ex, stats = cpu_schedule.compile_cpu(mod, ZNVER4)
    assert stats["int8_kernel_convs"] == 1 and stats["conv"] == 1, stats
    assert stats["unscheduled"] == 0 and stats["dlight"] == 0, stats
    if not {"avx512f", "avx512_vnni"} <= (host_cpu_flags() or frozenset()):
        return None
    return relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()


@pytest.mark.parametrize("cin,cout", [(24, 40), (40, 16), (16, 24), (16, 8), (8, 16)])
def test_channels_off_the_blocks_run_on_vnni_kernels_padded(cin, cout):
    """Channels that are not whole 16-lane blocks (MobileNetV3's 24, 40, 72...; under one block:
    the TFLite MobileNetV2's 8) run on VNNI's int8 kernels, padded to whole blocks with zero
    weights by ``channel_padding``; an instruction that adds product pairs in int16 keeps them on
    integer-valued floats (its pairs were checked in the model's order). On a VNNI host the
    padded kernel's results are the exact integer sums."""
    rng = np.random.default_rng(6)
    w_int = rng.integers(-127, 128, (cout, cin, 1, 1)).astype("int8")
    w_scale = rng.uniform(0.001, 0.01, cout).astype("float32")
    x = (rng.integers(-300, 300, (1, cin, 7, 7)) + 0.5).astype("float32") * np.float32(0.05)
    mod = _qdq_conv_module(x.shape, w_int, w_scale, 0.05, 3, padding=0)
    got = _on_vnni_only(mod, x)
    if got is None:
        return
    want = _reference(x, w_int, w_scale, 0.05, 3, padding=0)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


def test_a_conv_with_a_symbolic_batch_still_takes_the_int8_kernel():
    """The pixel count that admits convs under a block needs a static output shape; with a symbolic
    batch the rewrite must not fail on it (it raised a TypeError), and whole blocks still take VNNI."""
    w_int = np.random.default_rng(10).integers(-64, 64, (16, 16, 1, 1)).astype("int8")
    batch = tvm.tirx.Var("n", "int64")
    module = _qdq_conv_module((batch, 16, 7, 7), w_int, np.full(16, 0.01, "float32"), 0.05, 3, padding=0)
    assert rewrite_with_stats(module, int8_dot.VNNI_512)[1].int8_convs == 1


@pytest.mark.parametrize("cin,cout,size", [(16, 8, 1), (3, 16, 7)], ids=["squeeze-excite", "rgb"])
def test_convs_under_a_block_that_no_kernel_fits_stay_on_integer_floats(cin, cout, size):
    """A squeeze-excite's conv to 8 channels over one pixel: ``channel_padding`` leaves its output
    8 channels wide (doubling buys nothing there), which no int8 kernel's block fits. A quantized
    3-channel input (a float model's quantized image) fills no group of 4 input channels."""
    w_int = np.random.default_rng(9).integers(-127, 128, (cout, cin, 1, 1)).astype("int8")
    module = _qdq_conv_module((1, cin, size, size), w_int, np.full(cout, 0.01, "float32"), 0.05, -128, padding=0)
    counts = rewrite_with_stats(module, int8_dot.VNNI_512)[1]
    assert (counts.int8_convs, counts.integer_convs) == (0, 1)


def test_requantization_rounding_is_vectorized():
    """TVM 0.27 does not mark ``nearbyint`` vectorizable, and its VectorizeLoop scalarized every
    loop holding one: each requantizing epilogue, left to LLVM to vectorize again. Where LLVM did
    not (the TFLite MobileNetV2 int8's 16 -> 8 conv's 12-pixel epilogue, after its 8 channels went
    onto VNNI), the kernel took 47.7 us instead of 6.3. The mark (``tir_pipeline``) keeps them
    vectors: the rounding is one ``llvm.nearbyint`` of 16 lanes."""
    from tvm.script import tirx as T

    from neo_local.backends.cpu_schedule.tir_pipeline import pipeline

    @T.prim_func
    def requantize(a: T.Buffer((64,), "float32"), b: T.Buffer((64,), "uint8")):
        for i in T.serial(4):
            for j in T.vectorized(16):
                b[i * 16 + j] = T.Cast("uint8", T.min(T.max(T.nearbyint(a[i * 16 + j] / T.float32(0.05)), T.float32(0)),
                                                      T.float32(255)))

    lib = tvm.compile(tvm.IRModule({"main": requantize}), target=tvm.target.Target(ZNVER4), tir_pipeline=pipeline())
    ll = lib.mod.inspect_source("ll")
    assert "@llvm.nearbyint.v16f32" in ll and "@llvm.nearbyint.f32(" not in ll
    a = (np.arange(64, dtype="float32") - 10) * np.float32(0.0375)
    if {"avx512f"} <= (host_cpu_flags() or frozenset()):
        got = tvm.runtime.tensor(np.zeros(64, "uint8"))
        lib["main"](tvm.runtime.tensor(a), got)
        np.testing.assert_array_equal(got.numpy(), np.clip(np.round(a / np.float32(0.05)), 0, 255).astype("uint8"))


def _input_conv_module(x_shape, dtype, x_zp, w_int, w_scale, padding, strides):
    """conv2d(dequantize(x), dequantize(w_int)) on an int8 or uint8 model input x, channels-last
    with HWIO weights from ``w_int`` (OIHW), as the TFLite importer writes a full-integer model's
    stem: no quantize made x."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(x_shape, dtype))
    w = relax.const(w_int.transpose(2, 3, 1, 0))
    with bb.function("main", [x]):
        with bb.dataflow():
            dq = bb.emit(relax.op.dequantize(x, relax.const(0.05, "float32"), relax.const(x_zp, "int32"),
                                             axis=0, out_dtype="float32"))
            wq = bb.emit(relax.op.dequantize(w, relax.const(w_scale), relax.const(np.zeros(len(w_scale), "int32")),
                                             axis=3, out_dtype="float32"))
            y = bb.emit(relax.op.nn.conv2d(dq, wq, strides=strides, padding=padding, data_layout="NHWC",
                                           kernel_layout="HWIO"))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get()


@pytest.mark.parametrize("dtype,x_zp,cin,padding,strides", [
    ("int8", -8, 3, (0, 0, 1, 1), 2),  # the TFLite int8 CNN's stem: SAME at stride 2 pads bottom and right
    ("uint8", 3, 1, (1, 1, 1, 1), 1),  # a grayscale image: one channel padded to the dot's four
], ids=["int8-rgb", "uint8-gray"])
def test_an_integer_input_s_stem_runs_on_vnni_read_as_channels_last_blocks(dtype, x_zp, cin, padding, strides):
    """A full-integer TFLite model dequantizes its int8 input directly: that t (x - zp) is
    integer-valued too, and its stem, fewer channels than a block, runs on VNNI: u = x - qmin,
    padded with t's zero and to whole groups of 4 channels, read in place as one channel block
    (before: a float conv of the dequantized input, 3.3 of the TFLite int8 CNN's 13 us). An
    instruction with int16 pairs keeps it on integer-valued floats. On a VNNI host the results
    are the exact integer sums."""
    import torch

    rng = np.random.default_rng(8)
    w_int = rng.integers(-127, 128, (16, cin, 3, 3)).astype("int8")
    w_scale = rng.uniform(0.001, 0.01, 16).astype("float32")
    info = np.iinfo(dtype)
    x = rng.integers(info.min, int(info.max) + 1, (1, 10, 10, cin)).astype(dtype)
    mod = _input_conv_module(x.shape, dtype, x_zp, w_int, w_scale, padding, strides)
    got = _on_vnni_only(mod, x)
    if got is None:
        return
    t = torch.from_numpy(x.astype(np.float64) - x_zp).permute(0, 3, 1, 2)
    top, left, bottom, right = padding
    acc = torch.nn.functional.conv2d(torch.nn.functional.pad(t, (left, right, top, bottom)),
                                     torch.from_numpy(w_int).double(), stride=strides).numpy()
    want = (acc * (0.05 * w_scale.astype(np.float64)).reshape(1, -1, 1, 1)).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


@needs_avx2
@pytest.mark.parametrize("x_zp", [-128, 5], ids=["from-zero", "shifted"])
def test_residual_reads_the_uint8_copy_and_the_cast_fuses(x_zp):
    """The conv reads its input as uint8 (u), the residual add as float: before, the cast to u was a
    kernel of its own (the input had two readers). Now the add reads (u + lo) * s, u is computed
    in the input's producer, and the sums stay exact. "shifted": t's range starts below 0 (a
    projection's output, no ReLU: lo = -133), u = t - lo, which the builder binds in two steps
    (the subtraction, then the cast); both move (TFLite MobileNetV2 int8: 9 kernels fewer)."""
    rng = np.random.default_rng(7)
    w_int = rng.integers(-64, 64, (16, 16, 1, 1)).astype("int8")
    w_scale = rng.uniform(0.001, 0.01, 16).astype("float32")
    x = (rng.integers(-300, 300, (1, 16, 8, 8)) + 0.5).astype("float32") * np.float32(0.05)
    mod = _qdq_conv_module(x.shape, w_int, w_scale, 0.05, x_zp, padding=0, residual=True)
    opt, stats = cpu_schedule.optimize(mod, AVX2)
    assert stats["int8_kernel_convs"] == 1, stats
    kernels = [gv.name_hint for gv, f in opt.functions_items() if isinstance(f, tvm.tirx.PrimFunc)]
    alone = [name for name in kernels if re.fullmatch(r"(fused_)?(subtract\d*_)?cast\d*", name)]  # u's own kernel
    assert not alone, kernels
    assert any(name.endswith("_cast") for name in kernels), kernels  # the input's kernel writes u
    got, _ = _run(mod, x)
    t = np.clip(np.round(x / np.float32(0.05)) + x_zp, -128, 127) - x_zp
    want = _reference(x, w_int, w_scale, 0.05, x_zp, padding=0) + t * np.float32(0.05)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


def test_int8_dot_steps_allocate_no_workspace():
    """The dot step is one expression: with its values named, TVMScript made each a local buffer
    that the kernel allocated through TVMBackendAllocWorkspace in every parallel task (a TFLite
    CNN's 16 -> 48 1x1 conv took 9.7 us on one thread instead of 3.7). Nothing else in this
    kernel allocates."""
    w_int = np.random.default_rng(5).integers(-64, 64, (16, 24, 1, 1)).astype("int8")
    mod = _qdq_conv_module((1, 24, 9, 9), w_int, np.full(16, 0.01, "float32"), 0.05, -128, padding=0)
    ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
    assert stats["int8_kernel_convs"] == 1, stats
    assert "TVMBackendAllocWorkspace" not in ex.mod.imports[0].inspect_source("ll")


def test_int8_kernels_only_where_they_are_exact():
    """A padded conv of shifted inputs (a padded u would not be a padded t), and full-range weights
    on an instruction that adds product pairs in int16 (127 + 127 of u = 255 saturates), keep the
    integer-valued float form; VNNI, which has no int16 step, takes the full-range weights."""
    rng = np.random.default_rng(3)
    seven_bit = rng.integers(-64, 64, (16, 16, 3, 3)).astype("int8")
    full = np.where(rng.random((16, 16, 1, 1)) < 0.5, -127, 127).astype("int8")
    scale = np.full(16, 0.01, "float32")

    def counts(w, zp, padding, dot):
        c = rewrite_with_stats(_qdq_conv_module((1, 16, 6, 6), w, scale, 0.05, zp, padding), dot)[1]
        return c.int8_convs, c.integer_convs

    assert counts(seven_bit, -128, 1, int8_dot.AVX2) == (1, 0)  # t in [0, 255]: lo = 0, padding is exact
    assert counts(seven_bit, 3, 1, int8_dot.AVX2) == (0, 1)
    assert counts(full, -128, 0, int8_dot.AVX2) == (0, 1)
    assert counts(full, -128, 0, int8_dot.AVX512BW) == (0, 1)
    assert counts(full, -128, 0, int8_dot.VNNI_512) == (1, 0)
    assert counts(seven_bit, -128, 1, None) == (0, 1)


def test_pairs_fit_int16_at_the_bounds():
    """vpmaddubsw adds the products of channels 2k and 2k+1 into int16 [-32768, 32767]: 255 * -128
    fits and 255 * -129 does not; 255 * 127 fits and 255 * 129 does not. 7-bit weights always fit."""
    def w(a, b):
        return np.array([a, b], "int64").reshape(1, 2, 1, 1)

    assert pairs_fit_int16(w(-64, -64), 255) and not pairs_fit_int16(w(-64, -65), 255)
    assert pairs_fit_int16(w(63, 64), 255) and not pairs_fit_int16(w(64, 65), 255)
    assert pairs_fit_int16(w(127, -127), 255)  # opposite signs never add up


@needs_avx2
def test_conv_over_the_exact_bound_keeps_the_dequantized_form():
    """512 input channels x 3x3 of full-range weights: max sum |w| * 131 (the int8 input's reach
    from its zero point) passes 2^24, where float sums of integers stop being exact; that conv stays
    on dequantized floats (the QDQ graph's own arithmetic), still blocked, still close."""
    rng = np.random.default_rng(1)
    w_int = np.where(rng.random((8, 512, 3, 3)) < 0.5, -127, 127).astype("int8")
    w_scale = np.full(8, 1e-4, "float32")
    x_scale, x_zp = 0.02, -3
    assert np.abs(w_int.astype(np.int64)).reshape(8, -1).sum(1).max() * (127 + 3 + 1) >= EXACT_LIMIT
    x = rng.standard_normal((1, 512, 6, 6)).astype("float32")
    mod = _qdq_conv_module(x.shape, w_int, w_scale, x_scale, x_zp)
    counts = rewrite_with_stats(mod)[1]
    assert (counts.fake_quantize, counts.integer_convs, counts.float_convs) == (1, 0, 1)
    got, stats = _run(mod, x)
    assert stats["conv"] == 1, stats
    want = _reference(x, w_int, w_scale, x_scale, x_zp)
    assert float(np.abs(got - want).max()) < 1e-5 * float(np.abs(want).max())


@needs_avx2
def test_clip_between_quantize_and_dequantize_narrows_the_range():
    """TFLite's importer clips the int8 value between quantize and dequantize (its fused ReLU/ReLU6,
    or a no-op -128..127): the pair still becomes float ops, with the clip's bounds."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 8, 4, 4), "float32"))
    s, zp = relax.const(0.1, "float32"), relax.const(-20, "int32")
    with bb.function("main", [x]):
        with bb.dataflow():
            q = bb.emit(relax.op.quantize(x, s, zp, axis=0, out_dtype="int8"))
            c = bb.emit(relax.op.clip(q, -20.0, 40.0))
            out = bb.emit_output(bb.emit(relax.op.dequantize(c, s, zp, axis=0, out_dtype="float32")))
        bb.emit_func_output(out)
    mod = bb.get()
    assert rewrite_with_stats(mod)[1].fake_quantize == 1
    a = (np.arange(128, dtype="float32").reshape(1, 8, 4, 4) - 64) * np.float32(0.1) + np.float32(0.05)
    got, _ = _run(mod, a)
    want = (np.clip(np.round(a / np.float32(0.1)) - 20, -20, 40) + 20) * np.float32(0.1)
    np.testing.assert_array_equal(got, want.astype("float32"))


@pytest.fixture(scope="module")
def resnet_like_qdq():
    from models.quantized import build_quantized_example

    return build_quantized_example("resnet_like_qdq", CACHE / "quantized")


def _onnx_model(built):
    import onnx

    with tarfile.open(built.archive) as tar:
        return onnx.load_from_string(tar.extractfile(built.model_file).read())


def test_qdq_resnet_rewrite_leaves_no_quantize_and_every_conv_integer(resnet_like_qdq):
    """onnxruntime's QDQ resnet_like (9 convs, 7-bit per-channel weights): every activation pair
    becomes float ops and every conv takes the exact integer-valued route."""
    from neo_local.frontends.base import TensorSpec
    from neo_local.frontends.onnx_import import import_onnx

    mod, _ = import_onnx(_onnx_model(resnet_like_qdq), (TensorSpec("input0", (1, 3, 64, 64), "float32"),), "m")
    out, counts = rewrite_with_stats(mod)
    assert (counts.integer_convs, counts.float_convs) == (9, 0), counts
    assert counts.fake_quantize == 17, counts  # one per QuantizeLinear of the graph
    assert "R.quantize" not in out.script()


#: (OutputConfig target fields, the int8 dot instruction chosen, /proc/cpuinfo flags it runs on)
INT8_TARGETS = {
    "avx2": ({"TargetDevice": "ml_c4"}, "neo_local_u8s8_dot_8x4_avx2", {"avx2"}),
    "avx512bw": ({"TargetDevice": "ml_c5"}, "neo_local_u8s8_dot_16x4_avx512bw", {"avx512bw"}),
    "avx512vnni": ({"TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"},
                    "CompilerOptions": json.dumps({"mcpu": "icelake-server"})},
                   "neo_local_u8s8_dot_16x4_vnni", {"avx512_vnni", "avx512bw", "avx512vl"}),
    "avxvnni": ({"TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"},
                 "CompilerOptions": json.dumps({"mcpu": "alderlake"})},
                "neo_local_u8s8_dot_8x4_vnni", {"avx_vnni", "avx2"}),
}


@pytest.mark.parametrize("isa", INT8_TARGETS)
def test_qdq_resnet_compiles_blocked_and_matches_onnxruntime_int8(resnet_like_qdq, tmp_path, isa):
    """Through ``neo_local.compile``, run in a fresh process, against onnxruntime on the same
    quantized file, on each x86 int8 dot instruction (skipped where this CPU lacks it). Both compute
    the same integer sums exactly; the requantizations are float32 on both sides, so a value landing
    on a rounding tie could come out one step apart (and be carried on): the bound is one step of
    the output scale. Measured: 0 (bitwise equal)."""
    import neo_local
    from neo_local.targets.cpu_features import host_cpu_flags
    from neo_local.verify import run_artifact

    target, instruction, flags = INT8_TARGETS[isa]
    if not flags <= (host_cpu_flags() or frozenset()):
        pytest.skip(f"this CPU cannot run {isa} code")
    out = Path(neo_local.compile(
        InputConfig={"S3Uri": resnet_like_qdq.archive, "Framework": "ONNX",
                     "DataInputConfig": resnet_like_qdq.data_input_config},
        OutputConfig={"S3OutputLocation": str(tmp_path / "out"), **target},
    ))
    with tarfile.open(out) as tar:
        pipeline = json.load(tar.extractfile("compiled.meta"))["Build"]["Pipeline"]
    stats = ast.literal_eval(pipeline[pipeline.index("{"):pipeline.rindex("}") + 1])
    # the 9 convs blocked (the classifier's Gemm may take the conv schedule too), nothing unscheduled
    assert stats["conv"] >= 9 and stats["unscheduled"] == 0, pipeline
    # and the int8 routes the convs took are in the job's record: the 8 after the stem on integer
    # kernels with the target's instruction, the 3-channel stem on integer-valued floats
    assert (stats["int8_kernel_convs"], stats["int8_exact_convs"]) == (8, 1) and stats["qdq_pairs"] > 0, pipeline
    assert stats["int8_dot"] == instruction, pipeline
    with np.load(resnet_like_qdq.inputs_npz) as z:
        feeds = {k: z[k] for k in z.files}
    (got,) = run_artifact(out, feeds, tmp_path / "run")
    with np.load(resnet_like_qdq.outputs_npz) as z:
        want = z["output0"]
    from onnx import numpy_helper

    step = float(next(numpy_helper.to_array(i) for i in _onnx_model(resnet_like_qdq).graph.initializer
                      if i.name == "output0_scale"))
    assert float(np.abs(got - want).max()) <= step


def _layout_transforms(opt) -> list[str]:
    return [gv.name_hint for gv, _ in opt.functions_items() if "layout_transform" in gv.name_hint]


def _output_step(model) -> float:
    """The scale of the QDQ model's last QuantizeLinear: one step of its output."""
    from onnx import numpy_helper

    last = next(n for n in model.graph.node if n.output[0] == model.graph.output[0].name)
    return float(next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == last.input[1]))


@pytest.fixture(scope="module")
def mobilenet_qdq():
    from models.quantized import build_quantized_example

    return build_quantized_example("mobilenet_qdq", CACHE / "quantized")


def test_qdq_depthwise_blocks_stay_blocked_and_match_onnxruntime(mobilenet_qdq, tmp_path):
    """onnxruntime's QDQ MobileNetV2-style (7 depthwise convs): the requantization after each
    depthwise conv (divide, round, clip, multiply) and the cast of the next int8 conv's uint8 input
    follow the blocked layout, so the model keeps its channel blocks from the stem to the
    classifier (no layout transform: the stem reads the NCHW input in place, and the pooled vector
    leaves the blocks as a reshape, ``passes.layout_reshapes``; 17, each a kernel of its own, when
    round and casts broke the blocked regions: 0.148 -> 0.097 ms on znver5). Compiled through
    ``neo_local.compile`` and
    run in a fresh process: within one step of the output's scale from onnxruntime's int8
    outputs (measured: bitwise equal)."""
    import neo_local
    from neo_local.frontends.base import TensorSpec
    from neo_local.frontends.onnx_import import import_onnx
    from neo_local.verify import run_artifact

    model = _onnx_model(mobilenet_qdq)
    mod, _ = import_onnx(model, (TensorSpec("input0", (1, 3, 64, 64), "float32"),), "m")
    opt, stats = cpu_schedule.optimize(mod, AVX2)
    transforms = _layout_transforms(opt)
    assert stats["depthwise"] == 7 and not transforms, (stats, transforms)
    out = Path(neo_local.compile(
        InputConfig={"S3Uri": mobilenet_qdq.archive, "Framework": "ONNX",
                     "DataInputConfig": mobilenet_qdq.data_input_config},
        OutputConfig={"S3OutputLocation": str(tmp_path / "out"), "TargetDevice": "ml_c4"},
    ))
    with np.load(mobilenet_qdq.inputs_npz) as z:
        feeds = {k: z[k] for k in z.files}
    (got,) = run_artifact(out, feeds, tmp_path / "run")
    with np.load(mobilenet_qdq.outputs_npz) as z:
        (want,) = [z[k] for k in z.files]
    assert float(np.abs(got - want).max()) <= _output_step(model)


def test_qdq_channel_shuffle_stays_blocked_and_matches_onnxruntime(tmp_path):
    """ShuffleNetV2 units quantized by onnxruntime: a quantize/dequantize pair sits between the
    shuffle's reshape and transpose and after each, so the blocked shuffle sees through ops by one
    scale (``_through_shuffle``) and the model keeps its channel blocks: 2 layout transforms (the
    input's, the output's). Compiled through ``neo_local.compile`` for ml_c4 and run in a fresh
    process: within one step of the output's scale from onnxruntime's int8 outputs."""
    import torch

    import neo_local
    from models.export import make_archive, to_onnx
    from models.quantized import onnxruntime_outputs, quantize
    from models.zoo import ShuffleUnit, _finish
    from neo_local.frontends.base import TensorSpec
    from neo_local.frontends.onnx_import import import_onnx
    from neo_local.verify import run_artifact
    import onnx

    shape = (1, 16, 12, 12)
    torch.manual_seed(5)
    module = _finish(torch.nn.Sequential(torch.nn.Conv2d(16, 32, 1), ShuffleUnit(32, 32, 1), ShuffleUnit(32, 64, 2)),
                     shape[1:])
    to_onnx(module, [torch.randn(*shape)], tmp_path / "float.onnx", ["input0"])
    path = quantize(tmp_path / "float.onnx", tmp_path / "m.onnx", "input0", shape, seed=5)
    model = onnx.load(path)
    mod, _ = import_onnx(model, (TensorSpec("input0", shape, "float32"),), "m")
    opt, stats = cpu_schedule.optimize(mod, AVX2)
    transforms = _layout_transforms(opt)
    assert stats["depthwise"] == 2 and len(transforms) == 2, (stats, transforms)

    feeds = {"input0": np.random.default_rng(5).standard_normal(shape).astype("float32")}
    out = Path(neo_local.compile(
        InputConfig={"S3Uri": str(make_archive([path], tmp_path / "m.tar.gz")), "Framework": "ONNX",
                     "DataInputConfig": json.dumps({"input0": list(shape)})},
        OutputConfig={"S3OutputLocation": str(tmp_path / "out"), "TargetDevice": "ml_c4"},
    ))
    (got,) = run_artifact(out, feeds, tmp_path / "run")
    (want,) = onnxruntime_outputs(path, feeds)
    assert float(np.abs(got - want).max()) <= _output_step(model)


def test_dot_instructions_register_on_first_use():
    """Importing the schedules registers no dot intrinsic (TVMScript's parsing of the six took
    2.1 s of every compile, float32 ones included); the first use registers one, once."""
    code = ("from tvm.s_tir import TensorIntrin\n"
            "from neo_local.backends.cpu_schedule import int8_dot, passes\n"
            "assert not [n for n in passes.DOTS if TensorIntrin.get(n, allow_missing=True)]\n"
            "assert int8_dot.AVX2.registered() == int8_dot.AVX2.registered() == int8_dot.AVX2.name\n"
            "assert TensorIntrin.get(int8_dot.AVX2.name) is not None\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
