"""``neo-local benchmark``: a real (tiny) compiled artifact, timed alone and against
onnxruntime on the archive it was compiled from. Timings are never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neo_local.cli.main import EXIT_JOB_FAILED, EXIT_USAGE, main

FAST = ["--warmup", "1", "--repeat", "5", "--min-repeat", "3", "--budget", "0.05", "--threads", "1"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> tuple[Path, Path]:
    """(artifact, the archive it was compiled from): x [1,8] @ W + y [1,4], for ml_c4 (AVX2)."""
    from models import make_archive
    from onnx_graphs import matmul_add_model, save

    from neo_local import compile as neo_compile

    tmp = tmp_path_factory.mktemp("cli-benchmark")
    archive = make_archive([save(matmul_add_model(), tmp / "mm.onnx")], tmp / "mm.tar.gz")
    uri = neo_compile(
        InputConfig={"S3Uri": str(archive), "Framework": "ONNX"},
        OutputConfig={"S3OutputLocation": str(tmp / "out"), "TargetDevice": "ml_c4"},
    )
    return Path(uri), archive


@pytest.fixture(autouse=True)
def _threads(monkeypatch):
    monkeypatch.setenv("TVM_NUM_THREADS", "1")  # the command sets it; put it back afterwards


def test_compare_with_onnxruntime_on_the_source_archive(compiled, capsys):
    artifact, archive = compiled
    assert main(["benchmark", str(artifact), "--compare", "onnxruntime", "--model", str(archive), *FAST]) == 0
    report = json.loads(capsys.readouterr().out)
    ours, theirs = report["neo_local"], report["compare"]
    assert report["threads"] == 1 and report["inputs"] == {"x": [1, 8], "y": [1, 4]}
    assert 3 <= ours["runs"] <= 5 and 3 <= theirs["runs"] <= 5
    assert ours["p50_ms"] <= ours["p90_ms"] <= ours["p99_ms"]
    assert theirs["engine"] == "onnxruntime"
    assert report["ratio"] == pytest.approx(ours["p50_ms"] / theirs["p50_ms"])
    assert theirs["max_abs_diff"] < 1e-5


def test_text_output_and_given_inputs(compiled, capsys, tmp_path):
    import numpy as np

    artifact, archive = compiled
    np.save(tmp_path / "x.npy", np.ones((1, 8), np.float32))
    np.save(tmp_path / "y.npy", np.zeros((1, 4), np.float32))
    inputs = ["--input", f"x={tmp_path / 'x.npy'}", "--input", f"y={tmp_path / 'y.npy'}"]
    assert main(["benchmark", str(artifact), "--output", "text", *inputs, *FAST]) == 0
    out = capsys.readouterr().out
    assert "1 threads, inputs x [1, 8], y [1, 4]" in out
    assert out.splitlines()[2].startswith("neo-local ")
    assert "neo-local / " not in out  # nothing compared


def test_compare_needs_the_source_model(compiled, capsys):
    assert main(["benchmark", str(compiled[0]), "--compare", "torch"]) == EXIT_USAGE
    assert "--compare and --model go together" in capsys.readouterr().err


def test_a_source_model_the_engine_cannot_read(compiled, capsys):
    artifact, archive = compiled
    assert main(["benchmark", str(artifact), "--compare", "tflite", "--model", str(archive), *FAST]) == EXIT_JOB_FAILED
    assert "mm.tar.gz must hold exactly one .tflite file for tflite; found: none" in capsys.readouterr().err
