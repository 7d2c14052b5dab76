"""Whole jobs through the real compiler: a one-operator ONNX model, real processes, real S3 (moto).

The stop / timeout / crash tests rely on a real job taking more than a second or two (the
worker imports TVM); test_completed_job needs the whole pipeline to work.
"""

from __future__ import annotations

import io
import os
import signal
import tarfile
import time
import uuid

import boto3
import onnx
import pytest
from onnx import TensorProto, helper

from jobs_helpers import request, wait_for_status, wait_for_worker
from neo_local.api.service import create_compilation_job, describe_compilation_job, read_job_log, stop_compilation_job
from neo_local.jobs.store import JobStore


def relu_archive() -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["data"], ["out"])], "relu",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    data = model.SerializeToString()
    onnx.checker.check_model(model)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("relu.onnx")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def local_model(tmp_path):
    src = tmp_path / "relu.tar.gz"
    src.write_bytes(relu_archive())
    return str(src), str(tmp_path / "out")


def test_completed_job_with_s3_in_and_out(s3_endpoint, tmp_path):
    s3 = boto3.client("s3")
    bucket = f"neo-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="models/relu.tar.gz", Body=relu_archive())
    create_compilation_job(**request("relu-c5", f"s3://{bucket}/models/relu.tar.gz", f"s3://{bucket}/compiled/",
                                     max_runtime=600))
    job = wait_for_status("relu-c5", timeout=600)
    assert job["CompilationJobStatus"] == "COMPLETED", (job.get("FailureReason"), read_job_log("relu-c5")[0])
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == f"s3://{bucket}/compiled/relu-ml_c5.tar.gz"
    body = s3.get_object(Bucket=bucket, Key="compiled/relu-ml_c5.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert {"compiled.so", "compiled.meta"} <= set(tar.getnames())
    assert job["ModelDigests"]["ArtifactDigest"]
    assert not JobStore().get("relu-c5").paths.scratch.exists()


def test_stop_during_run(local_model):
    create_compilation_job(**request("relu-stop", *local_model))
    rec = wait_for_worker("relu-stop")
    stop_compilation_job(CompilationJobName="relu-stop")
    job = wait_for_status("relu-stop", timeout=30)
    assert job["CompilationJobStatus"] == "STOPPED" and "FailureReason" not in job
    assert "Stop requested" in read_job_log("relu-stop")[0]
    with pytest.raises(ProcessLookupError):
        os.kill(rec.worker_pid, 0)


def test_max_runtime_exceeded(local_model):
    create_compilation_job(**request("relu-slow", *local_model, max_runtime=1))
    job = wait_for_status("relu-slow", timeout=30)
    assert job["CompilationJobStatus"] == "FAILED"
    assert job["FailureReason"].startswith(
        "ClientError: TimeOut: The compilation did not finish within StoppingCondition.MaxRuntimeInSeconds=1 seconds"
    )


def test_worker_killed(local_model):
    create_compilation_job(**request("relu-kill", *local_model))
    rec = wait_for_worker("relu-kill")
    os.kill(rec.worker_pid, signal.SIGKILL)
    job = wait_for_status("relu-kill", timeout=30)
    assert job["FailureReason"].startswith(
        "InternalError: The compilation worker ended unexpectedly (signal 9 SIGKILL"
    )


def test_supervisor_killed(local_model):
    create_compilation_job(**request("relu-orphan", *local_model))
    rec = wait_for_worker("relu-orphan")
    os.kill(rec.supervisor_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (job := describe_compilation_job(CompilationJobName="relu-orphan"))["CompilationJobStatus"] != "FAILED":
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["FailureReason"].startswith("InternalError: The job's supervisor process")
