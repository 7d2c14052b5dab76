"""Channel padding (neo_local.backends.cpu_schedule.channel_padding): channel counts that do not
divide by the vector width take the blocked schedules, and the padding never reaches a result."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
torch = pytest.importorskip("torch")

from tvm import relax  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule.channel_padding import (  # noqa: E402
    Padded, pad_channels, padded_channels, padded_output_channels,
)
from tests.backends.test_cpu_schedule import (  # noqa: E402
    AVX2, _host_has, _onnx_module, _prim_funcs, _rel, _run, needs_avx2,
)

SKYLAKE = {**AVX2, "mcpu": "skylake-avx512"}


def test_padded_channels_round_up_from_one_block():
    assert padded_channels(20, 8) == 24 and padded_channels(24, 16) == 32 and padded_channels(280, 16) == 288
    assert padded_channels(32, 16) is None  # divides
    assert padded_channels(8, 16) is None  # a squeeze-excite's few channels stay as they are


def test_conv_outputs_round_up_to_four_block_tiles_when_that_is_cheap():
    assert padded_output_channels(1000, 8) == 1024  # 125 blocks (tiled 5 x 2) -> 128 (4 x 3), +2.4%
    assert padded_output_channels(20, 8) == 24  # to whole blocks, as before
    assert padded_output_channels(40, 8) is None  # 5 blocks -> 8 would add 60%
    assert padded_output_channels(200, 8) is None  # 25 -> 28 blocks: 12%
    assert padded_output_channels(1000, 16) == 1008  # 63 blocks split by 3
    assert padded_output_channels(96, 8) is None and padded_output_channels(4, 8) is None
    # fewer than a block: one block over a feature map, as they are on one pixel (squeeze-excite)
    assert padded_output_channels(3, 8, 128 * 128) == 8 and padded_output_channels(8, 16, 7 * 7) == 16
    assert padded_output_channels(8, 16, 1) is None


@needs_avx2
def test_conv_to_fewer_channels_than_a_block_is_blocked():
    """An image-to-image model's last conv (64 -> 3, 3x3) computes one block of 8 channels and
    returns the 3 real ones (unblocked, TVM's conv ran it at 1 GFLOP/s)."""
    torch.manual_seed(8)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(16, 3, 3, padding=1)).eval()
    opt, stats = cpu_schedule.optimize(_onnx_module(model, (1, 3, 20, 20)), AVX2)
    assert stats["conv"] + stats["winograd"] >= 2 and stats["dlight"] == 0 and stats["unscheduled"] == 0, stats
    x = np.random.default_rng(8).standard_normal((1, 3, 20, 20)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = _run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x)
    assert got.shape == want.shape and _rel(got, want) < 1e-5


