"""A real network through the CLI, as a user runs it: create --wait, describe, run."""

import json

import numpy as np

from example_archives import built, check_artifact
from test_cli_process import ROLE, cli


def test_mobilenet_torchscript_through_the_cli(tmp_path, record_property):
    example = built("mobilenet_like", "torchscript")
    shapes = json.loads(example.data_input_config)
    list_form = json.dumps([shape for shape in shapes.values()])  # [[1, 3, 64, 64]]: inputs input0..N
    created = cli(
        "create-compilation-job", "--compilation-job-name", "mobilenet-c4", "--role-arn", ROLE,
        "--input-config", json.dumps({"S3Uri": f"file://{example.archive}", "Framework": "PYTORCH",
                                      "DataInputConfig": list_form}),
        "--output-config", f"S3OutputLocation=file://{tmp_path / 'out'},TargetDevice=ml_c4",
        "--stopping-condition", "MaxRuntimeInSeconds=900", "--wait", timeout=600,
    )
    assert created.returncode == 0, created.stderr
    job = json.loads(created.stdout)
    assert job["CompilationJobStatus"] == "COMPLETED"
    assert "Verification passed" in created.stderr
    artifact = tmp_path / "out" / "mobilenet_like-ml_c4.tar.gz"
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"file://{artifact}"
    assert len(job["ModelDigests"]["ArtifactDigest"]) == 64
    check_artifact(artifact, example, tmp_path / "check", record_property)

    x = example.load_inputs()["input0"]
    np.save(tmp_path / "x.npy", x)
    ran = cli("run", str(artifact), "--input", f"input0={tmp_path / 'x.npy'}", "--output-dir", str(tmp_path / "o"))
    assert ran.returncode == 0, ran.stderr
    saved = sorted((tmp_path / "o").glob("*.npy"))
    assert len(saved) == 1
    np.testing.assert_allclose(np.load(saved[0]), example.load_outputs()[0], rtol=1e-4, atol=1e-5)
