"""A fixed sample of the torch.export suite in the default test run (the full suite:
``python -m tests.torch_export_suite.run``, see docs/torch-export-coverage.md).

Each sampled case is exported, imported through the PYTORCH frontend's .pt2 route, compiled for
llvm, run and compared with torch, and must keep the outcome recorded in ``results.json``: a pass
that turns into a failure fails here, and so does a recorded failure that starts passing (record
it with ``run --write``). ``selu`` and ``upsample_nearest_size`` pass only through neo-local's own
aten converters; ``adaptive_max_pool2d`` is a recorded TVM gap."""

import pytest

from tests.torch_export_suite.cases import BY_NAME, build, make_inputs
from tests.torch_export_suite.report import aten_ops
from tests.torch_export_suite.run import PASS, _Worker, load_recorded, run_case

SAMPLE = ("conv2d", "batch_norm2d", "max_pool2d", "hardswish", "cat", "softmax", "linear", "embedding",
          "sdpa_causal", "selu", "upsample_nearest_size", "adaptive_max_pool2d")


@pytest.fixture(scope="module")
def recorded():
    return load_recorded()


def test_results_cover_the_catalogue(recorded):
    assert set(recorded) == set(BY_NAME)


@pytest.mark.parametrize("name", SAMPLE)
def test_sample_case_keeps_its_recorded_outcome(recorded, name):
    outcome, expected = run_case(name), recorded[name]
    assert outcome.status == expected.status, outcome.detail
    assert aten_ops(outcome.detail) == aten_ops(expected.detail)


def test_sample_mostly_passes(recorded):
    """The sample is meant to guard working operators: most of it must be recorded as passing."""
    assert sum(recorded[n].status == PASS for n in SAMPLE) >= len(SAMPLE) - 1


def test_inputs_and_weights_are_seeded():
    case = BY_NAME["embedding"]
    first, second = make_inputs(case), make_inputs(case)
    assert all((a == b).all() for a, b in zip(first, second))
    assert (build(case).weight == build(case).weight).all()


def test_worker_is_replaced_after_a_crash_or_timeout():
    worker = _Worker()
    try:
        worker.proc.kill()
        worker.proc.wait()
        assert worker.ask("relu", timeout=60).status == "crash"
        assert worker.ask("relu", timeout=0.01).status == "timeout"
        assert worker.ask("relu", timeout=120).status == PASS
    finally:
        worker.close()
