"""The harness's interleaved rounds (benchmarks/run.py): the order of the timings, what is
re-timed when a round is disturbed, and how the rounds become the recorded figures.

A unit test of the bookkeeping only: ``measure.in_child`` is replaced by a function that
returns canned build, compile and timing results in this process (no archive is built, nothing
is compiled or timed), and ``measure.wait_for_quiet`` by one that only notes the wait. The real
child processes, compile and timings go through the harness in
tests/benchmarks/test_suite.py::test_xgboost_through_the_whole_harness.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from benchmarks import chart, flops, measure, run, suite

NAME = "resnet_like"  # neo-local, then onnxruntime and torch
ENGINES = ("neo_local_tvm", "onnxruntime", "torch")


def _args(**changes) -> argparse.Namespace:
    args = dict(seed=0, compiler_options={}, mcpu="znver3", threads=2, max_runtime=60, quiet_wait=5.0,
                rounds=3, attempts=2, max_other_cpu=0.10, warmup=1, repeat=50, min_repeat=3, budget=9.0, min_time=0.5, live=False)
    return argparse.Namespace(**{**args, **changes})


class FakeChildren:
    """Stands for ``measure.in_child``: logs each step and answers with canned figures; the
    timing of (engine, n-th time it is timed) is ``medians[key][n]`` ms, disturbed by ``shares``."""

    def __init__(self, medians: dict[str, list[float]], shares: dict[tuple[str, int], float] | None = None):
        self.medians, self.shares = medians, shares or {}
        self.log: list[str] = []
        self.plans = []

    def wait_for_quiet(self, max_wait_s: float) -> dict[str, float]:
        self.log.append("settle")
        return {"waited_s": 0.0, "cpu_util_before": 0.0}

    def __call__(self, func, *args):
        if func is suite.build_step:
            return {"archive": "a.tar.gz", "data_input_config": None, "compiler_options": {},
                    "inputs": [{"name": "x", "shape": [1, 3, 32, 32], "dtype": "float32"}], "archive_bytes": 1}
        if func is flops.flops_step:
            return 1e9
        if func is measure.compile_step:
            self.log.append("compile")
            return {"artifact": "model.tar.gz", "compile_s": 1.0, "tvm_build_s": None, "peak_rss_mb": 1.0,
                    "children_peak_rss_mb": 1.0, "artifact_bytes": 2**20, "mcpu": "znver3"}
        assert func is suite.engine_step
        _, key, built, plan, _ = args
        assert built["artifact"] == "model.tar.gz"
        n = sum(step == key for step in self.log)
        self.log.append(key)
        self.plans.append(plan)
        median = self.medians[key][n]
        return {"median_ms": median, "p90_ms": median * 1.1, "runs": 5, "engine": key, "threads": 2,
                "peak_rss_mb": 100.0 + n, "other_cpu_share": self.shares.get((key, n), 0.02), "steal_share": None,
                "outputs": [np.array([n + (0.25 if key == "onnxruntime" else 0.0)])]}


@pytest.fixture
def children(monkeypatch):
    def make(medians, shares=None):
        fake = FakeChildren(medians, shares)
        monkeypatch.setattr(measure, "in_child", fake)
        monkeypatch.setattr(measure, "wait_for_quiet", fake.wait_for_quiet)
        return fake
    return make


def test_rounds_interleave_and_the_ratio_is_the_median_of_the_per_round_ratios(children, tmp_path):
    # round 2 ran under load for neo-local and onnxruntime alike; the per-round ratios see through it
    fake = children({"neo_local_tvm": [10.0, 30.0, 12.0], "onnxruntime": [5.0, 15.0, 10.0],
                     "torch": [20.0, 20.0, 40.0]})
    r = run.bench_model(NAME, _args(), peak_gflops=1000.0, log=lambda _: None)

    # each round's order turned by one: every engine takes each place once
    assert fake.log == ["settle", "compile", "settle", *ENGINES, "settle", *ENGINES[1:], ENGINES[0],
                        "settle", ENGINES[2], *ENGINES[:2]]
    assert {p.budget_s for p in fake.plans} == {3.0}  # --budget 9 over 3 rounds
    assert r["ratio_rounds"] == {"tvm_over_onnxruntime": [2.0, 2.0, 1.2], "tvm_over_torch": [0.5, 1.5, 0.3]}
    assert r["ratio"] == {"tvm_over_onnxruntime": 2.0, "tvm_over_torch": 0.5}  # medians of medians: 1.2, 0.6
    tvm = r["latency"]["neo_local_tvm"]
    assert [x["median_ms"] for x in tvm["rounds"]] == [10.0, 30.0, 12.0]
    assert (tvm["median_ms"], tvm["runs"], tvm["peak_rss_mb"], tvm["other_cpu_share"]) == (12.0, 15, 102.0, 0.02)
    assert tvm["p90_ms"] == pytest.approx(13.2)
    assert r["gflops"]["neo_local_tvm"] == pytest.approx(1e9 / 12e6)
    assert all("outputs" not in x for e in r["latency"].values() for x in e["rounds"])
    assert r["max_abs_diff"] == {"tvm_vs_onnxruntime": 0.25, "tvm_vs_torch": 0.0, "onnxruntime_vs_torch": 0.25}
    assert r["max_rel_diff"]["tvm_vs_onnxruntime"] == 1.0  # 0.25 off an output of 0.25
    text = run.table([r])
    assert "tvm-onnxruntime 2.50e-01 (relative 1.00e+00)" in text
    assert "neo-local/x per round: onnxruntime 2.00 2.00 1.20; torch 0.50 1.50 0.30" in text  # round order
    assert " 2.00 " in text.splitlines()[3]  # onnxruntime's row: the recorded ratio, not 12 / 10

    # the chart reads the new record as it read the old ones
    record = {"timestamp": "2026-11-26T12:00:00+00:00", "git": {"commit": "c" * 40, "dirty_files": []},
              "results": [json.loads(json.dumps(r))]}
    (tmp_path / "cpu-2c.json").write_text(json.dumps([record]))
    page = chart.build(tmp_path, tmp_path / "chart.html").read_text()
    assert "<title>resnet_like / onnxruntime: 2 x (ccccccc, 2026-11-26T12:00:00+00:00)</title>" in page


def test_a_disturbed_round_is_timed_again_whole_and_the_quieter_try_kept(children):
    # round 1's onnxruntime timing shared the CPU with others (40%): round 1 is timed again, all engines
    fake = children({"neo_local_tvm": [10.0, 11.0, 12.0], "onnxruntime": [20.0, 10.0, 12.0]},
                    shares={("onnxruntime", 0): 0.40})
    args = _args(rounds=2, attempts=3)
    rounds = run.time_rounds(NAME, (suite.NEO_LOCAL, suite.ONNXRUNTIME), {"artifact": "model.tar.gz"}, args,
                             lambda: measure.wait_for_quiet(args.quiet_wait), log=lambda _: None)

    pair = ["settle", "neo_local_tvm", "onnxruntime"]
    # round 1 twice (the second try was quiet), then round 2 once, in the other order
    assert fake.log == pair * 2 + ["settle", "onnxruntime", "neo_local_tvm"]
    first = rounds[0]
    assert (first["neo_local_tvm"]["median_ms"], first["onnxruntime"]["median_ms"]) == (11.0, 10.0)
    assert first["onnxruntime"]["attempts"] == [{"median_ms": 20.0, "other_cpu_share": 0.40},
                                                {"median_ms": 10.0, "other_cpu_share": 0.02}]
    assert first["neo_local_tvm"]["attempts"] == [{"median_ms": 10.0, "other_cpu_share": 0.02},
                                                  {"median_ms": 11.0, "other_cpu_share": 0.02}]
    assert len(rounds[1]["onnxruntime"]["attempts"]) == 1
    assert first["onnxruntime"]["quiet_wait"] == {"waited_s": 0.0, "cpu_util_before": 0.0}


def test_rounds_and_attempts_must_be_positive(capsys):
    for flag in ("--rounds", "--attempts"):
        with pytest.raises(SystemExit):
            run.main(["--models", NAME, flag, "0"])
        assert "--rounds, --attempts" in capsys.readouterr().err
