"""benchmarks.profile: per-kernel times inside the model against onnxruntime's per-node profile."""

import re

import pytest

from benchmarks import profile
from benchmarks.profile import OpTime, _ort_conv_key, _our_conv_key


def _event(x, w, y, op="Conv"):
    return {"op_name": op, "input_type_shape": [{"float": x}, {"float": w}], "output_type_shape": [{"float": y}]}


def test_conv_shapes_read_alike_from_both_sides():
    # a 1x1 conv 64 -> 128 at 14x14: ours blocked by 8, onnxruntime plain NCHW and NCHWc
    ours = _our_conv_key("fused_conv2d_nchwc3_add4", [(1, 8, 14, 14, 8), (16, 8, 1, 1, 8, 8), (1, 16, 14, 14, 8)])
    assert ours == (64, 128, 1, 1, 14, 14, False)
    assert _ort_conv_key(_event([1, 64, 14, 14], [128, 64, 1, 1], [1, 128, 14, 14])) == ours
    assert _ort_conv_key(_event([1, 8, 14, 14, 8], [128, 64, 1, 1], [1, 16, 14, 14, 8])) == ours
    # 24 -> 24 in 8-lane blocks, its weights 16 output channels wide (zero-filled to 32)
    wide = _our_conv_key("fused_conv2d_nchwc1", [(1, 3, 28, 28, 8), (2, 3, 1, 1, 8, 16), (1, 3, 28, 28, 8)])
    assert wide == (24, 24, 1, 1, 28, 28, False)
    # 16 -> 64 writing its slice of a 128-channel concatenation (SqueezeNet's expand convs)
    into = _our_conv_key("fused_conv2d_nchwc2_add2_relu2_into_concat",
                         [(1, 2, 55, 55, 8), (8, 2, 1, 1, 8, 8), (1, 8, 1, 1, 8), (1, 16, 55, 55, 8)])
    assert into == (16, 64, 1, 1, 55, 55, False)
    dw = _our_conv_key("fused_depthwise_conv2d_nchwc1", [(1, 12, 9, 9, 8), (12, 1, 3, 3, 1, 8), (1, 12, 7, 7, 8)])
    assert dw == (96, 96, 3, 3, 7, 7, True)
    assert _ort_conv_key(_event([1, 96, 9, 9], [96, 1, 3, 3], [1, 96, 7, 7])) == dw
    assert _our_conv_key("mean", [(1, 12, 7, 7, 8), (1, 12, 1, 1, 8)]) is None
    assert _ort_conv_key(_event([1, 96], [96, 10], [1, 10], op="Gemm")) is None
    assert OpTime("c", "conv", 1.0, 2, ours).gflop == pytest.approx(2 * 64 * 128 * 14 * 14 * 2 / 1e9)
    assert OpTime("d", "depthwise conv", 1.0, 1, dw).gflop == pytest.approx(2 * 96 * 9 * 49 / 1e9)


def test_profile_of_a_small_model(capsys):
    assert profile.main(["mobilenet_like", "--runs", "3", "--top", "40"]) == 0
    out = capsys.readouterr().out
    totals = dict(re.findall(r"(neo-local run|instrumented|onnxruntime run) ([\d.]+) ms", out))
    kernel_sum = float(re.search(r"neo-local kernels, by kind \(sum ([\d.]+) ms\)", out).group(1))
    assert len(totals) == 3 and 0 < kernel_sum < 2 * float(totals["instrumented"])
    rows = re.findall(r"^  \((\d+, \d+, \d+, \d+, \d+, \d+), \w+\)\s+(\d+)/(\d+) ", out, re.M)
    # every conv of ours has onnxruntime's twin (same shape, same count), but the classifier: a Gemm
    # there, a 1x1 conv over one pixel here (10 classes padded to 16)
    assert [key for key, ours, theirs in rows if ours != theirs] == ["256, 16, 1, 1, 1, 1"], out
    assert len(rows) == 22
    assert "True)" in out and "False)" in out
    assert "onnxruntime conv time with no matching shape here: 0.000 ms" in out