@needs_avx2
def test_classifier_conv_to_1000_classes_computes_1024_and_returns_1000():
    """SqueezeNet's head (a 1x1 conv to 1000 classes, relu, global average pool, flatten) computes
    128 blocks of 8 channels; the result has the 1000 real ones and matches torch."""
    torch.manual_seed(7)
    model = torch.nn.Sequential(torch.nn.Conv2d(16, 1000, 1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten()).eval()
    mod = _onnx_module(model, (1, 16, 5, 5))
    opt, stats = cpu_schedule.optimize(mod, AVX2)
    assert stats["conv"] == 1 and stats["unscheduled"] == 0, stats
    blocks = {int(p.shape[0]) for f in _prim_funcs(opt).values() if "conv2d_nchwc" in f.script()
              for p in f.params if hasattr(p, "shape") and len(p.shape) == 6}
    assert blocks == {128}, blocks
    x = np.random.default_rng(7).standard_normal((1, 16, 5, 5)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = _run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x)
    assert got.shape == (1, 1000) and _rel(got, want) < 1e-5


def test_twin_scatters_real_channels_and_reads_them_back():
    x = relax.Var("x", relax.TensorType((1, 8, 2, 2), "float32"))
    twin = Padded(x, (0, 1, 2, 4, 5, 6), 8)  # a concat of two 3-channel parts, each padded to 4
    w = np.arange(6 * 2, dtype="float32").reshape(2, 6)
    spread = twin.scatter(w, axis=1, fill=1.0)
    assert spread.shape == (2, 8) and (spread[:, [3, 7]] == 1.0).all() and (spread[:, [0, 1, 2, 4, 5, 6]] == w).all()
    assert twin.real().op.name == "relax.take"
    assert Padded(x, (0, 1, 2, 3, 4, 5), 8).real().op.name == "relax.strided_slice"


class _Padded(torch.nn.Module):
    """Every rewrite at 8 lanes, channel counts that divide by 4 only: a conv to 20 channels
    (padded to 24), a standalone batch norm (subtract, divide), relu6, a depthwise conv, a
    squeeze-excite gate (spatial mean, 20 -> 8 -> 20 convs, sigmoid, multiply), a concat with a
    16-channel map (the twin's channels no longer a prefix), a conv from those 36 to 12 channels,
    a residual add, an average pool and a classifier on the flattened mean."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())
        self.expand = nn.Sequential(nn.Conv2d(16, 20, 1), nn.BatchNorm2d(20), nn.ReLU6())
        self.dw = nn.Conv2d(20, 20, 3, padding=1, groups=20)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(20, 8, 1), nn.ReLU(), nn.Conv2d(8, 20, 1),
                                  nn.Sigmoid())
        self.mix = nn.Sequential(nn.BatchNorm2d(36), nn.ReLU(), nn.Conv2d(36, 12, 1))
        self.side = nn.Conv2d(16, 12, 3, padding=1)
        self.head = nn.Sequential(nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 10))
        with torch.no_grad():
            for bn in (self.expand[1], self.mix[0]):
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(self.expand(x))
        y = y * self.gate(y)
        return self.head(self.mix(torch.cat([y, x], 1)) + self.side(x))


@needs_avx2
def test_padded_model_matches_torch_with_every_conv_blocked():
    torch.manual_seed(5)
    model = _Padded().eval()
    opt, stats = cpu_schedule.optimize(_onnx_module(model, (1, 3, 12, 12)), AVX2)
    # stem, expand, the gate's two, mix, side and the classifier as a 1x1 conv; no conv left unblocked
    assert stats["conv"] == 7 and stats["depthwise"] == 1 and stats["unscheduled"] == 0, stats
    names = [gv.name_hint for gv, f in opt.functions_items() if isinstance(f, tvm.tirx.PrimFunc)]
    assert all("nchwc" in n for n in names if "conv2d" in n), names
    x = np.random.default_rng(5).standard_normal((1, 3, 12, 12)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = _run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x)
    assert got.shape == want.shape and _rel(got, want) < 1e-5


@needs_avx2
def test_ops_across_channels_read_the_real_channels_only():
    """A softmax over the channels of a padded conv's output sums the 20 real channels, not the 4
    padding ones (which hold exp(0) = 1 each after the softmax's exp). The conv's input, 20
    channels from outside, gets its zero channels from an ``nn.pad``."""
    torch.manual_seed(6)
    model = torch.nn.Sequential(torch.nn.Conv2d(20, 20, 3, padding=1), torch.nn.Softmax(dim=1)).eval()
    mod = _onnx_module(model, (1, 20, 6, 6))
    assert "R.nn.pad" in pad_channels(mod, 8)["main"].script()
    ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
    assert stats["conv"] == 1, stats
    x = np.random.default_rng(6).standard_normal((1, 20, 6, 6)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert _rel(_run(ex, x), want) < 1e-5


def _conv_chain(channels):
    rng = np.random.default_rng(0)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 3, 16, 16), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y, cin = x, 3
            for cout in channels:
                w = (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(9 * cin)).astype("float32")
                y, cin = bb.emit(relax.op.nn.relu(relax.op.nn.conv2d(y, relax.const(w), padding=1))), cout
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get()


def test_avx512_keeps_16_lanes_for_24_channels():
    """24 channels at 16 lanes are padded to 32: both convs take 16-lane blocks, none is left to
    the generic schedule; the result runs where the host has AVX-512."""
    mod = _conv_chain([24, 32])
    assert cpu_schedule.model_vector_config(mod, SKYLAKE) == (16, 16)
    padded = pad_channels(mod, 16)
    weights = [b.value.args[1].value.shape for blk in padded["main"].body.blocks for b in blk.bindings
               if isinstance(b.value, relax.Call) and getattr(b.value.op, "name", "") == "relax.nn.conv2d"]
    assert [tuple(w) for w in weights] == [(32, 3, 3, 3), (32, 32, 3, 3)]
    opt, stats = cpu_schedule.optimize(mod, SKYLAKE)
    assert stats["lanes"] == 16 and stats["conv"] == 2 and stats["unscheduled"] == 0, stats
    if not _host_has("avx512f"):
        return
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype("float32")
    plain = tvm.compile(mod, target=tvm.target.Target(SKYLAKE))
    assert _rel(_run(tvm.compile(opt, target=tvm.target.Target(SKYLAKE)), x), _run(plain, x)) < 1e-5


def test_avx512_shuffles_of_8_lane_groups_take_8_lane_blocks():
    """ShuffleNetV2 x0.5's shuffle of two 24-channel groups stays blocked in 8-lane blocks only."""
    from models.zoo import ShuffleUnit, _finish

    torch.manual_seed(3)
    model = _finish(torch.nn.Sequential(torch.nn.Conv2d(16, 48, 1), ShuffleUnit(48, 48, 1)), (16, 8, 8))
    mod = _onnx_module(model, (1, 16, 8, 8))
    assert cpu_schedule.model_vector_config(mod, SKYLAKE) == (8, 16)  # ymm, all 32 registers
    assert cpu_schedule.model_vector_config(mod, AVX2) == (8, 12)
    assert cpu_schedule.model_vector_config(_conv_chain([32, 32]), SKYLAKE) == (16, 16)


def test_avx512_computes_8_lane_blocks_in_16_lane_vectors():
    """In 8-lane blocks on AVX-512, a conv to 48 channels (6 blocks) and the unit's 24-channel
    convs (3 blocks, computed as 32) run on 16-lane vectors: their weights are repacked 16
    output channels wide and their outputs come back in 8-lane blocks. The result matches
    torch's where the host has AVX-512."""
    from models.zoo import ShuffleUnit, _finish
    from neo_local.backends.cpu_schedule.schedules import CONV_BLOCK

    torch.manual_seed(3)
    model = _finish(torch.nn.Sequential(torch.nn.Conv2d(16, 48, 1), ShuffleUnit(48, 48, 1)), (16, 8, 8))
    mod = _onnx_module(model, (1, 16, 8, 8))
    opt, stats = cpu_schedule.optimize(mod, SKYLAKE)
    assert stats["lanes"] == 8 and stats["unscheduled"] == 0, stats
    vectors = []
    for _, func in _prim_funcs(opt).items():
        if CONV_BLOCK in func.script() and "depthwise" not in func.script():
            vectors += [int(p.shape[-1]) for p in func.params if hasattr(p, "shape") and len(p.shape) == 6]
    assert vectors and set(vectors) == {16}, vectors  # every dense conv's weights: 16 output lanes
    if not _host_has("avx512f"):
        return
    x = np.random.default_rng(2).standard_normal((1, 16, 8, 8)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert _rel(_run(tvm.compile(opt, target=tvm.target.Target(SKYLAKE)), x), want) < 1e-5
