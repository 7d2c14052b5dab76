"""Transposed convs as convs over the spread-out input (neo_local.backends.cpu_schedule.conv_transpose):
outputs against torch for the strides, paddings and output paddings of UNets and GANs."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
torch = pytest.importorskip("torch")

from neo_local.backends import cpu_schedule  # noqa: E402
from test_cpu_schedule import AVX2, _onnx_module, _rel, _run, needs_avx2  # noqa: E402


class _UpBlock(torch.nn.Module):
    """A conv, the transposed conv under test, relu, concat with an upsampled skip, a 3x3 conv: the
    transposed conv between blocked values, as in a UNet's decoder."""

    def __init__(self, k: int, stride: int, padding: int, output_padding: int):
        super().__init__()
        nn = torch.nn
        self.inp = nn.Conv2d(8, 16, 1)
        self.up = nn.ConvTranspose2d(16, 8, k, stride, padding, output_padding)
        self.out = nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, x):
        y = torch.relu(self.up(self.inp(x)))
        skip = torch.nn.functional.interpolate(x, size=y.shape[2:], mode="nearest")
        return self.out(torch.cat([y, skip], 1))


@needs_avx2
@pytest.mark.parametrize("k,stride,padding,output_padding", [
    (2, 2, 0, 0),  # a UNet's up-conv
    (4, 2, 1, 0),  # DCGAN's
    (3, 2, 1, 1),  # output padding: an odd kernel doubling the size
    (3, 1, 1, 0),  # stride 1: a flipped conv
])
def test_transposed_conv_runs_as_a_blocked_conv(k, stride, padding, output_padding):
    torch.manual_seed(k + stride)
    model = _UpBlock(k, stride, padding, output_padding).eval()
    ex, stats = cpu_schedule.compile_cpu(_onnx_module(model, (1, 8, 9, 9)), AVX2)
    assert stats["conv"] + stats["winograd"] >= 3 and stats["dlight"] == 0 and stats["unscheduled"] == 0, stats
    x = np.random.default_rng(k).standard_normal((1, 8, 9, 9)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = _run(ex, x)
    assert got.shape == want.shape and _rel(got, want) < 1e-5
