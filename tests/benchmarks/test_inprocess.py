"""benchmarks.inprocess: a tuned run times the default configs in the same rounds."""

import json

from benchmarks import inprocess


def test_tuned_run_times_the_default_beside_it(tmp_path, monkeypatch, capsys):
    results = tmp_path / "inprocess.json"
    monkeypatch.setenv("INPROCESS_RESULTS", str(results))
    argv = ["mobilenet_like", "--tune-trials", "4", "--rounds", "3", "--repeat", "2", "--save"]
    assert inprocess.main(argv) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert json.loads(results.read_text()) == [record]
    assert record["pipeline"] == "cpu_schedule, tuned 4 trials"
    assert record["stats"]["tuning_trials"] == 4
    assert record["max_rel_error_vs_torch"] < 1e-4  # both builds checked against torch's outputs
    rounds = record["rounds"]
    # every engine in every round, each round starting with the next one
    assert [list(r)[:3] for r in rounds] == [["tvm_ms", "default_ms", "onnxruntime_ms"],
                                             ["default_ms", "onnxruntime_ms", "tvm_ms"],
                                             ["onnxruntime_ms", "tvm_ms", "default_ms"]]
    for r in rounds:
        assert r["ratio"] == r["tvm_ms"] / r["onnxruntime_ms"]
        assert r["default_ratio"] == r["default_ms"] / r["onnxruntime_ms"]
    assert record["median_tuned_over_default"] > 0
