"""Supervisor and worker processes, with stand-in pipelines for exact timing.

Everything here is real: detached supervisor processes, worker process groups, signals, the
SQLite store. Only run_compilation is replaced (tests/jobs/stand_in_pipelines.py).
"""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

import stand_in_pipelines
from jobs_helpers import request, wait_for_status, wait_for_worker
from neo_local.api.service import (
    create_compilation_job,
    describe_compilation_job,
    read_job_log,
    stop_compilation_job,
)
from neo_local.jobs import supervisor
from neo_local.jobs.states import Status
from neo_local.jobs.store import JobRecord, JobStore, new_job_id, utcnow


@pytest.fixture
def paths(tmp_path):
    src = tmp_path / "model.tar.gz"
    src.write_bytes(b"not really a model")
    return str(src), str(tmp_path / "out")


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_completed_job(monkeypatch, paths, tmp_path):
    stand_in_pipelines.use(monkeypatch, "completes")
    create_compilation_job(**request("ok", *paths))
    job = wait_for_status("ok")
    assert job["CompilationJobStatus"] == "COMPLETED", job.get("FailureReason")
    artifact = tmp_path / "out" / "model-ml_c5.tar.gz"
    assert job["ModelArtifacts"] == {"S3ModelArtifacts": str(artifact)}
    assert artifact.read_bytes() == b"compiled ok"
    assert len(job["ModelDigests"]["ArtifactDigest"]) == 128
    assert job["DerivedInformation"] == {"DerivedDataInputConfig": '{"data": [1, 4]}'}
    assert "FailureReason" not in job
    assert job["CreationTime"] <= job["CompilationStartTime"] <= job["CompilationEndTime"]
    assert job["LastModifiedTime"] == job["CompilationEndTime"] or job["LastModifiedTime"] >= job["CompilationEndTime"]
    log, offset = read_job_log("ok")
    assert "stand-in: compiling" in log and "Job COMPLETED" in log
    assert JobStore().get("ok").messages == ("stand-in: verified nothing",)
    assert read_job_log("ok", offset) == ("", offset)
    assert not JobStore().get("ok").paths.scratch.exists()


def test_pipeline_failure_is_the_failure_reason(monkeypatch, paths):
    stand_in_pipelines.use(monkeypatch, "fails")
    create_compilation_job(**request("bad", *paths))
    job = wait_for_status("bad")
    assert job["CompilationJobStatus"] == "FAILED"
    assert job["FailureReason"] == "ClientError: InputConfiguration: stand-in failure"
    assert "ModelArtifacts" not in job


def test_unexpected_exception_is_an_internal_error(monkeypatch, paths):
    stand_in_pipelines.use(monkeypatch, "raises")
    create_compilation_job(**request("boom", *paths))
    job = wait_for_status("boom")
    log = JobStore().get("boom").paths.log
    assert job["FailureReason"] == (
        f"InternalError: RuntimeError: the stand-in broke at its second line (the job log has the traceback: {log})"
    )
    text = read_job_log("boom")[0]
    assert "Traceback (most recent call last)" in text and "stand_in_pipelines.py" in text
    assert "Traceback" not in job["FailureReason"]
    assert not JobStore().get("boom").paths.scratch.exists()


def test_worker_exit_without_result(monkeypatch, paths):
    stand_in_pipelines.use(monkeypatch, "exits")
    create_compilation_job(**request("quits", *paths))
    job = wait_for_status("quits")
    assert job["FailureReason"] == (
        "InternalError: The compilation worker ended unexpectedly (exit status 3). "
        f"See the job log {JobStore().get('quits').paths.log}."
    )


def test_stop_running_job(monkeypatch, paths):
    stand_in_pipelines.use(monkeypatch, "sleeps")
    create_compilation_job(**request("halt", *paths))
    rec = wait_for_worker("halt")
    wait_for_status("halt", {"INPROGRESS"})
    while "stand-in: sleeping" not in read_job_log("halt")[0]:
        time.sleep(0.05)
    assert stop_compilation_job(CompilationJobName="halt") == {}
    assert describe_compilation_job(CompilationJobName="halt")["CompilationJobStatus"] in ("STOPPING", "STOPPED")
    job = wait_for_status("halt", timeout=20)
    assert job["CompilationJobStatus"] == "STOPPED"
    assert "FailureReason" not in job and "CompilationEndTime" in job
    assert _gone(rec.worker_pid) and _gone(rec.supervisor_pid)
    assert not JobStore().get("halt").paths.scratch.exists()  # the SIGTERM handler cleaned up


