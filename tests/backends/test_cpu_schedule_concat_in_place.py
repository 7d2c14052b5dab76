"""Concatenations written in place (neo_local.backends.cpu_schedule.concat_in_place): the
producers of a concatenation's inputs write their slices of its result, and the numbers stay
those of torch."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
torch = pytest.importorskip("torch")

from tvm.script import tirx as T  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule.concat_in_place import _writing_into  # noqa: E402
from tests.backends.test_cpu_schedule import (  # noqa: E402
    AVX2, _onnx_module, _prim_funcs, _rel, _run, _run_prim_func, needs_avx2,
)


class _Fire(torch.nn.Module):
    """SqueezeNet's fire module (squeeze 1x1, expand 1x1 and 3x3 concatenated), then a max pool
    beside a strided 3x3 conv, concatenated with them in a third branch order (Inception's grid
    reduction), then a 1x1 conv reading the result."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.squeeze = nn.Sequential(nn.Conv2d(8, 8, 1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(8, 16, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.down = nn.Conv2d(32, 16, 3, stride=2)
        self.pool = nn.MaxPool2d(3, 2)
        self.head = nn.Conv2d(48, 8, 1)

    def forward(self, x):
        s = self.squeeze(x)
        y = torch.cat([self.e1(s), self.e3(s)], 1)
        return self.head(torch.cat([self.down(y), self.pool(y)], 1))


def _compiled(model, shape):
    mod = _onnx_module(model, shape)
    opt, stats = cpu_schedule.optimize(mod, AVX2)
    x = np.random.default_rng(3).standard_normal(shape).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    return opt, stats, _run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x), want


@needs_avx2
def test_producers_write_their_slices_and_the_concatenations_go():
    torch.manual_seed(5)
    opt, stats, got, want = _compiled(_Fire().eval(), (1, 8, 15, 15))
    assert stats["concats_in_place"] == 2 and stats["unscheduled"] == 0, stats
    funcs = _prim_funcs(opt)
    assert not [n for n in funcs if n.startswith("concatenate")], list(funcs)
    writers = {n: [int(d) for d in f.params[-1].shape] for n, f in funcs.items() if "_into_concat" in n}
    assert sorted(w[1] for w in writers.values()) == [4, 4, 6, 6], writers  # 32 and 48 channels, 8 lanes
    assert "call_tir_inplace" in opt["main"].script()
    assert _rel(got, want) < 1e-5


class _Reused(torch.nn.Module):
    """A concatenation whose first input also feeds an add after it: that input's producer must
    keep its own output, so the concatenation stays a copy."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(8, 8, 1), torch.nn.Conv2d(8, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(16, 8, 1)

    def forward(self, x):
        a = torch.relu(self.a(x))
        return self.head(torch.cat([a, self.b(x)], 1)) + a


@needs_avx2
def test_an_input_used_elsewhere_keeps_the_copy():
    torch.manual_seed(6)
    opt, stats, got, want = _compiled(_Reused().eval(), (1, 8, 9, 9))
    assert stats["concats_in_place"] == 0, stats
    assert [n for n in _prim_funcs(opt) if n.startswith("concatenate")]
    assert _rel(got, want) < 1e-5


class _Computed(torch.nn.Module):
    """A concatenation of two elementwise results (``two_input_net``): the schedules inline the add
    and the multiply-subtract into the concatenation's block, which then computes: no copy to drop."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(16, 8, 3, stride=2)

    def forward(self, x):
        a, b = torch.relu(self.a(x)), torch.relu(self.b(x))
        return self.head(torch.cat([a + b, a * 0.5 - b], 1))


@needs_avx2
def test_a_concatenation_that_computes_is_kept():
    torch.manual_seed(8)
    opt, stats, got, want = _compiled(_Computed().eval(), (1, 3, 12, 12))
    assert stats["concats_in_place"] == 0, stats
    assert _rel(got, want) < 1e-5


@T.prim_func(s_tir=True)
def _doubled(a: T.Buffer((1, 2, 3, 8), "float32"), out: T.Buffer((1, 2, 3, 8), "float32")):
    for i, j, k, m in T.grid(1, 2, 3, 8):
        with T.sblock("double"):
            vi, vj, vk, vm = T.axis.remap("SSSS", [i, j, k, m])
            out[vi, vj, vk, vm] = a[vi, vj, vk, vm] * T.float32(2)


@T.prim_func(s_tir=True)
def _by_pointer(a: T.Buffer((4,), "float32"), out: T.Buffer((4,), "float32")):
    T.evaluate(T.call_extern("int32", "fill", a.data, out.data))


def test_a_kernel_writes_at_its_offset_in_the_larger_buffer():
    into = _writing_into(_doubled, [1, 5, 3, 8], 1, 3)
    a = np.random.default_rng(0).standard_normal((1, 2, 3, 8)).astype("float32")
    got = _run_prim_func(into, [a, np.zeros((1, 5, 3, 8), "float32")])
    assert (got[:, 3:] == 2 * a).all() and not got[:, :3].any()


def test_a_kernel_reaching_its_output_by_pointer_is_left_alone():
    assert _writing_into(_by_pointer, [8], 0, 4) is None
