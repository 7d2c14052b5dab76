"""LSTM and GRU directions as one kernel each (neo_local.backends.cpu_schedule.recurrence):
exported torch LSTMs and GRUs built on the scheduled pipeline against torch, over the kernel's
cases (both directions, batches, initial states, a hidden size padded to whole vectors, the
parallel steps), and a recurrence it does not take built from its inlined steps."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
torch = pytest.importorskip("torch")

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule.recurrence import RecurrenceShape  # noqa: E402
from test_cpu_schedule import AVX2, _onnx_module, _rel, needs_avx2  # noqa: E402


def _outputs(executable, *arrays) -> list[np.ndarray]:
    vm = tvm.relax.VirtualMachine(executable, tvm.cpu())
    return [r.numpy() for r in vm["main"](*(tvm.runtime.tensor(a) for a in arrays))]


class _Recurrent(torch.nn.Module):
    """An LSTM or GRU with its initial states as inputs, returning its outputs and final states."""

    def __init__(self, cell: str, hidden: int, layers: int, bidirectional: bool):
        super().__init__()
        self.cell = cell
        kind = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
        self.rnn = kind(16, hidden, layers, batch_first=True, bidirectional=bidirectional)

    def forward(self, x, h0, c0=None):
        if self.cell == "gru":
            return self.rnn(x, h0)
        y, (h, c) = self.rnn(x, (h0, c0))
        return y, h, c


@needs_avx2
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("hidden, layers, bidirectional, batch, kernels", [
    (12, 1, True, 3, 2),  # hidden padded 12 -> 16; a forward and a reverse kernel
    (24, 2, False, 1, 1),  # two layers of the same shapes share one kernel
    (200, 1, False, 1, 1),  # a step's rows on all threads
])
def test_recurrences_run_as_one_kernel_a_direction(cell, hidden, layers, bidirectional, batch, kernels):
    torch.manual_seed(4)
    directions = 2 if bidirectional else 1
    model = _Recurrent(cell, hidden, layers, bidirectional).eval()
    state = (layers * directions, batch, hidden)
    shapes = [(batch, 7, 16), *[state] * (2 if cell == "lstm" else 1)]
    ex, stats = cpu_schedule.compile_cpu(_onnx_module(model, *shapes), AVX2)
    assert stats[cell] == kernels and stats["unscheduled"] == 0, stats
    assert RecurrenceShape(cell, 7, batch, hidden, 8, False).parallel == (hidden == 200)
    rng = np.random.default_rng(4)
    inputs = [rng.standard_normal(s).astype("float32") for s in shapes]
    got = _outputs(ex, *inputs)
    with torch.no_grad():
        want = model(*(torch.from_numpy(a) for a in inputs))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape) and _rel(g, w.numpy()) < 1e-5


@needs_avx2
def test_an_lstm_the_kernel_does_not_take_builds_from_its_steps():
    """A float16 LSTM (the kernel is float32): its direction's function is inlined, and the
    steps build as before, against onnx's reference implementation."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    from neo_local.backends.cpu_schedule.recurrence import recurrence_kernels
    from neo_local.frontends.base import TensorSpec
    from neo_local.frontends.onnx_import import import_onnx

    steps, inputs, hidden = 4, 3, 5
    rng = np.random.default_rng(5)
    weights = [numpy_helper.from_array((rng.standard_normal((1, 4 * hidden, n)) * 0.5).astype("float16"), name)
               for name, n in (("W", inputs), ("R", hidden))]
    graph = helper.make_graph(
        [helper.make_node("LSTM", ["X", "W", "R"], ["Y"], hidden_size=hidden)], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT16, [steps, 1, inputs])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT16, [steps, 1, 1, hidden])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    mod, _ = import_onnx(model, (TensorSpec("X", (steps, 1, inputs), "float16"),), "m.onnx")
    assert len(mod.functions_items()) == 2
    assert [gv.name_hint for gv, _ in recurrence_kernels(mod, 8).functions_items()] == ["main"]
    ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
    assert stats["lstm"] == 0 and stats["unscheduled"] == 0, stats
    x = rng.standard_normal((steps, 1, inputs)).astype("float16")
    got = tvm.relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
    want = ReferenceEvaluator(model).run(None, {"X": x})[0]
    assert got.dtype == want.dtype and np.abs(got.astype("float32") - want.astype("float32")).max() < 2e-3
