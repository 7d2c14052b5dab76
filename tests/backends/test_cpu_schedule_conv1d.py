"""One-dimensional convs and pools as conv2d of height 1 (neo_local.backends.cpu_schedule.conv1d):
the rewrite's shape, the blocked schedules it opens, and outputs against torch."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
torch = pytest.importorskip("torch")

from tvm import relax  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule.conv1d import conv1d_as_conv2d  # noqa: E402
from test_cpu_schedule import AVX2, _onnx_module, _rel, _run, needs_avx2  # noqa: E402


class _AudioNet(torch.nn.Module):
    """Strided stem conv, batch norm, max pool; a residual block of a dilated depthwise conv and a
    1x1 conv (TCN-style); an average pool; a mean over time; a linear head."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.stem = nn.Sequential(nn.Conv1d(1, 16, 9, stride=2, padding=4), nn.BatchNorm1d(16), nn.ReLU(),
                                  nn.MaxPool1d(3, 2))
        self.dw = nn.Conv1d(16, 16, 3, padding=2, dilation=2, groups=16)
        self.pw = nn.Conv1d(16, 16, 1)
        self.tail = nn.Sequential(nn.AvgPool1d(2), nn.Conv1d(16, 24, 3), nn.ReLU())
        self.head = nn.Linear(24, 5)
        with torch.no_grad():
            self.stem[1].running_mean.uniform_(-0.5, 0.5)
            self.stem[1].running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        y = self.stem(x)
        y = y + torch.relu(self.pw(torch.relu(self.dw(y))))
        return self.head(self.tail(y).mean(-1))


def _calls(mod, op: str) -> int:
    return sum(1 for blk in mod["main"].body.blocks for b in blk.bindings
               if isinstance(b.value, relax.Call) and b.value.op == tvm.ir.Op.get(op))


@needs_avx2
def test_conv1d_model_takes_the_blocked_schedules_and_matches_torch():
    """Every conv, pool and the mean run on the blocked 2-D kernels, none on dlight's generic
    schedules (where an audio CNN ran 38-56x slower than onnxruntime)."""
    torch.manual_seed(0)
    model = _AudioNet().eval()
    opt, stats = cpu_schedule.optimize(_onnx_module(model, (1, 1, 400)), AVX2)
    assert stats["conv"] >= 3 and stats["depthwise"] == 1, stats
    assert stats["dlight"] == 0 and stats["unscheduled"] == 0, stats
    x = np.random.default_rng(0).standard_normal((1, 1, 400)).astype("float32")
    got = _run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape and _rel(got, want) < 1e-5


@needs_avx2
def test_torch_export_pools_written_as_2d_join_the_chain():
    """torch's frontend writes a 1-D pool as expand_dims -> 2-D pool -> squeeze (and the mean over
    time the same way): the rewrite takes the 4-D value in and out of it as the twin, so nothing
    between the convs has a negative axis, which TVM's ConvertLayout failed on (std::bad_alloc:
    such models had fallen back to the plain build)."""
    from tvm.relax.frontend.torch import from_exported_program

    torch.manual_seed(2)
    model = _AudioNet().eval()
    x = torch.randn(1, 1, 400)
    mod = from_exported_program(torch.export.export(model, (x,)), unwrap_unit_return_tuple=True)
    ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
    assert stats["conv"] >= 3 and stats["dlight"] == 0 and stats["unscheduled"] == 0, stats
    with torch.no_grad():
        want = model(x).numpy()
    got = _run(ex, x.numpy())
    assert got.shape == want.shape and _rel(got, want) < 1e-5


class _PointNet(torch.nn.Module):
    """Shared per-point 1x1 conv1d layers, a max over the points, a linear head."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.points = nn.Sequential(nn.Conv1d(3, 16, 1), nn.ReLU(), nn.Conv1d(16, 32, 1), nn.ReLU())
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        return self.head(self.points(x).max(2)[0])


@needs_avx2
def test_a_max_over_the_points_stays_blocked():
    """The max over time or points (a global max pool) is reduced in the blocked layout like a mean:
    no kernel takes the [1, 32, 200] features back to their plain layout (a PointNet's 1024 x 1024:
    0.35 ms of transform)."""
    torch.manual_seed(5)
    model = _PointNet().eval()
    opt, stats = cpu_schedule.optimize(_onnx_module(model, (1, 3, 200)), AVX2)
    assert stats["conv"] == 3 and stats["dlight"] == 0, stats
    shapes = {tuple(int(d) for d in p.shape) for _, f in opt.functions_items()
              if isinstance(f, tvm.tirx.PrimFunc) for p in f.params}
    assert (1, 4, 1, 200, 8) in shapes and not shapes & {(1, 32, 200), (1, 32, 1, 200)}, shapes
    x = np.random.default_rng(5).standard_normal((1, 3, 200)).astype("float32")
    got = _run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape and _rel(got, want) < 1e-5


def test_a_chain_of_conv1d_layers_stays_two_dimensional():
    """conv -> bias -> relu -> conv: the second conv reads the first one's 4-D twin; only the
    model's output is squeezed back to three dimensions."""
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv1d(8, 16, 5, padding=2), torch.nn.ReLU(), torch.nn.Conv1d(16, 8, 3)).eval()
    mod = conv1d_as_conv2d(_onnx_module(model, (1, 8, 50)))
    assert _calls(mod, "relax.nn.conv1d") == 0 and _calls(mod, "relax.nn.conv2d") == 2
    assert _calls(mod, "relax.squeeze") == 1
    x = np.random.default_rng(1).standard_normal((1, 8, 50)).astype("float32")
    got = _run(tvm.compile(mod, target="llvm"), x)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape and _rel(got, want) < 1e-5


def test_a_channels_last_conv1d_is_left_to_tvm():
    x = relax.Var("x", relax.TensorType((1, 50, 8), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            w = relax.const(np.ones((16, 8, 3), "float32"))
            y = bb.emit_output(relax.op.nn.conv1d(x, w, data_layout="NWC"))
        bb.emit_func_output(y)
    mod = conv1d_as_conv2d(bb.get())
    assert _calls(mod, "relax.nn.conv1d") == 1 and _calls(mod, "relax.nn.conv2d") == 0
