"""The benchmark harness's framework families (benchmarks/suite.py, benchmarks/run.py).

Timings are never asserted; what is checked is that both engines of an entry run, agree on the
outputs, and that the ratio recorded is theirs. One tree model goes through the whole harness
(real child processes, a real compile, the results file: about 20 s here); the framework
engines of the other families are checked in process, without compiling, against the outputs
the model builders recorded from the framework itself (or, for MXNet and DarkNet, from the torch
module the files were written from).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import chart, run, suite
from example_archives import CACHE
from neo_local.benchmark import Plan, max_abs_diff

TINY = Plan(warmup=1, max_repeat=3, min_repeat=2, budget_s=0.05, timed_s=0.0)
WORK = CACHE / "benchmarks"


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """The engines set thread variables for the process; put them back afterwards."""
    for name in ("TVM_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.setenv(name, "1")


def test_xgboost_through_the_whole_harness(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "WORK", tmp_path / "work")
    results = tmp_path / "results.json"
    assert run.main([
        "--frameworks", "XGBOOST", "--repeat", "3", "--min-repeat", "2", "--warmup", "1", "--budget", "0.05",
        "--quiet-wait", "0", "--attempts", "1", "--threads", "1", "--rounds", "2", "--results", str(results),
    ]) == 0
    (record,) = json.loads(results.read_text())
    (r,) = record["results"]
    assert (r["model"], r["framework"]) == ("xgboost_multiclass", "XGBOOST")
    tvm, xgb = r["latency"]["neo_local_tvm"], r["latency"]["xgboost"]
    assert len(tvm["rounds"]) == len(xgb["rounds"]) == 2 and tvm["runs"] >= 4 and xgb["runs"] >= 4
    # two rounds: the medians of two per-round ratios, and of two round medians, are their means
    per_round = [a["median_ms"] / b["median_ms"] for a, b in zip(tvm["rounds"], xgb["rounds"])]
    assert r["ratio_rounds"] == {"tvm_over_xgboost": per_round}
    assert r["ratio"]["tvm_over_xgboost"] == pytest.approx(sum(per_round) / 2)
    assert tvm["median_ms"] == pytest.approx(sum(x["median_ms"] for x in tvm["rounds"]) / 2)
    assert record["settings"]["rounds"] == 2
    assert xgb["engine"] == "xgboost (Booster.inplace_predict)"
    assert r["max_abs_diff"]["tvm_vs_xgboost"] < 1e-5
    assert r["compile"]["artifact_bytes"] > 0 and r["compile"]["compile_s"] > 0
    assert record["settings"]["target"]["CompilerOptions"]["mcpu"] == r["compile"]["mcpu"]
    assert r["variant"] == record["settings"]["variant"] == "default"
    # trees have no convs or matmuls to count: no GFLOP/s; the machine's sgemm rate is recorded anyway
    assert (r["flops"], r["gflops"], r["peak_fraction"]) == (None, {}, {})
    assert record["sgemm_peak"]["gflops"] > 0 and record["sgemm_peak"]["threads"] == 1
    page = chart.build(tmp_path, tmp_path / "chart.html").read_text()  # the chart reads the new record
    assert "xgboost_multiclass / xgboost" in page


def test_live_rounds_ask_one_loaded_engine_per_process(tmp_path):
    """``--live``: each engine is loaded once, in a child that stays up, and every round asks it
    for a timing; a request it cannot answer raises here with the child's traceback."""
    import argparse

    from benchmarks import measure

    name = "xgboost_multiclass"
    built = suite.build_step(name, str(tmp_path), 0)
    engines = suite.ENTRIES[name].compare
    args = argparse.Namespace(warmup=1, repeat=3, min_repeat=2, budget=0.1, min_time=0.0, rounds=3, live=True,
                              threads=1, attempts=1, max_other_cpu=1.0)
    rounds = run.time_rounds(name, engines, built, args, lambda: None, log=lambda _: None)
    (key,) = [e.key for e in engines]
    assert len(rounds) == 3 and all(2 <= r[key]["runs"] <= 3 for r in rounds)
    assert len({r[key]["load_s"] for r in rounds}) == 1  # loaded once: the same load in every round
    child = measure.LiveChild(suite.engine_server, name, key, built, 1)
    try:
        with pytest.raises(RuntimeError, match="in the benchmark child"):
            child.ask("not a plan")
        assert child.ask(TINY)["runs"] >= 2  # the child goes on after a failed request
    finally:
        child.close()


