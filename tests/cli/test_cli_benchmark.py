"""``neo-local benchmark``: a real (tiny) compiled artifact, timed alone and against
onnxruntime on the archive it was compiled from. Timings are never asserted."""

from __future__ import annotations

import json

import pytest

from neo_local.cli.main import EXIT_JOB_FAILED, EXIT_USAGE, main

FAST = ["--warmup", "1", "--repeat", "5", "--min-repeat", "3", "--budget", "0.05", "--threads", "1",
        "--min-time", "0"]


@pytest.fixture(autouse=True)
def _threads(monkeypatch):
    monkeypatch.setenv("TVM_NUM_THREADS", "1")  # the command sets it; put it back afterwards


def test_compare_with_onnxruntime_on_the_source_archive(matmul_artifact, capsys):
    artifact, archive = matmul_artifact
    assert main(["benchmark", str(artifact), "--compare", "onnxruntime", "--model", str(archive), *FAST]) == 0
    report = json.loads(capsys.readouterr().out)
    ours, theirs = report["neo_local"], report["compare"]
    assert report["threads"] == 1 and report["inputs"] == {"x": [1, 8], "y": [1, 4]}
    assert 3 <= ours["runs"] <= 5 and 3 <= theirs["runs"] <= 5
    assert ours["p50_ms"] <= ours["p90_ms"] <= ours["p99_ms"]
    assert theirs["engine"] == "onnxruntime"
    assert report["ratio"] == pytest.approx(ours["p50_ms"] / theirs["p50_ms"])
    assert theirs["max_abs_diff"] < 1e-5


def test_text_output_and_given_inputs(matmul_artifact, capsys, tmp_path):
    import numpy as np

    artifact, archive = matmul_artifact
    np.save(tmp_path / "x.npy", np.ones((1, 8), np.float32))
    np.save(tmp_path / "y.npy", np.zeros((1, 4), np.float32))
    inputs = ["--input", f"x={tmp_path / 'x.npy'}", "--input", f"y={tmp_path / 'y.npy'}"]
    assert main(["benchmark", str(artifact), "--output", "text", *inputs, *FAST]) == 0
    out = capsys.readouterr().out
    assert "1 threads, inputs x [1, 8], y [1, 4]" in out
    assert out.splitlines()[2].startswith("neo-local ")
    assert "neo-local / " not in out  # nothing compared


def test_compare_needs_the_source_model(matmul_artifact, capsys):
    assert main(["benchmark", str(matmul_artifact[0]), "--compare", "torch"]) == EXIT_USAGE
    assert "--compare and --model go together" in capsys.readouterr().err


def test_a_source_model_the_engine_cannot_read(matmul_artifact, capsys):
    artifact, archive = matmul_artifact
    assert main(["benchmark", str(artifact), "--compare", "tflite", "--model", str(archive), *FAST]) == EXIT_JOB_FAILED
    assert "mm.tar.gz must hold exactly one .tflite file for tflite; found: none" in capsys.readouterr().err
