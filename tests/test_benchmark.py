"""neo_local.benchmark's timing loop: how many runs a plan asks for, and what a timing holds."""

from __future__ import annotations

import time

import numpy as np
import pytest

from neo_local.benchmark import SAMPLES_KEPT, Plan, Timing, max_abs_diff, time_on_device, time_runs


def test_the_budget_decides_the_runs_within_the_bounds():
    plan = Plan(warmup=2, max_repeat=50, min_repeat=3, budget_s=1.0, timed_s=0.0)
    assert plan.runs_for(0.1) == 10
    assert plan.runs_for(10.0) == 3       # a slow run: the minimum
    assert plan.runs_for(1e-6) == 50      # a fast one: the maximum


def test_fast_runs_are_timed_for_timed_s_within_the_budget():
    """50 runs of 16 us last 0.8 ms, one slow moment of a shared machine: a fast model is timed
    for ``timed_s`` instead, beyond ``max_repeat`` but never past the budget."""
    plan = Plan(warmup=2, max_repeat=50, min_repeat=3, budget_s=1.0, timed_s=0.5)
    assert plan.runs_for(16e-6) == 31250  # 0.5 s of 16 us runs
    assert plan.runs_for(0.1) == 10       # slow runs: the budget's count, as before
    assert Plan(max_repeat=50, budget_s=0.1, timed_s=0.5).runs_for(1e-3) == 100  # the budget caps it


def test_time_runs_warms_up_times_and_keeps_the_first_result():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.002)
        return len(calls)

    timing, first = time_runs(fn, Plan(warmup=2, max_repeat=4, min_repeat=4, budget_s=10.0, warmup_s=0.0,
                                            timed_s=0.0))
    assert first == 1 and len(calls) == 6 and timing.warmup_runs == 2
    summary = timing.summary()
    assert summary["runs"] == 4 and summary["p50_ms"] >= 2.0
    assert summary["p50_ms"] <= summary["p90_ms"] <= summary["p99_ms"]
    assert summary["other_cpu_share"] is None  # under a second: too short to say
    assert timing.as_dict()["samples_ms"] == pytest.approx(list(timing.samples_ms), abs=1e-3)
    assert timing.as_dict()["samples_step"] == 1


def test_a_record_keeps_a_bounded_evenly_spaced_subset_of_many_samples():
    timing = Timing(tuple(float(i) for i in range(1000)), 3, None, None, None)
    record = timing.as_dict()
    assert record["samples_step"] == 16 and len(record["samples_ms"]) == 63 <= SAMPLES_KEPT
    assert record["samples_ms"][:3] == [0.0, 16.0, 32.0]
    assert record["runs"] == 1000 and record["median_ms"] == 499.5  # the figures are of all samples


def test_max_abs_diff_needs_the_same_outputs():
    assert max_abs_diff([np.zeros(3)], [np.array([0.0, -2.0, 1.0])]) == 2.0
    with pytest.raises(ValueError, match="1 and 2 outputs"):
        max_abs_diff([np.zeros(1)], [np.zeros(1), np.zeros(1)])


def _device(seconds: float):
    """A stand-in remote device: ``run(n)`` makes n runs of ``seconds`` each and returns their
    times; ``calls`` records each n asked for."""
    calls: list[int] = []

    def run(n):
        calls.append(n)
        return [seconds] * n

    return run, calls


def test_time_on_device_takes_the_times_the_device_measured():
    run, calls = _device(0.002)
    timing = time_on_device(run, Plan(warmup=2, max_repeat=4, min_repeat=4, budget_s=10.0, warmup_s=0.0, timed_s=0.0))
    assert calls == [1, 1, 4] and timing.warmup_runs == 2
    assert timing.samples_ms == pytest.approx((2.0,) * 4)
    assert timing.summary()["other_cpu_share"] is None and timing.cpu_s is None  # not this machine's


def test_time_on_device_warms_up_less_when_a_run_is_slow():
    run, calls = _device(3.0)
    timing = time_on_device(run, Plan(warmup=3, max_repeat=50, min_repeat=2, budget_s=4.0))
    assert calls == [1, 2] and timing.warmup_runs == 1  # 3 s of warm-up is past budget_s / 4; then the minimum


def test_warm_up_lasts_warmup_s_when_the_runs_are_fast():
    """A few fast runs would leave the timed ones in a new process's slow first milliseconds."""
    run, calls = _device(0.25)
    timing = time_on_device(run, Plan(warmup=2, max_repeat=4, min_repeat=4, budget_s=100.0, warmup_s=1.0))
    assert calls == [1, 1, 1, 1, 4] and timing.warmup_runs == 4  # 2 runs asked for; 1 s of them took 4