@pytest.mark.parametrize("name", ["xgboost_multiclass", "sklearn_random_forest_classifier"])
def test_tree_engines_give_class_probabilities(name, tmp_path):
    built = suite.build_step(name, str(tmp_path), 0)
    (engine,) = suite.ENTRIES[name].compare
    (probabilities,) = suite.engine_step(name, engine.key, built, TINY, 1)["outputs"]
    assert probabilities.shape == (1, 3)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ["tf_saved_model", "keras_sequential_cnn", "tflite_mobile_cnn",
                                  "tflite_mobile_cnn_int8", "resnet_like_mx", "darknet_classifier",
                                  "resnet_like_pt"])
def test_framework_engine_matches_the_recorded_outputs(name):
    built = suite.build_step(name, str(WORK / name), 0)
    with np.load(built["outputs_npz"]) as z:
        want = [z[f"output{i}"] for i in range(len(z.files))]
    for engine in suite.ENTRIES[name].compare:
        r = suite.engine_step(name, engine.key, built, TINY, 1)
        assert r["runs"] >= 2 and r["median_ms"] > 0
        got = r["outputs"]
        assert [g.shape for g in got] == [w.shape for w in want]
        if name.endswith("_int8"):  # recorded with TFLite's reference kernels, timed with its default delegates
            assert max_abs_diff(got, want) <= 1
        else:
            scale = max(float(np.abs(w).max()) for w in want)
            assert max_abs_diff(got, want) <= 1e-4 * scale


def test_mxnet_and_darknet_are_labelled_as_the_translation():
    assert "neo-local's ONNX translation" in suite.TRANSLATION.label
    for family in ("MXNET", "DARKNET"):
        for name in suite.FAMILIES[family]:
            assert suite.ENTRIES[name].compare == (suite.TRANSLATION,)


def test_every_family_has_an_entry_and_unknown_ones_are_refused(capsys):
    from neo_local.frontends import frontends

    assert set(suite.FAMILIES) == set(frontends())
    assert all(n in suite.ENTRIES for names in suite.FAMILIES.values() for n in names)
    with pytest.raises(SystemExit):
        run.main(["--frameworks", "CAFFE"])
    assert "unknown framework(s) CAFFE" in capsys.readouterr().err


def test_compiler_options_label_the_variant_and_bad_ones_are_refused(capsys):
    assert run.variant({}) == "default" and run.variant({"tuning": {"trials": 8}}) == "tuned"
    assert run.variant({"precision": "bf16"}) == "bfloat16"
    assert run.variant({"precision": "bfloat16", "tuning": {"minutes": 1}}) == "tuned bfloat16"
    for bad in ("[1]", "{tuning"):
        with pytest.raises(SystemExit):
            run.main(["--models", "resnet_like", "--compiler-options", bad])
        assert "--compiler-options" in capsys.readouterr().err


def test_a_default_build_reads_no_tuning_records(tmp_path):
    """Every compile reads the records database: a default build gets an empty one of its own."""
    options = run.untuned({"mcpu": "x86-64"}, tmp_path)
    assert options == {"mcpu": "x86-64", "tuning": {"records": str(tmp_path / "no-tuning-records.jsonl")}}
    tuned = {"tuning": {"trials": 10}}
    assert run.untuned(tuned, tmp_path) is tuned


def test_a_tuned_variant_is_timed_against_the_default_build_in_the_same_rounds(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "WORK", tmp_path / "work")
    results, records = tmp_path / "results.json", tmp_path / "records.jsonl"
    assert run.main([
        "--models", "two_input_net", "--repeat", "3", "--min-repeat", "2", "--warmup", "1", "--budget", "0.05",
        "--quiet-wait", "0", "--attempts", "1", "--threads", "1", "--rounds", "2", "--results", str(results),
        "--compiler-options", json.dumps({"tuning": {"trials": 4, "records": str(records)}}),
    ]) == 0
    (record,) = json.loads(results.read_text())
    (r,) = record["results"]
    assert r["variant"] == "tuned"
    keys = list(r["latency"])
    assert keys[0] == "neo_local_tvm" and keys[-1] == "neo_local_default" and len(keys) >= 3
    default = r["latency"]["neo_local_default"]
    assert default["engine"] == "neo-local, the default compile (no tuning records, float32)"
    tuned = r["latency"]["neo_local_tvm"]
    per_round = [a["median_ms"] / b["median_ms"] for a, b in zip(tuned["rounds"], default["rounds"])]
    assert r["ratio_rounds"]["tvm_over_neo_local_default"] == per_round
    assert list(r["ratio"])[-1] == "tvm_over_neo_local_default"  # the compared engines' ratios come first
    assert r["compile"]["compiler_options"]["tuning"]["records"] == str(records)
    assert r["compile_default"]["compiler_options"]["tuning"] == {
        "records": str(tmp_path / "work" / "two_input_net" / "no-tuning-records.jsonl")
    }
    assert r["max_abs_diff"]["tvm_vs_neo_local_default"] < 1e-4
