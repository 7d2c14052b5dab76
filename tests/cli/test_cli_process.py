"""``python -m neo_local.cli.main`` as a user runs it: exit statuses, stderr, the real service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


from neo_local.api import service

REPO = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/neo"


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neo_local.cli.main", *args], capture_output=True, text=True,
                          cwd=REPO, env=os.environ.copy(), timeout=timeout)


def create_args(name: str, s3_uri: str, out: str) -> list[str]:
    return ["create-compilation-job", "--compilation-job-name", name, "--role-arn", ROLE,
            "--input-config", f'S3Uri={s3_uri},Framework=ONNX,DataInputConfig={{"data":[1,3,8,8]}}',
            "--output-config", f"S3OutputLocation={out},TargetDevice=ml_c5",
            "--stopping-condition", "MaxRuntimeInSeconds=900"]


def test_version():
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("neo-local/")


def test_missing_required_arguments_exit_252():
    proc = cli("create-compilation-job", "--compilation-job-name", "x")
    assert proc.returncode == 252
    assert proc.stderr.startswith("usage: neo-local create-compilation-job")
    assert "error: the following arguments are required: --role-arn, --output-config, --stopping-condition" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_bad_shorthand_exit_252():
    args = create_args("x", "file:///m.tar.gz", "file:///out")
    args[args.index("--stopping-condition") + 1] = "MaxRuntimeInSeconds=forever"
    proc = cli(*args)
    assert proc.returncode == 252
    assert "Error parsing parameter '--stopping-condition': invalid literal for int()" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_choice_exit_252():
    proc = cli("list-compilation-jobs", "--output", "yaml")
    assert proc.returncode == 252
    assert "argument --output: invalid choice: 'yaml'" in proc.stderr


def test_python_m_neo_local_cli_works_too():
    proc = subprocess.run([sys.executable, "-m", "neo_local.cli", "--version"], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("neo-local/")


def test_validation_error_exit_254():
    proc = cli(*create_args("bad name!", "file:///m.tar.gz", "file:///out"))
    assert proc.returncode == 254
    assert proc.stderr.strip() == (
        "An error occurred (ValidationException) when calling the CreateCompilationJob operation: "
        "1 validation error detected: Value 'bad name!' at 'compilationJobName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )
    assert proc.stdout == ""


def test_cross_field_error_exit_254():
    args = create_args("both-targets", "file:///m.tar.gz", "file:///out")
    i = args.index("--output-config") + 1
    args[i] = "S3OutputLocation=file:///out,TargetDevice=ml_c5,TargetPlatform={Os=LINUX,Arch=X86_64}"
    proc = cli(*args)
    assert proc.returncode == 254
    assert "OutputConfig.TargetDevice and OutputConfig.TargetPlatform cannot both be specified" in proc.stderr


def test_unknown_job_exit_254():
    proc = cli("describe-compilation-job", "--compilation-job-name", "no-such-job")
    assert proc.returncode == 254
    assert proc.stderr.strip().startswith(
        "An error occurred (ResourceNotFound) when calling the DescribeCompilationJob operation: ")


def test_job_lifecycle_through_the_cli(tmp_path):
    missing = tmp_path / "missing.tar.gz"  # the job fails fast, with a FailureReason
    created = cli(*create_args("cli-life", f"file://{missing}", f"file://{tmp_path / 'out'}"))
    assert created.returncode == 0, created.stderr
    arn = json.loads(created.stdout)["CompilationJobArn"]
    assert arn.endswith(":compilation-job/cli-life") and arn.startswith("arn:aws:sagemaker:")

    again = cli(*create_args("cli-life", f"file://{missing}", f"file://{tmp_path / 'out'}"))
    assert again.returncode == 254
    assert "An error occurred (ResourceInUse) when calling the CreateCompilationJob operation" in again.stderr

    listed = cli("list-compilation-jobs", "--name-contains", "cli-life",
                 "--query", "CompilationJobSummaries[].CompilationJobName", "--output", "text")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["cli-life"]

    waited = cli("create-compilation-job", "--compilation-job-name", "cli-wait", "--role-arn", ROLE,
                 "--input-config", f"S3Uri=file://{missing},Framework=ONNX",
                 "--output-config", f"S3OutputLocation=file://{tmp_path / 'out'},TargetDevice=ml_c5",
                 "--stopping-condition", "MaxRuntimeInSeconds=900", "--wait", timeout=300)
    assert waited.returncode == 1, waited.stderr
    final = json.loads(waited.stdout)
    assert final["CompilationJobStatus"] == "FAILED"
    assert final["FailureReason"].startswith("ClientError: ")
    assert "cli-wait: FAILED" in waited.stderr
    assert f"FailureReason: {final['FailureReason']}" in waited.stderr

    assert _wait_terminal("cli-life") == "FAILED"
    for name in ("cli-life", "cli-wait"):
        deleted = cli("delete-compilation-job", "--compilation-job-name", name)
        assert deleted.returncode == 0, deleted.stderr
        assert deleted.stdout == ""  # an empty answer prints nothing, as in aws
    gone = cli("describe-compilation-job", "--compilation-job-name", "cli-life")
    assert gone.returncode == 254


def _wait_terminal(name: str, limit: float = 120) -> str:
    deadline = time.monotonic() + limit
    while True:
        status = service.describe_compilation_job(CompilationJobName=name)["CompilationJobStatus"]
        if status in ("COMPLETED", "FAILED", "STOPPED") or time.monotonic() > deadline:
            return status
        time.sleep(0.5)
