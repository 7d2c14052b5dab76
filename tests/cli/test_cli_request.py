"""Command-line words -> the request dict boto3's sagemaker client would take (no service call)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore import xform_name

from neo_local.api import service_model
from neo_local.cli.operations import build_request
from neo_local.cli.values import UsageError

ROLE = "arn:aws:iam::123456789012:role/neo"

# The issue's example, as the shell hands it over (the shell strips the single quotes).
ISSUE_ARGV = [
    "--compilation-job-name", "resnet-c5",
    "--role-arn", ROLE,
    "--input-config", 'S3Uri=file:///path/model.tar.gz,Framework=ONNX,DataInputConfig={"data":[1,3,224,224]}',
    "--output-config", "S3OutputLocation=file:///path/out,TargetDevice=ml_c5",
    "--stopping-condition", "MaxRuntimeInSeconds=900",
]
ISSUE_REQUEST = {
    "CompilationJobName": "resnet-c5",
    "RoleArn": ROLE,
    "InputConfig": {"S3Uri": "file:///path/model.tar.gz", "Framework": "ONNX",
                    "DataInputConfig": '{"data":[1,3,224,224]}'},
    "OutputConfig": {"S3OutputLocation": "file:///path/out", "TargetDevice": "ml_c5"},
    "StoppingCondition": {"MaxRuntimeInSeconds": 900},
}


def test_issue_example():
    assert build_request("CreateCompilationJob", ISSUE_ARGV) == ISSUE_REQUEST


def test_single_quoted_json_member_as_awscli_parses_it():
    argv = list(ISSUE_ARGV)
    argv[5] = "S3Uri=file:///path/model.tar.gz,Framework=ONNX,DataInputConfig='{\"data\":[1,3,224,224]}'"
    assert build_request("CreateCompilationJob", argv) == ISSUE_REQUEST


def test_integers_are_converted_per_model():
    req = build_request("CreateCompilationJob", ISSUE_ARGV)
    assert req["StoppingCondition"]["MaxRuntimeInSeconds"] == 900
    assert isinstance(req["StoppingCondition"]["MaxRuntimeInSeconds"], int)
    assert build_request("ListCompilationJobs", ["--max-results", "7"]) == {"MaxResults": 7}


def test_tags_list_of_shorthand_structures():
    req = build_request("CreateCompilationJob", ISSUE_ARGV + ["--tags", "Key=a,Value=b", "Key=c,Value=d"])
    assert req["Tags"] == [{"Key": "a", "Value": "b"}, {"Key": "c", "Value": "d"}]


def test_tags_as_json():
    req = build_request("CreateCompilationJob", ISSUE_ARGV + ["--tags", '[{"Key": "a", "Value": "b"}]'])
    assert req["Tags"] == [{"Key": "a", "Value": "b"}]


def test_vpc_config_shorthand_lists():
    req = build_request("CreateCompilationJob",
                        ISSUE_ARGV + ["--vpc-config", "SecurityGroupIds=sg-1,sg-2,Subnets=subnet-1"])
    assert req["VpcConfig"] == {"SecurityGroupIds": ["sg-1", "sg-2"], "Subnets": ["subnet-1"]}


def test_target_platform_and_single_quoted_compiler_options():
    argv = ISSUE_ARGV[:6] + [
        "--output-config",
        "S3OutputLocation=s3://b/out,TargetPlatform={Os=LINUX,Arch=ARM_EABIHF},CompilerOptions={'mattr': ['+neon']}",
        "--stopping-condition", "MaxRuntimeInSeconds=60",
    ]
    req = build_request("CreateCompilationJob", argv)
    assert req["OutputConfig"] == {
        "S3OutputLocation": "s3://b/out",
        "TargetPlatform": {"Os": "LINUX", "Arch": "ARM_EABIHF"},
        "CompilerOptions": "{'mattr': ['+neon']}",
    }


def test_json_structure_values_and_file_uris(tmp_path):
    (tmp_path / "input.json").write_text(json.dumps(
        {"S3Uri": "s3://bucket/model.tar.gz", "Framework": "PYTORCH", "DataInputConfig": "[[1,3,224,224]]"}))
    argv = [
        "--compilation-job-name", "pt", "--role-arn", ROLE,
        "--input-config", f"file://{tmp_path / 'input.json'}",
        "--output-config", '{"S3OutputLocation": "s3://bucket/out", "TargetDevice": "ml_m5"}',
        "--stopping-condition", '{"MaxRuntimeInSeconds": 60}',
    ]
    assert build_request("CreateCompilationJob", argv) == {
        "CompilationJobName": "pt",
        "RoleArn": ROLE,
        "InputConfig": {"S3Uri": "s3://bucket/model.tar.gz", "Framework": "PYTORCH",
                        "DataInputConfig": "[[1,3,224,224]]"},
        "OutputConfig": {"S3OutputLocation": "s3://bucket/out", "TargetDevice": "ml_m5"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }


def test_scalar_file_uri(tmp_path):
    (tmp_path / "name.txt").write_text("from-file")
    assert build_request("DescribeCompilationJob", ["--compilation-job-name", f"file://{tmp_path / 'name.txt'}"]) == {
        "CompilationJobName": "from-file"}


def test_list_filters_and_timestamps():
    req = build_request("ListCompilationJobs", [
        "--creation-time-after", "2024-01-01", "--last-modified-time-before", "2024-05-01T12:30:00Z",
        "--status-equals", "COMPLETED", "--sort-by", "Name", "--sort-order", "Ascending",
        "--name-contains", "resnet", "--next-token", "abc",
    ])
    assert req == {
        "CreationTimeAfter": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        "LastModifiedTimeBefore": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
        "StatusEquals": "COMPLETED", "SortBy": "Name", "SortOrder": "Ascending",
        "NameContains": "resnet", "NextToken": "abc",
    }


def test_cli_input_json_with_override(tmp_path):
    full = dict(ISSUE_REQUEST, CompilationJobName="from-json")
    path = tmp_path / "job.json"
    path.write_text(json.dumps(full))
    for value in (f"file://{path}", json.dumps(full)):
        req = build_request("CreateCompilationJob", [
            "--cli-input-json", value, "--compilation-job-name", "from-flag",
            "--stopping-condition", "MaxRuntimeInSeconds=60",
        ])
        assert req == dict(ISSUE_REQUEST, CompilationJobName="from-flag",
                           StoppingCondition={"MaxRuntimeInSeconds": 60})


def test_cli_input_yaml_with_override(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(
        "CompilationJobName: from-yaml\n"
        f"RoleArn: {ROLE}\n"
        "InputConfig:\n  S3Uri: s3://b/m.tar.gz\n  Framework: ONNX\n  DataInputConfig: '{\"data\": [1, 3, 8, 8]}'\n"
        "OutputConfig:\n  S3OutputLocation: s3://b/out\n  TargetDevice: ml_c4\n"
        "StoppingCondition:\n  MaxRuntimeInSeconds: 300\n"
        "Tags:\n  - Key: team\n    Value: ml\n"
    )
    req = build_request("CreateCompilationJob", ["--cli-input-yaml", f"file://{path}",
                                                 "--output-config", "S3OutputLocation=s3://b/x,TargetDevice=ml_c5"])
    assert req == {
        "CompilationJobName": "from-yaml", "RoleArn": ROLE,
        "InputConfig": {"S3Uri": "s3://b/m.tar.gz", "Framework": "ONNX", "DataInputConfig": '{"data": [1, 3, 8, 8]}'},
        "OutputConfig": {"S3OutputLocation": "s3://b/x", "TargetDevice": "ml_c5"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        "Tags": [{"Key": "team", "Value": "ml"}],
    }


def test_cli_input_yaml_dates_become_datetimes():
    req = build_request("ListCompilationJobs", ["--cli-input-yaml", "CreationTimeAfter: 2024-01-02\nMaxResults: 3"])
    assert req == {"CreationTimeAfter": dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc), "MaxResults": 3}


def test_cli_input_json_and_yaml_are_exclusive():
    with pytest.raises(UsageError, match="not allowed with argument"):
        build_request("ListCompilationJobs", ["--cli-input-json", "{}", "--cli-input-yaml", "{}"])


@pytest.mark.parametrize("argv, fragment", [
    (["--compilation-job-name", "x"],
     "the following arguments are required: --role-arn, --output-config, --stopping-condition"),
    (ISSUE_ARGV[:8] + ["--stopping-condition", "MaxRuntimeInSeconds=soon"],
     "Error parsing parameter '--stopping-condition': invalid literal for int()"),
    (ISSUE_ARGV[:6] + ["--output-config", "S3OutputLocation==x"] + ISSUE_ARGV[8:],
     "Error parsing parameter '--output-config': Expected: ',', received: '=' for input:\nS3OutputLocation==x\n"),
    (ISSUE_ARGV[:6] + ["--output-config", "{not json"] + ISSUE_ARGV[8:],
     "Error parsing parameter '--output-config': Invalid JSON"),
    (ISSUE_ARGV + ["--cli-input-json", "[1]"], "the input must be an object of request parameters"),
    (ISSUE_ARGV + ["--cli-input-json", "{bad"], "Error parsing parameter '--cli-input-json': Invalid JSON"),
    (ISSUE_ARGV[:4] + ["--input-config", "file:///no/such/file.json"] + ISSUE_ARGV[6:],
     "Error parsing parameter '--input-config': Unable to load paramfile file:///no/such/file.json"),
    (ISSUE_ARGV + ["--compilation-job"], "unrecognized arguments: --compilation-job"),
])
def test_command_line_mistakes(argv, fragment):
    with pytest.raises(UsageError) as info:
        build_request("CreateCompilationJob", argv)
    assert fragment in str(info.value)


def test_cli_input_json_satisfies_required_flags():
    req = build_request("DescribeCompilationJob", ["--cli-input-json", '{"CompilationJobName": "a"}'])
    assert req == {"CompilationJobName": "a"}


@pytest.mark.parametrize("operation", service_model.OPERATIONS)
def test_flags_come_from_the_model(operation):
    from neo_local.cli.main import build_parser
    from neo_local.cli.operations import _TUNING_FLAGS

    parser = build_parser()
    sub = next(a for a in parser._subparsers._group_actions).choices[service_model.cli_name(operation)]
    flags = {s for a in sub._actions for s in a.option_strings}
    members = service_model.input_shape(operation).members
    expected = {"--" + xform_name(m, "-") for m in members}
    assert expected <= flags
    tuning = {"--" + f.replace("_", "-") for f in _TUNING_FLAGS} if operation == "CreateCompilationJob" else set()
    assert expected >= flags - tuning - {"-h", "--help", "--output", "--query", "--region", "--debug",
                                         "--cli-input-json", "--cli-input-yaml", "--generate-cli-skeleton", "--wait"}
