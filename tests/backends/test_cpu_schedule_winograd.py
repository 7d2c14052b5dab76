"""Winograd 3x3 convs (neo_local.backends.cpu_schedule.winograd): which convs take them, and their
outputs against torch's direct conv in float64, epilogues and tile sizes that do not divide the
output included."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
torch = pytest.importorskip("torch")

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule import winograd  # noqa: E402
from test_cpu_schedule import A72, AVX2, _conv_module, _rel, _run, needs_avx2  # noqa: E402

ONE = (1, 1)
PAD = (1, 1, 1, 1)
AVX512 = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "skylake-avx512"}


def test_only_wide_3x3_and_5x5_stride_1_convs_padded_by_at_most_half_the_kernel_take_it():
    assert winograd.tile_size((128, 128), (3, 3), ONE, PAD, ONE, (28, 28)) == 4
    assert winograd.tile_size((16, 64), (3, 3), ONE, PAD, ONE, (17, 17)) == 4  # 5 x 5 tiles
    assert winograd.tile_size((16, 64), (3, 3), ONE, PAD, ONE, (13, 13)) == 2  # 4 x 4: F(2,3)'s 7 x 7
    assert winograd.tile_size((256, 256), (3, 3), ONE, PAD, ONE, (16, 16)) == 2
    assert winograd.tile_size((512, 512), (3, 3), ONE, PAD, ONE, (7, 7)) == 0  # 2 x 2 tiles: the weights dominate
    assert winograd.tile_size((8, 64), (3, 3), ONE, PAD, ONE, (56, 56)) == 0  # too few channels to pay
    assert winograd.tile_size((128, 128), (3, 3), (2, 2), PAD, ONE, (14, 14)) == 0
    assert winograd.tile_size((80, 192), (3, 3), ONE, (0, 0, 0, 0), ONE, (52, 52)) == 4  # unpadded (Inception's)
    assert winograd.tile_size((64, 64), (3, 3), ONE, (0, 0, 1, 1), ONE, (28, 28)) == 4
    assert winograd.tile_size((128, 128), (3, 3), ONE, (0, 0, 0, 0), ONE, (12, 12)) == 0  # 3 x 3 tiles
    assert winograd.tile_size((128, 128), (3, 3), ONE, (2, 2, 2, 2), ONE, (30, 30)) == 0
    assert winograd.tile_size((48, 64), (5, 5), ONE, (2, 2, 2, 2), ONE, (25, 25)) == 2  # F(2,5), Inception's
    assert winograd.tile_size((48, 64), (5, 5), ONE, (0, 0, 0, 0), ONE, (60, 60)) == 2
    assert winograd.tile_size((48, 64), (5, 5), ONE, (3, 3, 3, 3), ONE, (27, 27)) == 0
    assert winograd.tile_size((128, 128), (5, 5), ONE, (2, 2, 2, 2), ONE, (8, 8)) == 2  # 5x5: from 8x8
    assert winograd.tile_size((48, 128), (5, 5), ONE, (2, 2, 2, 2), ONE, (7, 7)) == 0
    assert winograd.tile_size((128, 128), (7, 7), ONE, (3, 3, 3, 3), ONE, (28, 28)) == 0
    assert winograd.tile_size((128, 128), (3, 3), ONE, PAD, (2, 2), (28, 28)) == 0
    assert winograd.tile_size((128, 128), (1, 1), ONE, (0, 0, 0, 0), ONE, (28, 28)) == 0


@pytest.mark.parametrize("matrices", winograd.MATRICES.values(), ids=lambda m: f"F({m.m},{m.r})")
def test_the_transforms_compute_an_r_x_r_correlation(matrices):
    """A^T [(G g G^T) * (B^T d B)] A equals the valid r x r correlation of an (m+r-1)^2 tile, in float64."""
    rng = np.random.default_rng(0)
    r = matrices.r
    d, g = rng.standard_normal((matrices.a, matrices.a)), rng.standard_normal((r, r))
    u, v = matrices.G @ g @ matrices.G.T, matrices.BT @ d @ matrices.BT.T
    want = np.array([[np.sum(d[i:i + r, j:j + r] * g) for j in range(matrices.m)] for i in range(matrices.m)])
    np.testing.assert_allclose(matrices.AT @ (u * v) @ matrices.AT.T, want, atol=1e-12)


@needs_avx2
@pytest.mark.parametrize("cin,cout,hw,k,pad,residual,act,m", [
    (128, 128, 14, 3, PAD, True, "relu", 2),   # bias + residual + relu in the output kernel; 14 = 7 tiles of 2
    (128, 256, 15, 3, PAD, False, "clip", 2),  # 15 = 8 tiles, the last one cropped by 1
    (16, 64, 13, 3, PAD, False, "none", 2),    # 13 = 7 tiles, the last one 1 wide; bias only; one input block
    (64, 64, 18, 3, PAD, True, "relu", 4),     # 18 = 5 tiles of 4, the last one 2 wide
    (16, 32, 29, 3, PAD, False, "clip", 4),    # 29 = 8 tiles, the last one 1 wide
    (32, 48, 23, 3, (0, 0, 0, 0), False, "relu", 4),  # unpadded: 21 = 6 tiles, the last one 1 wide
    (16, 32, 16, 3, (0, 1, 1, 0), False, "none", 2),  # padded on two sides only: 15 x 15
    (64, 64, 25, 5, (2, 2, 2, 2), True, "relu", 2),   # F(2,5) at Inception's 25 x 25: 13 tiles, the last 1 wide
    (16, 32, 20, 5, (0, 0, 0, 0), False, "clip", 2),  # unpadded 5x5: 16 x 16
    (24, 16, 17, 5, (1, 2, 2, 1), False, "none", 2),  # 18 x 16, padded unevenly
    (32, 32, 9, 5, (2, 2, 2, 2), True, "relu", 2),    # 9 x 9: 5 tiles, the last one 1 wide
])
def test_winograd_convs_match_torch(cin, cout, hw, k, pad, residual, act, m):
    """Through the whole pipeline (8-lane blocks): the input and output transforms scheduled as
    Winograd kernels, the products as a conv; outputs within float32 rounding of the direct conv's
    (measured: 1e-6 to 1e-5 of the largest output)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, cin, hw, hw)).astype("float32")
    w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype("float32")
    b = rng.standard_normal(cout).astype("float32")
    out_hw = (hw + pad[0] + pad[2] - k + 1, hw + pad[1] + pad[3] - k + 1)
    assert winograd.tile_size((cin, cout), (k, k), ONE, pad, ONE, out_hw) == m
    ex, stats = cpu_schedule.compile_cpu(_conv_module(x.shape, w, b, 1, pad, residual, act), AVX2)
    assert stats["winograd"] == 2 and stats["conv"] == 1 and stats["unscheduled"] == 0, stats
    got = _run(ex, x)
    with torch.no_grad():
        top, left, bottom, right = pad
        xt = torch.from_numpy(x).double()
        xp = torch.nn.functional.pad(xt, (left, right, top, bottom))
        y = torch.nn.functional.conv2d(xp, torch.from_numpy(w).double(), torch.from_numpy(b).double())
        y = y + xt if residual else y
        y = torch.relu(y) if act == "relu" else torch.clamp(y, 0, 6) if act == "clip" else y
    assert _rel(got, y.numpy()) < 3e-5


@pytest.mark.parametrize("target,lanes", [(A72, 4), (AVX512, 16)], ids=["aarch64", "avx512"])
@pytest.mark.parametrize("k,pad,residual,hw", [(3, 1, True, 14), (5, 0, False, 18)], ids=["3x3", "5x5-unpadded"])
def test_other_vector_widths_schedule_every_winograd_kernel(target, lanes, k, pad, residual, hw):
    """NEON's 4-lane and AVX-512's 16-lane blocks (not built: this host may not run them) take
    the same three kernels, each scheduled: the products as a conv, the transforms as Winograd's."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((128, 128, k, k)).astype("float32")
    mod = _conv_module((1, 128, hw, hw), w, rng.standard_normal(128).astype("float32"), 1, pad, residual, "relu")
    _, stats = cpu_schedule.optimize(mod, target)
    assert (stats["lanes"], stats["winograd"], stats["conv"], stats["unscheduled"]) == (lanes, 2, 1, 0), stats
