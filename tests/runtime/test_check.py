"""python -m neo_local.runtime.check: runs an artifact in a fresh process with the TVM runtime
alone, as on a device."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from neo_local import compile as neo_compile
from models import make_archive
from onnx_graphs import matmul_add_model, save


def _imported_modules(importtime_log: str) -> set[str]:
    return {line.rsplit("|", 1)[-1].strip() for line in importtime_log.splitlines() if line.startswith("import time:")}


def test_runs_the_artifact_without_importing_torch(tmp_path):
    """tvm_ffi imports torch whenever it is installed, which cost ResNet-50's verification 3 of
    its 4.7 s; the check needs none of it."""
    archive = make_archive([save(matmul_add_model(), tmp_path / "mm.onnx")], tmp_path / "mm.tar.gz")
    artifact = neo_compile(
        InputConfig={"S3Uri": str(archive), "Framework": "ONNX"},
        OutputConfig={"S3OutputLocation": str(tmp_path / "out"), "TargetDevice": "ml_c4"},
    )
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((1, 8)).astype(np.float32), rng.standard_normal((1, 4)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x, y=y)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "neo_local.runtime.check", artifact, str(tmp_path / "in.npz"),
         str(tmp_path / "out.npz")],
        capture_output=True, text=True, check=True,
    )
    modules = _imported_modules(proc.stderr)  # blocked imports are listed too; torch._C loads with torch alone
    assert "tvm" in modules and "torch._C" not in modules
    assert "botocore" not in modules  # neo_local's API layer is not the runtime's
    w = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)  # matmul_add_model's weights
    with np.load(tmp_path / "out.npz") as out:
        np.testing.assert_allclose(out["arr_0"], x @ w + y, rtol=1e-5, atol=1e-5)
