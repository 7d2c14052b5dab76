"""The API commands in-process, against a stand-in service: printing, skeletons, --wait, errors."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from neo_local.api import service, service_model
from neo_local.api.errors import ResourceNotFound
from neo_local.cli.main import main
from test_cli_request import ISSUE_ARGV, ISSUE_REQUEST

ARN = "arn:aws:sagemaker:us-east-1:123456789012:compilation-job/resnet-c5"
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def describe_answer(status: str, **extra) -> dict:
    return {
        "CompilationJobName": "resnet-c5", "CompilationJobArn": ARN, "CompilationJobStatus": status,
        "CreationTime": T0, "LastModifiedTime": T0, "RoleArn": ISSUE_REQUEST["RoleArn"],
        "InputConfig": ISSUE_REQUEST["InputConfig"], "OutputConfig": ISSUE_REQUEST["OutputConfig"],
        "StoppingCondition": ISSUE_REQUEST["StoppingCondition"],
        "ResponseMetadata": {"HTTPStatusCode": 200}, **extra,
    }


@pytest.fixture
def calls(monkeypatch):
    """Record what each service function receives; answers are set per test."""
    seen: list[tuple[str, dict]] = []

    def create(**req):
        seen.append(("create", req))
        return {"CompilationJobArn": ARN, "ResponseMetadata": {"HTTPStatusCode": 200}}

    monkeypatch.setattr(service, "create_compilation_job", create)
    return seen


def test_create_prints_the_arn_and_passes_the_request(calls, capsys):
    assert main(["create-compilation-job", *ISSUE_ARGV]) == 0
    out = capsys.readouterr().out
    assert out == json.dumps({"CompilationJobArn": ARN}, indent=4) + "\n"
    assert calls == [("create", ISSUE_REQUEST)]


def test_describe_json_has_iso_times_and_no_response_metadata(monkeypatch, capsys):
    monkeypatch.setattr(service, "describe_compilation_job", lambda **req: describe_answer("COMPLETED"))
    assert main(["describe-compilation-job", "--compilation-job-name", "resnet-c5"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["CreationTime"] == "2024-05-01T12:00:00+00:00"
    assert "ResponseMetadata" not in printed
    assert printed["CompilationJobStatus"] == "COMPLETED"


def test_query_and_text_output(monkeypatch, capsys):
    monkeypatch.setattr(service, "describe_compilation_job", lambda **req: describe_answer("COMPLETED"))
    assert main(["describe-compilation-job", "--compilation-job-name", "resnet-c5",
                 "--query", "CompilationJobStatus", "--output", "text"]) == 0
    assert capsys.readouterr().out == "COMPLETED\n"
    # global options also before the command, as in aws
    assert main(["--query", "OutputConfig.TargetDevice", "describe-compilation-job",
                 "--compilation-job-name", "resnet-c5"]) == 0
    assert capsys.readouterr().out == '"ml_c5"\n'


def test_table_output(monkeypatch, capsys):
    monkeypatch.setattr(service, "list_compilation_jobs", lambda **req: {"CompilationJobSummaries": [
        {"CompilationJobName": "resnet-c5", "CompilationJobStatus": "COMPLETED"}]})
    assert main(["list-compilation-jobs", "--output", "table"]) == 0
    out = capsys.readouterr().out
    assert "ListCompilationJobs" in out and "resnet-c5" in out and "COMPLETED" in out


def test_service_error_exit_254(monkeypatch, capsys):
    def describe(**req):
        raise ResourceNotFound("Could not find compilation job 'nope'", "DescribeCompilationJob")

    monkeypatch.setattr(service, "describe_compilation_job", describe)
    assert main(["describe-compilation-job", "--compilation-job-name", "nope"]) == 254
    err = capsys.readouterr().err
    assert err.strip() == ("An error occurred (ResourceNotFound) when calling the DescribeCompilationJob "
                           "operation: Could not find compilation job 'nope'")


def test_usage_error_exit_252_without_traceback(capsys):
    assert main(["create-compilation-job", "--compilation-job-name", "x"]) == 252
    err = capsys.readouterr().err
    assert err.startswith("usage: neo-local create-compilation-job")
    assert "error: the following arguments are required: --role-arn, --output-config, --stopping-condition" in err
    assert "Traceback" not in err


def test_unknown_command_and_bad_query_exit_252(capsys):
    assert main(["create-compilation-jobs"]) == 252
    assert main(["list-compilation-jobs", "--query", "a["]) == 252
    assert "Bad value for --query" in capsys.readouterr().err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("neo-local/0.1.0 Python/3.11")


# --- skeletons -----------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["--generate-cli-skeleton"], ["--generate-cli-skeleton", "input"]])
def test_input_skeleton_json(argv, capsys, calls):
    assert main(["create-compilation-job", *argv]) == 0
    skeleton = json.loads(capsys.readouterr().out)
    assert list(skeleton) == list(service_model.input_shape("CreateCompilationJob").members)
    assert skeleton["StoppingCondition"]["MaxRuntimeInSeconds"] == 0
    assert skeleton["Tags"] == [{"Key": "", "Value": ""}]
    assert skeleton["OutputConfig"]["TargetDevice"] in service_model.shape_named("TargetDevice").enum
    assert calls == []  # nothing was sent


def test_input_skeleton_yaml_round_trips(capsys, tmp_path):
    assert main(["list-compilation-jobs", "--generate-cli-skeleton", "yaml-input"]) == 0
    skeleton = yaml.safe_load(capsys.readouterr().out)
    assert list(skeleton) == list(service_model.input_shape("ListCompilationJobs").members)
    assert skeleton["MaxResults"] == 0


def test_output_skeleton_validates_then_prints_sample(capsys, calls):
    assert main(["create-compilation-job", *ISSUE_ARGV, "--generate-cli-skeleton", "output"]) == 0
    assert json.loads(capsys.readouterr().out) == {"CompilationJobArn": "CompilationJobArn"}
    argv = list(ISSUE_ARGV)
    argv[1] = "bad name!"
    assert main(["create-compilation-job", *argv, "--generate-cli-skeleton", "output"]) == 254
    assert ("An error occurred (ValidationException) when calling the CreateCompilationJob operation: "
            "1 validation error detected: Value 'bad name!' at 'compilationJobName'") in capsys.readouterr().err
    assert calls == []


# --- --wait --------------------------------------------------------------------------

def _script_describe(monkeypatch, statuses, log_chunks, **final_extra):
    answers = iter(statuses)
    chunks = iter(log_chunks)
    offsets = []

    def describe(**req):
        status = next(answers)
        extra = final_extra if status in ("COMPLETED", "FAILED", "STOPPED") else {}
        return describe_answer(status, **extra)

    def read_job_log(name, offset=0):
        offsets.append(offset)
        text = next(chunks, "")
        return text, offset + len(text)

    monkeypatch.setattr(service, "describe_compilation_job", describe)
    monkeypatch.setattr(service, "read_job_log", read_job_log, raising=False)
    monkeypatch.setattr("neo_local.cli.wait.time.sleep", lambda s: None)
    return offsets


def test_wait_completed(calls, monkeypatch, capsys):
    offsets = _script_describe(monkeypatch, ["STARTING", "INPROGRESS", "INPROGRESS", "COMPLETED"],
                               ["fetching model\n", "compiling\n", "", "packaged\n"],
                               ModelArtifacts={"S3ModelArtifacts": "file:///path/out/model-ml_c5.tar.gz"})
    assert main(["create-compilation-job", *ISSUE_ARGV, "--wait"]) == 0
    captured = capsys.readouterr()
    final = json.loads(captured.out)  # stdout holds only the final description
    assert final["CompilationJobStatus"] == "COMPLETED"
    assert final["ModelArtifacts"]["S3ModelArtifacts"].endswith("model-ml_c5.tar.gz")
    err = captured.err
    order = ["created " + ARN, "fetching model", "resnet-c5: STARTING", "compiling", "resnet-c5: INPROGRESS",
             "packaged", "resnet-c5: COMPLETED"]
    assert [err.index(s) for s in order] == sorted(err.index(s) for s in order)
    assert err.count("resnet-c5: INPROGRESS") == 1
    assert offsets == [0, 15, 25, 25]


def test_wait_failed_exits_nonzero(calls, monkeypatch, capsys):
    _script_describe(monkeypatch, ["INPROGRESS", "FAILED"], ["x\n"],
                     FailureReason="ClientError: InputConfiguration: no .onnx file")
    assert main(["create-compilation-job", *ISSUE_ARGV, "--wait"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["CompilationJobStatus"] == "FAILED"
    assert "FailureReason: ClientError: InputConfiguration: no .onnx file" in captured.err


def test_wait_keeps_polling_when_the_log_cannot_be_read():
    import io

    from neo_local.cli.wait import wait_for_job

    statuses = iter(["INPROGRESS", "STOPPING", "STOPPED"])

    def read_log(name, offset):
        raise OSError("job.log: permission denied")

    err = io.StringIO()
    final = wait_for_job("j", lambda **req: {"CompilationJobStatus": next(statuses)}, read_log,
                         err=err, sleep=lambda s: None)
    assert final == {"CompilationJobStatus": "STOPPED"}
    lines = err.getvalue().splitlines()
    assert lines == ["[neo-local] cannot read the log of j: job.log: permission denied",
                     "[neo-local] j: INPROGRESS", "[neo-local] j: STOPPING", "[neo-local] j: STOPPED"]
