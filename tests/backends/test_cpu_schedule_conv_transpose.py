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


def test_phase_kernels_hold_each_phases_taps_flipped():
    """A 4x4 stride-2 kernel is four 2x2 phase kernels; a 3x3 one's odd phases have fewer taps
    (zero-padded): no tap of the transposed conv is lost, none repeated, none a spread zero's."""
    from neo_local.backends.cpu_schedule.conv_transpose import phase_kernels

    w = np.random.default_rng(0).standard_normal((5, 3, 4, 4)).astype("float32")  # IOHW
    k = phase_kernels(w, (2, 2))
    assert k.shape == (4 * 3, 5, 2, 2)
    phase = k.reshape(2, 2, 3, 5, 2, 2)
    np.testing.assert_array_equal(phase[1, 0, :, :, 0, 1], w[:, :, 3, 0].T)  # ry=1, rx=0: taps 1+2(1-j)
    np.testing.assert_array_equal(phase[0, 1, :, :, 1, 0], w[:, :, 0, 3].T)
    w3 = np.random.default_rng(1).standard_normal((2, 2, 3, 3)).astype("float32")
    k3 = phase_kernels(w3, (2, 2)).reshape(2, 2, 2, 2, 2, 2)
    assert not k3[1, :, :, :, 0, :].any()  # phase 1 along y has one tap (index 1), at j = 1
    assert np.count_nonzero(k3) == np.count_nonzero(w3)


@needs_avx2
def test_a_stride_2_transposed_conv_computes_its_own_multiply_adds():
    """The phase conv's windows are the kernel's taps per phase (2x2 for a 4x4 stride-2 kernel),
    over the input itself: no zeros spread into it."""
    from neo_local.backends.cpu_schedule.passes import relax_passes

    torch.manual_seed(0)
    model = _UpBlock(4, 2, 1, 0).eval()
    mod = relax_passes(_onnx_module(model, (1, 8, 9, 9)), 8, 12)
    shapes = {tuple(int(d) for d in p.shape) for gv, f in mod.functions_items()
              if "conv2d_nchwc" in gv.name_hint and isinstance(f, tvm.tirx.PrimFunc) for p in f.params}
    assert (4, 2, 2, 2, 8, 8) in shapes, shapes  # [4 phases x 8 out / 8, 16 in / 8, 2, 2, 8, 8]


class _Generator(torch.nn.Module):
    """A DCGAN generator's first steps: a 100-dim latent to a 4x4 map (a transposed conv of a 1x1
    input), batch norm, relu, one 4x4 stride-2 up-conv."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.f = nn.Sequential(nn.ConvTranspose2d(100, 32, 4, 1, 0, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                               nn.ConvTranspose2d(32, 16, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, x):
        return self.f(x)


@needs_avx2
def test_a_generators_latent_runs_as_a_dense_layer():
    torch.manual_seed(4)
    model = _Generator().eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    from neo_local.backends.cpu_schedule.passes import relax_passes

    mod = _onnx_module(model, (1, 100, 1, 1))
    shapes = {tuple(int(d) for d in p.shape) for _, f in relax_passes(mod, 8, 12).functions_items()
              if isinstance(f, tvm.tirx.PrimFunc) for p in f.params}
    assert (64, 13, 1, 1, 8, 8) in shapes, shapes  # a 1x1 conv of 104 (100 padded) to 32 x 4 x 4 channels
    ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
    assert stats["conv"] == 2 and stats["dlight"] == 0 and stats["matmul"] == 0, stats
    x = np.random.default_rng(4).standard_normal((1, 100, 1, 1)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = _run(ex, x)
    assert got.shape == want.shape == (1, 16, 8, 8) and _rel(got, want) < 1e-5
