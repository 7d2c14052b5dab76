"""``neo-local run ARTIFACT --input name=file.npy``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neo_local.runtime
from neo_local.cli.main import main

REPO = Path(__file__).resolve().parents[2]


class FakeModel:
    """Stands in for DLRModel: two inputs, one output (x @ 1 + y)."""

    def __init__(self, path):
        self.path = path

    def get_input_names(self):
        return ["x", "y"]

    def get_output_names(self):
        return ["out"]

    def run(self, inputs):
        assert set(inputs) == {"x", "y"}
        return [inputs["x"].sum(axis=1, keepdims=True) + inputs["y"]]


@pytest.fixture
def fake_model(monkeypatch, tmp_path):
    monkeypatch.setattr(neo_local.runtime, "DLRModel", FakeModel)
    artifact = tmp_path / "model-ml_c5.tar.gz"
    artifact.write_bytes(b"not read by the fake")
    np.save(tmp_path / "x.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    np.save(tmp_path / "y.npy", np.ones((2, 1), np.float32))
    return tmp_path


def test_run_prints_summary_and_saves_outputs(fake_model, capsys):
    out_dir = fake_model / "outs"
    rc = main(["run", str(fake_model / "model-ml_c5.tar.gz"), "--input", f"x={fake_model / 'x.npy'}",
               "--input", f"y={fake_model / 'y.npy'}", "--output-dir", str(out_dir)])
    assert rc == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("out: shape=[2, 1] dtype=float32 min=4 max=13 mean=8.5 argmax=1 "
                                   "first=[4, 13]")
    np.testing.assert_array_equal(np.load(out_dir / "out.npy"), [[4.0], [13.0]])


def test_unknown_and_missing_inputs_list_the_model_inputs(fake_model, capsys):
    rc = main(["run", str(fake_model / "model-ml_c5.tar.gz"), "--input", f"z={fake_model / 'x.npy'}"])
    assert rc == 252
    err = capsys.readouterr().err
    assert "unknown input name(s): z; missing input(s): x, y. The model's inputs are: x, y" in err
    assert "Traceback" not in err


def test_bare_file_needs_a_single_input_model(fake_model, capsys):
    assert main(["run", str(fake_model / "model-ml_c5.tar.gz"), "--input", str(fake_model / "x.npy")]) == 252
    assert "give inputs as NAME=FILE.npy; the model's inputs are: x, y" in capsys.readouterr().err


def test_unreadable_input_file(fake_model, capsys):
    rc = main(["run", str(fake_model / "model-ml_c5.tar.gz"), "--input", "x=/no/such.npy",
               "--input", f"y={fake_model / 'y.npy'}"])
    assert rc == 252
    assert "cannot read /no/such.npy for input 'x'" in capsys.readouterr().err


def test_missing_artifact(capsys):
    assert main(["run", "/no/such/model.tar.gz", "--input", "x=a.npy"]) == 252
    assert "ARTIFACT /no/such/model.tar.gz does not exist" in capsys.readouterr().err


def test_artifact_that_is_not_one(tmp_path, capsys):
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"nope")
    assert main(["run", str(bogus), "--input", "x=a.npy"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"neo-local run: cannot load {bogus}: ")
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def real_artifact(tmp_path_factory):
    from models import make_archive
    from onnx_graphs import matmul_add_model, save

    from neo_local import compile as neo_compile

    tmp = tmp_path_factory.mktemp("cli-run")
    archive = make_archive([save(matmul_add_model(), tmp / "mm.onnx")], tmp / "mm.tar.gz")
    uri = neo_compile(
        InputConfig={"S3Uri": str(archive), "Framework": "ONNX"},
        OutputConfig={"S3OutputLocation": str(tmp / "out"), "TargetDevice": "ml_c4"},
    )
    return Path(uri)


def test_run_real_artifact_in_a_fresh_process(real_artifact, tmp_path):
    x = np.random.default_rng(1).standard_normal((1, 8)).astype(np.float32)
    y = np.ones((1, 4), np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    proc = subprocess.run(
        [sys.executable, "-m", "neo_local.cli", "run", str(real_artifact), "--input", f"x={tmp_path / 'x.npy'}",
         "--input", f"y={tmp_path / 'y.npy'}", "--output-dir", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=REPO, env=os.environ.copy(), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("out: shape=[1, 4] dtype=float32 ")
    w = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    np.testing.assert_allclose(np.load(tmp_path / "o" / "out.npy"), x @ w + y, rtol=1e-5, atol=1e-5)
