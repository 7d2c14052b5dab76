"""The API operations as boto3's sagemaker client would call them: real store, real processes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import botocore.session
import pytest

from neo_local.api import service
from neo_local.api.errors import ResourceInUse, ResourceNotFound, ValidationException
from neo_local.jobs import processes
from neo_local.jobs.config import JobPaths
from neo_local.jobs.states import Status
from neo_local.jobs.store import JobRecord, JobStore, new_job_id

JOBS_TESTS = Path(__file__).resolve().parents[1] / "jobs"
ROLE = "arn:aws:iam::123456789012:role/neo"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
MODEL = botocore.session.get_session().get_service_model("sagemaker")


@pytest.fixture(autouse=True)
def stand_in(monkeypatch):
    """Jobs created here run a stand-in pipeline (the real one: tests/jobs/test_lifecycle.py)."""
    monkeypatch.setenv("PYTHONPATH", str(JOBS_TESTS))
    monkeypatch.setenv("NEO_LOCAL_PIPELINE", "stand_in_pipelines:completes")


def req(name: str, src: str = "/nowhere/model.tar.gz", out: str = "/nowhere/out", **extra) -> dict:
    return {
        "CompilationJobName": name,
        "RoleArn": ROLE,
        "InputConfig": {"S3Uri": src, "Framework": "ONNX", "DataInputConfig": '{"data": [1, 4]}'},
        "OutputConfig": {"S3OutputLocation": out, "TargetDevice": "ml_c5"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        **extra,
    }


def put(name: str, status: Status, minutes: int = 0, device: str | None = "ml_c5", **kw) -> JobRecord:
    """A job written straight into the store, with chosen times."""
    r = req(name)
    if device is None:
        r["OutputConfig"] = {"S3OutputLocation": "/o", "TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"}}
    t = T0 + timedelta(minutes=minutes)
    rec = JobRecord(name=name, job_id=new_job_id(), arn=service.job_arn(name, ROLE), status=status,
                    request=r, creation_time=t, last_modified_time=t + timedelta(seconds=30), **kw)
    JobStore().insert(rec)
    return rec


def wait(name: str) -> dict:
    import time

    for _ in range(300):
        job = service.describe_compilation_job(CompilationJobName=name)
        if job["CompilationJobStatus"] in ("COMPLETED", "FAILED", "STOPPED"):
            return job
        time.sleep(0.1)
    raise AssertionError(job)


def dead_pid() -> tuple[int, float]:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = processes.create_time(proc.pid)
    proc.wait()
    return proc.pid, started


# -- create / describe ---------------------------------------------------------------------

def test_create_and_describe(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    (tmp_path / "model.tar.gz").write_bytes(b"m")
    vpc = {"SecurityGroupIds": ["sg-0123"], "Subnets": ["subnet-0123"]}
    answer = service.create_compilation_job(**req(
        "full", "model.tar.gz", "file://out", VpcConfig=vpc, Tags=[{"Key": "team", "Value": "ml"}],
    ))
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:compilation-job/full"
    assert answer == {"CompilationJobArn": arn}
    job = wait("full")
    expected_keys = ["CompilationJobName", "CompilationJobArn", "CompilationJobStatus", "CompilationStartTime",
                     "CompilationEndTime", "StoppingCondition", "CreationTime", "LastModifiedTime",
                     "ModelArtifacts", "ModelDigests", "RoleArn", "InputConfig", "OutputConfig", "VpcConfig",
                     "DerivedInformation"]
    assert list(job) == expected_keys
    assert set(job) <= set(MODEL.operation_model("DescribeCompilationJob").output_shape.members)
    assert job["CompilationJobStatus"] == "COMPLETED"
    assert job["InputConfig"]["S3Uri"] == str(tmp_path / "model.tar.gz")  # made absolute at create
    assert job["OutputConfig"] == {"S3OutputLocation": f"file://{tmp_path}/out", "TargetDevice": "ml_c5"}
    assert job["ModelArtifacts"] == {"S3ModelArtifacts": f"file://{tmp_path}/out/model-ml_c5.tar.gz"}
    assert job["VpcConfig"] == vpc and job["StoppingCondition"] == {"MaxRuntimeInSeconds": 60}
    for key in ("CreationTime", "LastModifiedTime", "CompilationStartTime", "CompilationEndTime"):
        assert isinstance(job[key], datetime) and job[key].tzinfo is not None
    assert JobStore().get("full").request["Tags"] == [{"Key": "team", "Value": "ml"}]


def test_kms_key_is_stored_and_returned(tmp_path):
    r = req("kms", str(tmp_path / "m.tar.gz"), str(tmp_path / "out"))
    r["OutputConfig"]["KmsKeyId"] = "alias/neo"
    (tmp_path / "m.tar.gz").write_bytes(b"m")
    service.create_compilation_job(**r)
    job = wait("kms")
    assert job["OutputConfig"]["KmsKeyId"] == "alias/neo"


def test_account_comes_from_the_role():
    assert service.job_arn("j", "arn:aws-cn:iam::210987654321:role/x").startswith(
        "arn:aws-cn:sagemaker:") and ":210987654321:compilation-job/j" in service.job_arn("j", "arn:aws-cn:iam::210987654321:role/x")
    assert service.job_arn("j", "nonsense").split(":")[4] == "000000000000"


def test_duplicate_name_is_resource_in_use():
    put("dup", Status.COMPLETED)
    with pytest.raises(ResourceInUse) as e:
        service.create_compilation_job(**req("dup"))
    assert e.value.response["Error"]["Code"] == "ResourceInUse"
    assert "a compilation job with this name already exists" in e.value.response["Error"]["Message"]


def test_invalid_request_is_a_validation_exception():
    with pytest.raises(ValidationException):
        service.create_compilation_job(**req("bad_name!"))
    assert JobStore().get("bad_name!") is None


@pytest.mark.parametrize("operation", ["describe_compilation_job", "stop_compilation_job", "delete_compilation_job"])
def test_unknown_job_is_resource_not_found(operation):
    with pytest.raises(ResourceNotFound) as e:
        getattr(service, operation)(CompilationJobName="nope")
    assert e.value.response["Error"] == {"Code": "ResourceNotFound",
                                         "Message": "Could not find compilation job with name nope"}
    with pytest.raises(ResourceNotFound):
        service.read_job_log("nope")


def test_describe_failed_and_completed_shapes():
    put("f", Status.FAILED, failure_reason="ClientError: InputConfiguration: x", end_time=T0)
    put("c", Status.COMPLETED, artifact_uri="/o/m.tar.gz", artifact_digest="ab", start_time=T0, end_time=T0)
    f = service.describe_compilation_job(CompilationJobName="f")
    assert f["FailureReason"] == "ClientError: InputConfiguration: x"
    assert "ModelArtifacts" not in f and "DerivedInformation" not in f and "CompilationStartTime" not in f
    c = service.describe_compilation_job(CompilationJobName="c")
    assert "FailureReason" not in c
    assert c["ModelArtifacts"] == {"S3ModelArtifacts": "/o/m.tar.gz"} and c["ModelDigests"] == {"ArtifactDigest": "ab"}
    assert c["CreationTime"] == T0


# -- never INPROGRESS forever --------------------------------------------------------------

def test_job_with_dead_supervisor_fails():
    pid, started = dead_pid()
    put("lost", Status.INPROGRESS, supervisor_pid=pid, supervisor_started=started)
    job = service.describe_compilation_job(CompilationJobName="lost")
    assert job["CompilationJobStatus"] == "FAILED"
    assert job["FailureReason"] == (
        f"InternalError: The job's supervisor process (pid {pid}) is gone, so the job was ended (was it "
        "killed, or the machine restarted?). See the job log "
        f"{JobStore().get('lost').paths.log} and run the job again."
    )
    assert "CompilationEndTime" in job


def test_stopping_job_with_dead_supervisor_is_stopped():
    pid, started = dead_pid()
    put("lost", Status.STOPPING, supervisor_pid=pid, supervisor_started=started, stop_requested=True)
    summaries = service.list_compilation_jobs()["CompilationJobSummaries"]  # list reconciles too
    assert [s["CompilationJobStatus"] for s in summaries] == ["STOPPED"]


def test_reused_pid_is_not_the_supervisor():
    me = os.getpid()
    put("reused", Status.INPROGRESS, supervisor_pid=me, supervisor_started=processes.create_time(me) - 1000)
    put("alive", Status.INPROGRESS, supervisor_pid=me, supervisor_started=processes.create_time(me))
    assert service.describe_compilation_job(CompilationJobName="reused")["CompilationJobStatus"] == "FAILED"
    assert service.describe_compilation_job(CompilationJobName="alive")["CompilationJobStatus"] == "INPROGRESS"


def test_job_whose_supervisor_never_started():
    put("never", Status.STARTING)  # created long ago (T0), no supervisor recorded
    job = service.describe_compilation_job(CompilationJobName="never")
    assert job["FailureReason"].startswith("InternalError: The job's supervisor process never started")


# -- stop / delete -------------------------------------------------------------------------

@pytest.mark.parametrize("status", [Status.COMPLETED, Status.FAILED, Status.STOPPED, Status.STOPPING])
def test_only_starting_or_inprogress_jobs_stop(status):
    me = os.getpid()
    put("j", status, supervisor_pid=me, supervisor_started=processes.create_time(me))
    with pytest.raises(ValidationException) as e:
        service.stop_compilation_job(CompilationJobName="j")
    assert e.value.response["Error"]["Message"] == (
        f"Compilation job j is in status {status.value} and cannot be stopped; only jobs in status "
        "INPROGRESS or STARTING can be stopped."
    )


def test_stop_marks_stopping():
    me = os.getpid()  # this test process stands in for a live supervisor
    put("j", Status.INPROGRESS, supervisor_pid=me, supervisor_started=processes.create_time(me))
    assert service.stop_compilation_job(CompilationJobName="j") == {}
    rec = JobStore().get("j")
    assert rec.status == Status.STOPPING and rec.stop_requested


@pytest.mark.parametrize("status", [Status.STARTING, Status.INPROGRESS, Status.STOPPING])
def test_running_jobs_cannot_be_deleted(status):
    me = os.getpid()
    put("j", status, supervisor_pid=me, supervisor_started=processes.create_time(me))
    with pytest.raises(ValidationException, match=f"Compilation job j is in status {status.value} and cannot be deleted"):
        service.delete_compilation_job(CompilationJobName="j")
    assert JobStore().get("j") is not None


def test_delete_removes_the_job_and_its_files(tmp_path):
    (tmp_path / "m.tar.gz").write_bytes(b"m")
    service.create_compilation_job(**req("gone", str(tmp_path / "m.tar.gz"), str(tmp_path / "out")))
    wait("gone")
    assert JobPaths.of("gone").root.exists()
    assert service.delete_compilation_job(CompilationJobName="gone") == {}
    assert not JobPaths.of("gone").root.exists()
    with pytest.raises(ResourceNotFound):
        service.describe_compilation_job(CompilationJobName="gone")
    assert (tmp_path / "out" / "model-ml_c5.tar.gz").exists()  # artifacts stay, as in SageMaker
    service.create_compilation_job(**req("gone", str(tmp_path / "m.tar.gz"), str(tmp_path / "out")))
    assert wait("gone")["CompilationJobStatus"] == "COMPLETED"


# -- list ----------------------------------------------------------------------------------

@pytest.fixture
def listed():
    put("resnet-c5", Status.COMPLETED, 0)
    put("mobilenet-m5", Status.FAILED, 1)
    put("resnet-m4", Status.COMPLETED, 2)
    put("bert-linux", Status.STOPPED, 3, device=None)
    put("resnet-lambda", Status.FAILED, 4)


def names(**kw) -> list[str]:
    return [s["CompilationJobName"] for s in service.list_compilation_jobs(**kw)["CompilationJobSummaries"]]


def test_list_sorts_and_filters(listed):
    assert names() == ["resnet-c5", "mobilenet-m5", "resnet-m4", "bert-linux", "resnet-lambda"]
    assert names(SortOrder="Descending") == ["resnet-lambda", "bert-linux", "resnet-m4", "mobilenet-m5", "resnet-c5"]
    assert names(SortBy="Name") == ["bert-linux", "mobilenet-m5", "resnet-c5", "resnet-lambda", "resnet-m4"]
    assert names(SortBy="Status", SortOrder="Descending") == ["bert-linux", "resnet-lambda", "mobilenet-m5", "resnet-m4", "resnet-c5"]
    assert names(NameContains="resnet") == ["resnet-c5", "resnet-m4", "resnet-lambda"]
    assert names(StatusEquals="FAILED") == ["mobilenet-m5", "resnet-lambda"]
    assert names(CreationTimeAfter=T0, CreationTimeBefore=T0 + timedelta(minutes=3)) == ["mobilenet-m5", "resnet-m4"]
    assert names(CreationTimeAfter="2024-05-01T12:03:30Z") == ["resnet-lambda"]
    assert names(LastModifiedTimeBefore=T0 + timedelta(minutes=1)) == ["resnet-c5"]
    assert names(LastModifiedTimeAfter=T0 + timedelta(minutes=4)) == ["resnet-lambda"]
    assert names(NameContains="resnet", StatusEquals="COMPLETED", SortOrder="Descending") == ["resnet-m4", "resnet-c5"]


def test_list_summary_shape(listed):
    summaries = {s["CompilationJobName"]: s for s in service.list_compilation_jobs()["CompilationJobSummaries"]}
    allowed = set(MODEL.shape_for("CompilationJobSummary").members)
    assert all(set(s) <= allowed for s in summaries.values())
    assert summaries["resnet-c5"]["CompilationTargetDevice"] == "ml_c5"
    linux = summaries["bert-linux"]
    assert "CompilationTargetDevice" not in linux
    assert (linux["CompilationTargetPlatformOs"], linux["CompilationTargetPlatformArch"]) == ("LINUX", "X86_64")
    assert linux["CreationTime"] == T0 + timedelta(minutes=3) and linux["CreationTime"].tzinfo is not None
    assert linux["CompilationJobArn"] == "arn:aws:sagemaker:us-east-1:123456789012:compilation-job/bert-linux"


def test_list_pages_with_next_token(listed):
    seen, token, pages = [], None, 0
    while True:
        kw = {"MaxResults": 2, "SortBy": "Name", "NameContains": "e"}
        answer = service.list_compilation_jobs(**kw, **({"NextToken": token} if token else {}))
        seen += [s["CompilationJobName"] for s in answer["CompilationJobSummaries"]]
        pages += 1
        token = answer.get("NextToken")
        if not token:
            break
    assert pages == 3
    assert seen == ["bert-linux", "mobilenet-m5", "resnet-c5", "resnet-lambda", "resnet-m4"]
    assert "NextToken" not in service.list_compilation_jobs(MaxResults=5)


def test_list_default_page_is_ten():
    for i in range(12):
        put(f"j{i:02d}", Status.COMPLETED, i)
    first = service.list_compilation_jobs()
    assert len(first["CompilationJobSummaries"]) == 10
    rest = service.list_compilation_jobs(NextToken=first["NextToken"])
    assert [s["CompilationJobName"] for s in rest["CompilationJobSummaries"]] == ["j10", "j11"]
    assert "NextToken" not in rest


@pytest.mark.parametrize("token", ["garbage!", base64.urlsafe_b64encode(b'{"offset": -1, "query": "x"}').decode(),
                                   base64.urlsafe_b64encode(b"[1]").decode()])
def test_list_rejects_bad_tokens(listed, token):
    with pytest.raises(ValidationException, match="Invalid NextToken"):
        service.list_compilation_jobs(NextToken=token)


def test_list_rejects_a_token_from_other_filters(listed):
    token = service.list_compilation_jobs(MaxResults=1, SortBy="Name")["NextToken"]
    assert json.loads(base64.urlsafe_b64decode(token))["offset"] == 1
    with pytest.raises(ValidationException, match="returned for different filters or sort order"):
        service.list_compilation_jobs(MaxResults=1, SortBy="Status", NextToken=token)


@pytest.mark.parametrize("value", [0, 101])
def test_list_max_results_bounds(value):
    with pytest.raises(ValidationException):
        service.list_compilation_jobs(MaxResults=value)
