"""Small buffers on the stack (neo_local.backends.cpu_schedule.stack_buffers): an AVX-512 conv's
register tile of 16 accumulators (1024 bytes, one more than TVM keeps on the stack) is no longer
taken from TVMBackendAllocWorkspace in every parallel task; large buffers still are."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

from tvm import relax  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule.stack_buffers import STACK_BYTES  # noqa: E402
from neo_local.backends.cpu_schedule.tir_pipeline import pipeline  # noqa: E402
from neo_local.targets.cpu_features import host_cpu_flags  # noqa: E402

ZNVER4 = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "znver4"}


def _conv_relu(x_shape, w, padding, strides=1):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(x_shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(relax.op.nn.relu(relax.op.nn.conv2d(x, relax.const(w), strides, padding))))
        bb.emit_func_output(out)
    return bb.get()


def _workspace_sizes(executable) -> list[int]:
    """The byte counts of the kernels' TVMBackendAllocWorkspace calls, from their LLVM IR."""
    import re

    text = executable.mod.imports[0].inspect_source("ll")
    return [int(n) for n in re.findall(r"call ptr %\S+\(i32 1, i32 %\S+, i64 (\d+), i32 \d+, i32 \d+\)", text)]


def test_register_tiles_leave_the_workspace_and_the_results_stay():
    """A 1x1 conv 48 -> 32 at 10x10 (one row of 100 pixels) takes a 2 x 8 tile of 16-lane
    accumulators; TVM's own pipeline allocates it per task, ours on the stack. On an AVX-512
    host both builds run and agree with numpy."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 48, 10, 10)).astype("float32")
    w = rng.standard_normal((32, 48, 1, 1)).astype("float32")
    opt, stats = cpu_schedule.optimize(_conv_relu(x.shape, w, 0), ZNVER4)
    assert stats["conv"] == 1 and stats["max_acc"] == 16, stats
    target = tvm.target.Target(ZNVER4)
    ours = relax.build(opt, target, tir_pipeline=pipeline())
    theirs = relax.build(opt, target)
    assert _workspace_sizes(ours) == [] and 1024 in _workspace_sizes(theirs)
    if "avx512f" not in (host_cpu_flags() or frozenset()):
        return
    want = np.maximum(np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x), 0)
    for executable in (ours, theirs):
        got = relax.VirtualMachine(executable, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_large_buffers_stay_in_the_workspace():
    """A padded stride-2 3x3 conv's padded input (48 channels of 42 x 42, a stage of its own) is far
    over ``STACK_BYTES``: still a workspace allocation."""
    rng = np.random.default_rng(1)
    mod = _conv_relu((1, 48, 40, 40), rng.standard_normal((32, 48, 3, 3)).astype("float32"), 1, strides=2)
    executable, _ = cpu_schedule.compile_cpu(mod, ZNVER4)
    sizes = _workspace_sizes(executable)
    assert sizes and min(sizes) > STACK_BYTES, sizes
