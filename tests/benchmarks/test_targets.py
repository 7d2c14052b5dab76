"""benchmarks.targets: one job per TargetDevice, its time and outcome recorded (no timing asserted)."""

from pathlib import Path

from benchmarks.targets import compile_for, table
from models.build import build_example


def test_compile_time_rows_for_an_artifact_and_a_refusal(tmp_path: Path):
    example = build_example("two_input_net", "torchscript", tmp_path / "model")
    built = compile_for("ml_c4", example, tmp_path / "out")
    refused = compile_for("ml_inf1", example, tmp_path / "out")
    assert built["outcome"] == "artifact" and built["verification"] == "passed", built
    assert built["artifact_bytes"] > 0 and built["seconds"] > 0
    assert refused["outcome"] == "failed" and "ClientError" in refused["reason"] and "Neuron" in refused["reason"]
    lines = table([built, refused]).splitlines()
    assert lines[2].startswith("ml_c4 ") and "passed" in lines[2]
    assert lines[3].startswith("ml_inf1 ") and "failed" in lines[3]
