"""Bilinear resizes in two passes (neo_local.backends.cpu_schedule.resize): the same values as
topi's one-pass resize for each coordinate transform, and a segmentation head's upsample of its
class maps against torch."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
torch = pytest.importorskip("torch")

from tvm import te, topi  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule.resize import RESIZE_X, RESIZE_Y, is_resize, resize_linear  # noqa: E402
from test_cpu_schedule import AVX2, _onnx_module, _rel, _run, _run_prim_func, needs_avx2  # noqa: E402


@needs_avx2
@pytest.mark.parametrize("mode", ["half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"])
@pytest.mark.parametrize("in_hw,out_hw", [((5, 7), (40, 56)), ((9, 6), (4, 13))])
def test_two_passes_compute_topis_values(mode, in_hw, out_hw):
    """Upsampling 8x and a mixed down/up resize, against topi's resize2d built from the same input."""
    data = te.placeholder((1, 3, *in_hw), "float32", name="data")
    ours = te.create_prim_func([data, resize_linear(data, out_hw, mode)])
    theirs = te.create_prim_func([data, topi.image.resize2d(data, [0.0] * 4, list(out_hw), "NCHW", "linear", mode)])
    assert is_resize(ours) and not is_resize(theirs)
    x = np.random.default_rng(0).standard_normal((1, 3, *in_hw)).astype("float32")
    got = _run_prim_func(ours, [x, np.zeros((1, 3, *out_hw), "float32")])
    want = _run_prim_func(theirs, [x, np.zeros((1, 3, *out_hw), "float32")])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


class _Head(torch.nn.Module):
    """A segmentation head: features, a 1x1 conv to 21 classes, bilinear upsampling 8x (NCHW: 21
    channels leave the blocked layout)."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Conv2d(3, 16, 3, 2, 1)
        self.classes = torch.nn.Conv2d(16, 21, 1)

    def forward(self, x):
        y = self.classes(torch.relu(self.features(x)))
        return torch.nn.functional.interpolate(y, scale_factor=8.0, mode="bilinear", align_corners=False)


@needs_avx2
def test_a_segmentation_heads_upsample_runs_in_two_passes():
    torch.manual_seed(0)
    model = _Head().eval()
    ex, stats = cpu_schedule.compile_cpu(_onnx_module(model, (1, 3, 16, 16)), AVX2)
    assert stats["resize"] == 1, stats
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = _run(ex, x)
    assert got.shape == want.shape == (1, 21, 64, 64) and _rel(got, want) < 1e-5


def test_the_schedule_keeps_the_first_pass_and_vectorizes_rows():
    """The first pass stays a buffer of its own (inlined, it would be the one-pass resize again),
    the second's rows run in vectors."""
    from neo_local.backends.cpu_schedule.schedules import schedule_default

    data = te.placeholder((1, 4, 8, 8), "float32", name="data")
    func = te.create_prim_func([data, resize_linear(data, (128, 128), "half_pixel")])
    kind, scheduled = schedule_default(func, tvm.target.Target(AVX2), 8, 12)
    assert kind == "resize"
    text = scheduled.script()
    assert f'T.sblock("{RESIZE_X}")' in text and f'T.sblock("{RESIZE_Y}")' in text
    assert text.count("T.vectorized(8)") == 2 and text.count("T.parallel(") == 2
