"""Fixtures shared by the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def matmul_artifact(tmp_path_factory) -> tuple[Path, Path]:
    """(artifact, the archive it was compiled from): x [1,8] @ W + y [1,4], for ml_c4 (AVX2);
    compiled once for the benchmark and RPC tests."""
    from models import make_archive
    from onnx_graphs import matmul_add_model, save

    from neo_local import compile as neo_compile

    tmp = tmp_path_factory.mktemp("matmul-artifact")
    archive = make_archive([save(matmul_add_model(), tmp / "mm.onnx")], tmp / "mm.tar.gz")
    uri = neo_compile(
        InputConfig={"S3Uri": str(archive), "Framework": "ONNX"},
        OutputConfig={"S3OutputLocation": str(tmp / "out"), "TargetDevice": "ml_c4"},
    )
    return Path(uri), archive
