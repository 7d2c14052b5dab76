"""Grouped convs in block groups (neo_local.backends.cpu_schedule.grouped_conv): the merge rule,
the weights' repacking, and compiled outputs against torch for ResNeXt's, RegNet's and
ShuffleNet v1's groupings."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
torch = pytest.importorskip("torch")

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule.grouped_conv import block_group, block_grouped_weights  # noqa: E402
from test_cpu_schedule import AVX2, _onnx_module, _rel, _run, needs_avx2  # noqa: E402


def test_block_group_merges_the_fewest_groups_that_fill_blocks():
    assert block_group(32, 128, 128, 8) == 2  # ResNeXt 32x4d's first stage: 4 channels a group
    assert block_group(32, 256, 256, 8) == 1  # 8 a group: one block each
    assert block_group(32, 128, 128, 16) == 4
    assert block_group(32, 128, 128, 4) == 1  # NEON's 4 lanes
    assert block_group(8, 384, 384, 16) == 1  # ShuffleNet v1 g=8: 48 a group
    assert block_group(3, 240, 240, 8) == 1  # g=3: 80 a group
    assert block_group(4, 32, 64, 8) == 1  # 8 in, 16 out a group
    assert block_group(32, 64, 64, 8) == 4  # 2 a group: 4 merged, 4x the multiply-adds
    assert block_group(64, 64, 64, 8) == 0  # 1 a group (depthwise-like) would merge 8
    assert block_group(8, 24, 24, 8) == 0  # 3 a group: no block group of at most 4


def test_block_grouped_weights_are_block_diagonal():
    """Each output channel's weights sit at its own group's input channels of its block group,
    zero at the others': the dense conv of a block group is the grouped conv."""
    from tvm import relax

    rng = np.random.default_rng(0)
    groups, per_in, per_out, lanes, merge = 8, 4, 4, 8, 2
    w = rng.standard_normal((groups * per_out, per_in, 3, 3)).astype("float32")
    got = block_grouped_weights(relax.const(w), groups, merge, lanes).value.numpy()
    assert got.shape == (groups * per_out // lanes, merge * per_in // lanes, 3, 3, lanes, lanes)
    dense = got.transpose(0, 5, 1, 4, 2, 3).reshape(groups * per_out, merge * per_in, 3, 3)  # [O, block group's I]
    for o in range(groups * per_out):
        g = o // per_out
        inside = (g % merge) * per_in
        np.testing.assert_array_equal(dense[o, inside:inside + per_in], w[o])
        assert not np.delete(dense[o], np.s_[inside:inside + per_in], axis=0).any()


class _Grouped(torch.nn.Module):
    """A 1x1 conv into the grouped conv under test, relu, a 1x1 conv out: the grouped conv between
    blocked values, as in a ResNeXt bottleneck."""

    def __init__(self, channels: int, out: int, groups: int, k: int, stride: int):
        super().__init__()
        nn = torch.nn
        self.inp = nn.Conv2d(16, channels, 1)
        self.grouped = nn.Conv2d(channels, out, k, stride, k // 2, groups=groups)
        self.out = nn.Conv2d(out, 16, 1)

    def forward(self, x):
        return self.out(torch.relu(self.grouped(torch.relu(self.inp(x)))))


@needs_avx2
@pytest.mark.parametrize("channels,out,groups,k,stride", [
    (64, 64, 16, 3, 1),  # ResNeXt's 4 a group: 2 merged
    (64, 64, 8, 3, 2),  # 8 a group, strided
    (64, 64, 4, 3, 1),  # 16 a group: two input blocks per block group
    (48, 48, 3, 1, 1),  # ShuffleNet v1's grouped 1x1
    (32, 64, 4, 3, 1),  # more outputs than inputs a group
    (32, 32, 16, 3, 1),  # 2 a group: 4 merged
])
def test_grouped_conv_runs_as_a_blocked_conv(channels, out, groups, k, stride):
    torch.manual_seed(groups + k)
    model = _Grouped(channels, out, groups, k, stride).eval()
    ex, stats = cpu_schedule.compile_cpu(_onnx_module(model, (1, 16, 14, 14)), AVX2)
    assert stats["conv"] == 3 and stats["dlight"] == 0 and stats["unscheduled"] == 0, stats
    x = np.random.default_rng(groups).standard_normal((1, 16, 14, 14)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = _run(ex, x)
    assert got.shape == want.shape and _rel(got, want) < 1e-5


@needs_avx2
def test_grouped_conv_without_a_block_group_keeps_tvms_legalization():
    """3 channels a group fill no 8-lane block within 4 groups: TVM's own kernel, still right."""
    torch.manual_seed(0)
    model = _Grouped(24, 24, 8, 3, 1).eval()
    ex, stats = cpu_schedule.compile_cpu(_onnx_module(model, (1, 16, 14, 14)), AVX2)
    assert stats["dlight"] == 1, stats
    x = np.random.default_rng(0).standard_normal((1, 16, 14, 14)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert _rel(_run(ex, x), want) < 1e-5


@needs_avx2
@pytest.mark.parametrize("lanes,max_acc,merge", [(4, 20, 1), (16, 16, 4)])
def test_block_groups_at_neon_and_avx512_widths(lanes, max_acc, merge):
    """4 channels a group in NEON's 4-lane blocks (no merge) and AVX-512's 16-lane ones (4 merged),
    the kernels built for this host (its vectors split or widened by LLVM) and run."""
    from tvm import relax

    from neo_local.backends.cpu_schedule.passes import relax_passes
    from neo_local.backends.cpu_schedule.schedules import schedule_module

    assert block_group(16, 64, 64, lanes) == merge
    torch.manual_seed(lanes)
    model = _Grouped(64, 64, 16, 3, 1).eval()
    target = tvm.target.Target(AVX2)
    mod, stats = schedule_module(relax_passes(_onnx_module(model, (1, 16, 14, 14)), lanes, max_acc), target, lanes,
                                 max_acc)
    assert stats["conv"] == 3 and stats["dlight"] == 0 and stats["unscheduled"] == 0, stats
    x = np.random.default_rng(lanes).standard_normal((1, 16, 14, 14)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert _rel(_run(relax.build(mod, target), x), want) < 1e-5


def test_a_grouped_conv_tiles_within_its_group():
    """The default register tile of a grouped conv spans one group's output chunks at most (chunks of
    other groups read other inputs: no broadcast to share)."""
    from neo_local.backends.cpu_schedule.schedules import default_conv_config

    ext = [1, 32, 28, 28, 8, 1, 3, 3, 8]  # 32 groups of 8 channels at 28x28
    assert default_conv_config(ext, 4, 12).tile_c == 4  # as a dense conv's
    cfg = default_conv_config(ext, 4, 12, group_chunks=1)
    assert (cfg.tile_c, cfg.tile_w) == (1, 7)
    assert default_conv_config([1, 32, 14, 14, 8, 2, 3, 3, 8], 4, 12, group_chunks=2).tile_c == 2


def test_the_tuners_space_for_a_grouped_conv_tiles_within_a_group():
    """The tuner's candidates for a grouped conv keep its register tile within one group, the
    default first (tiles across groups share no input: the 4 x 3 above ran 2.5x slower)."""
    from neo_local.backends.cpu_schedule.passes import relax_passes
    from neo_local.backends.cpu_schedule.tuning import workloads

    torch.manual_seed(0)
    model = _Grouped(64, 64, 8, 3, 1).eval()  # 8 channels a group: one chunk each
    (work,) = [w for w in workloads(relax_passes(_onnx_module(model, (1, 16, 14, 14)), 8, 12), 8, 12)
               if w.kind == "conv" and "group_chunks" in w.func.script()]
    assert work.space[0].tile_c == 1 and all(c.tile_c == 1 for c in work.space), work.space[:4]