def test_max_runtime(monkeypatch, paths):
    stand_in_pipelines.use(monkeypatch, "sleeps")
    create_compilation_job(**request("slow", *paths, max_runtime=1))
    rec = wait_for_worker("slow")
    job = wait_for_status("slow", timeout=20)
    assert job["CompilationJobStatus"] == "FAILED"
    assert job["FailureReason"] == (
        "ClientError: TimeOut: The compilation did not finish within "
        "StoppingCondition.MaxRuntimeInSeconds=1 seconds and was stopped. Raise "
        "MaxRuntimeInSeconds and run the job again."
    )
    elapsed = (job["CompilationEndTime"] - job["CompilationStartTime"]).total_seconds()
    assert 1.0 <= elapsed < 5.0
    assert _gone(rec.worker_pid)
    assert not JobStore().get("slow").paths.scratch.exists()  # the supervisor cleaned up after SIGKILL


def test_worker_killed(monkeypatch, paths):
    stand_in_pipelines.use(monkeypatch, "sleeps")
    create_compilation_job(**request("oom", *paths))
    rec = wait_for_worker("oom")
    os.kill(rec.worker_pid, signal.SIGKILL)
    job = wait_for_status("oom", timeout=20)
    assert job["FailureReason"] == (
        "InternalError: The compilation worker ended unexpectedly (signal 9 SIGKILL; the system "
        f"may have run out of memory). See the job log {JobStore().get('oom').paths.log}."
    )


def test_supervisor_killed(monkeypatch, paths):
    stand_in_pipelines.use(monkeypatch, "sleeps")
    create_compilation_job(**request("orphan", *paths))
    rec = wait_for_worker("orphan")
    os.kill(rec.supervisor_pid, signal.SIGKILL)
    assert _gone(rec.supervisor_pid)
    job = describe_compilation_job(CompilationJobName="orphan")
    assert job["CompilationJobStatus"] == "FAILED"
    assert job["FailureReason"].startswith(
        f"InternalError: The job's supervisor process (pid {rec.supervisor_pid}) is gone, so the job was ended"
    )
    assert _gone(rec.worker_pid)  # describe killed the orphaned worker


def test_supervisor_terminated(monkeypatch, paths):
    stand_in_pipelines.use(monkeypatch, "sleeps")
    create_compilation_job(**request("term", *paths))
    rec = wait_for_worker("term")
    os.kill(rec.supervisor_pid, signal.SIGTERM)
    job = wait_for_status("term", timeout=20)
    assert job["FailureReason"].startswith(
        "InternalError: The job's supervisor process was terminated (SIGTERM) and ended the job."
    )
    assert _gone(rec.worker_pid)


def test_stop_before_the_supervisor_runs():
    store = JobStore()
    now = utcnow()
    store.insert(JobRecord(name="early", job_id=new_job_id(), arn="arn", status=Status.STARTING,
                           request=request("early", "/m.tar.gz", "/out"), creation_time=now,
                           last_modified_time=now))
    store.transition("early", Status.STOPPING, stop_requested=True)
    assert supervisor.main(["early"]) == 0
    rec = store.get("early")
    assert rec.status == Status.STOPPED and rec.worker_pid is None and rec.end_time is not None


def test_model_package_jobs_fail_clearly():
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/resnet/1"
    req = request("pkg", "/m.tar.gz", "/out")
    del req["InputConfig"]
    create_compilation_job(**req, ModelPackageVersionArn=arn)
    job = wait_for_status("pkg")
    assert job["ModelPackageVersionArn"] == arn and "InputConfig" not in job
    assert job["FailureReason"] == (
        f"ClientError: InputConfiguration: ModelPackageVersionArn {arn} cannot be used: neo-local "
        "has no SageMaker model registry to read the model package from. Give the model archive in "
        "InputConfig instead (S3Uri, Framework, DataInputConfig) and run the job again."
    )


def test_a_deleted_jobs_worker_spares_its_successors_scratch_and_log(monkeypatch, paths):
    """A job deleted and created again under its name while the first job's worker still runs:
    each job id has its own scratch directory and log; the first worker removes only its own
    scratch directory, and its lines (its log deleted with it) go nowhere."""
    from neo_local.jobs import worker
    from neo_local.jobs.joblog import JobLog

    stand_in_pipelines.use(monkeypatch, "completes")
    first = JobRecord(name="again", job_id=new_job_id(), arn="arn:first", status=Status.INPROGRESS,
                      request=request("again", *paths), creation_time=utcnow(), last_modified_time=utcnow())
    second = JobRecord(**{**first.__dict__, "job_id": new_job_id()})
    store = JobStore()
    store.insert(second)  # the successor is the job on record; the first one was deleted
    second.paths.scratch.mkdir(parents=True)
    (second.paths.scratch / "in-use").write_bytes(b"the successor's")
    JobLog.start(second.paths.log, "the successor's line")
    assert worker.run(store, first) == 0
    assert (second.paths.scratch / "in-use").read_bytes() == b"the successor's"
    assert not first.paths.scratch.exists()
    assert second.paths.log.read_text().split(" ", 1)[1] == "the successor's line\n"
    assert not first.paths.log.exists()
    assert store.get("again").status == Status.INPROGRESS  # the first one's outcome is not the successor's
