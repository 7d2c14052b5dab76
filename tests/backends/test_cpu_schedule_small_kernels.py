"""Kernels too small for the thread pool (neo_local.backends.cpu_schedule.small_kernels) run on
the calling thread; larger ones keep their parallel loops. A narrow innermost loop (an image's 3
channels) is widened to 16-lane vectors (``schedules._widen_narrow_inner``)."""

from __future__ import annotations

import re

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

from tvm import relax  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule import small_kernels  # noqa: E402
from neo_local.targets.cpu_features import host_cpu_flags  # noqa: E402

AVX2 = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "core-avx2"}
SCALE = 0.03125


def _small_and_large():
    """An int8 NHWC image's dequantize (3072 values) beside a relu of 64 x 64 x 64 (262144)."""
    bb = relax.BlockBuilder()
    image = relax.Var("image", relax.TensorType((1, 32, 32, 3), "int8"))
    big = relax.Var("big", relax.TensorType((1, 64, 64, 64), "float32"))
    with bb.function("main", [image, big]):
        with bb.dataflow():
            small = bb.emit(relax.op.multiply(relax.op.astype(image, "float32"), relax.const(SCALE, "float32")))
            large = bb.emit(relax.op.nn.relu(big))
            out = bb.emit_output(relax.Tuple([small, large]))
        bb.emit_func_output(out)
    return bb.get()


def _launching_functions(executable) -> set[str]:
    """The kernels whose LLVM IR calls the thread pool (TVMBackendParallelLaunch)."""
    text = executable.mod.imports[0].inspect_source("ll")
    launching = set()
    for name, body in re.findall(r"^define [^@]*@([\w.]+)\((.*?)^}", text, re.S | re.M):
        if "TVMBackendParallelLaunch" in body:
            launching.add(name)
    return launching


def test_small_kernels_leave_the_thread_pool_and_agree_with_numpy():
    mod = _small_and_large()
    opt, stats = cpu_schedule.optimize(mod, AVX2)
    flagged = {gv.name_hint for gv, f in opt.functions.items()
               if isinstance(f, tvm.tirx.PrimFunc) and f.attrs.get(small_kernels.ATTR, False)}
    assert len(flagged) == 1 and "cast" in next(iter(flagged)), flagged
    executable, _ = cpu_schedule.compile_cpu(mod, AVX2)
    launching = _launching_functions(executable)
    assert not any("cast" in name for name in launching), launching
    assert any("relu" in name for name in launching), launching
    if "avx2" not in (host_cpu_flags() or frozenset()):
        return
    rng = np.random.default_rng(0)
    image = rng.integers(-128, 128, (1, 32, 32, 3)).astype("int8")
    big = rng.standard_normal((1, 64, 64, 64)).astype("float32")
    small, large = relax.VirtualMachine(executable, tvm.cpu())["main"](tvm.runtime.tensor(image), tvm.runtime.tensor(big))
    np.testing.assert_array_equal(small.numpy(), image.astype("float32") * np.float32(SCALE))
    np.testing.assert_array_equal(large.numpy(), np.maximum(big, 0))


def test_three_channels_run_in_vectors_of_sixteen():
    """The dequantize's last two loops (32 pixels x 3 channels) fused and split 6 x 16: a vector
    of 3 is scalar code."""
    opt, _ = cpu_schedule.optimize(_small_and_large(), AVX2)
    script = next(f.script() for gv, f in opt.functions.items() if "cast" in gv.name_hint)
    assert "T.vectorized(T.int64(16))" in script and "T.vectorized(T.int64(3))" not in script, script


def test_iterations_count_every_block():
    """relu's block runs once per value (160), the sum's once per value summed (160: its
    initialization is part of the same block)."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((4, 8, 5), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.sum(relax.op.nn.relu(x), axis=[2]))
        bb.emit_func_output(out)
    legalized = relax.transform.LegalizeOps()(bb.get())
    counts = sorted(small_kernels.iterations(f) for f in legalized.functions.values() if isinstance(f, tvm.tirx.PrimFunc))
    assert counts == [160, 160], counts


def test_a_transpose_to_three_channel_blocks_keeps_its_loops():
    """NCHW (3 x 16 x 16) to NHWC: fused, the 16-lane vectors would read 3 channels 256 values
    apart (a gather, 5x slower on 224 x 224); the last loop stays 3 wide."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 3, 16, 16), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.permute_dims(relax.op.multiply(x, relax.const(2.0, "float32")), [0, 2, 3, 1]))
        bb.emit_func_output(out)
    opt, _ = cpu_schedule.optimize(bb.get(), AVX2)
    script = next(f.script() for f in opt.functions.values() if isinstance(f, tvm.tirx.PrimFunc))
    assert "T.vectorized(T.int64(16))" not in script, script
