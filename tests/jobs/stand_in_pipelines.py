"""Stand-ins for neo_local.pipeline.run_compilation, run by real worker processes.

The worker loads one when NEO_LOCAL_PIPELINE=stand_in_pipelines:<name> and this directory is on
PYTHONPATH (see ``use``). They let the job machinery (supervisor, worker, store, signals) be
tested with exact timing; test_lifecycle.py runs the same paths through the real compiler.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from neo_local import storage
from neo_local.api.errors import client_error
from neo_local.pipeline import CompilationResult

HERE = Path(__file__).resolve().parent


def use(monkeypatch, name: str) -> None:
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    monkeypatch.setenv("NEO_LOCAL_PIPELINE", f"stand_in_pipelines:{name}")


def completes(request, workdir: Path, progress) -> CompilationResult:
    progress("stand-in: compiling")
    artifact = workdir / f"model-{request.output_config.target_name}.tar.gz"
    artifact.write_bytes(b"compiled " + request.job_name.encode())
    uri = storage.upload(artifact, request.output_config.s3_output_location,
                         kms_key_id=request.output_config.kms_key_id)
    return CompilationResult(
        artifact_uri=uri,
        artifact_digest=hashlib.blake2b(artifact.read_bytes()).hexdigest(),
        derived_information={"DerivedDataInputConfig": '{"data": [1, 4]}'},
        messages=("stand-in: verified nothing",),
    )


def fails(request, workdir: Path, progress) -> CompilationResult:
    raise client_error("InputConfiguration", "stand-in failure")


def raises(request, workdir: Path, progress) -> CompilationResult:
    (workdir / "partial.bin").write_bytes(b"x")
    raise RuntimeError("the stand-in broke\nat its second line")


def exits(request, workdir: Path, progress) -> CompilationResult:
    progress("stand-in: exiting with status 3")
    os._exit(3)


def sleeps(request, workdir: Path, progress) -> CompilationResult:
    (workdir / "partial.bin").write_bytes(b"x")
    progress("stand-in: sleeping")
    time.sleep(120)
    raise AssertionError("the stand-in was not stopped")
