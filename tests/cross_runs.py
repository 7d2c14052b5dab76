"""Shared check of the cross-target runners (wine, qemu-arm): a broken library fails fast, with the
loader's own reason in the job's failure."""

import shutil
import time
from pathlib import Path

import pytest

from example_archives import built
from neo_local.api.errors import JobFailure
from neo_local.verify import compare, run_artifact


def corrupt_library_reason(folder: Path, library: str, header: bytes, runner, tmp_path: Path) -> str:
    """Run a copy of the artifact in ``folder`` whose ``library`` is ``header`` and zeros; the reason."""
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / library).write_bytes(header + b"\0" * 1000)
    start = time.perf_counter()
    with pytest.raises(JobFailure) as err:
        run_artifact(broken, built("resnet_like", "onnx").load_inputs(), tmp_path / "run", runner)
    assert time.perf_counter() - start < 60
    return err.value.reason


def rerun_error_vs_torch(artifact: Path, runner, tmp_path: Path, label: str) -> float:
    """Run the resnet_like artifact again through ``runner`` and compare with torch's saved outputs
    (the job compared with onnxruntime); the largest relative error."""
    example = built("resnet_like", "onnx")
    start = time.perf_counter()
    actual = run_artifact(artifact, example.load_inputs(), tmp_path / "run", runner)
    seconds = time.perf_counter() - start
    max_abs, max_rel = compare(example.load_outputs(), actual)
    print(f"{label} vs torch: max abs error {max_abs:.3g}, max rel error {max_rel:.3g}, {seconds:.1f} s")
    return max_rel
