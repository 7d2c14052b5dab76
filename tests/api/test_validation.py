"""Request validation against botocore's SageMaker model, with the service's wording."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from botocore.exceptions import ClientError

from neo_local.api.errors import ValidationException
from neo_local.api.validation import request_errors, validate_create, validate_operation

ROLE = "arn:aws:iam::123456789012:role/neo"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/resnet/1"


def good() -> dict:
    return {
        "CompilationJobName": "resnet-c5",
        "RoleArn": ROLE,
        "InputConfig": {
            "S3Uri": "s3://bucket/model.tar.gz",
            "Framework": "ONNX",
            "DataInputConfig": '{"data": [1, 3, 224, 224]}',
        },
        "OutputConfig": {"S3OutputLocation": "s3://bucket/out", "TargetDevice": "ml_c5"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
    }


def message_for(request: dict) -> str:
    with pytest.raises(ValidationException) as info:
        validate_create(request)
    err = info.value
    assert err.response["Error"]["Code"] == "ValidationException"
    assert err.operation_name == "CreateCompilationJob"
    return err.message


def test_valid_request_passes():
    validate_create(good())


def test_validation_exception_is_a_botocore_client_error():
    req = good()
    req["CompilationJobName"] = "bad name!"
    with pytest.raises(ClientError) as info:
        validate_create(req)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_pattern_is_applied_to_the_whole_value():
    req = good()
    req["CompilationJobName"] = "bad name!"
    assert message_for(req) == (
        "1 validation error detected: Value 'bad name!' at 'compilationJobName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )
    # a valid prefix is not enough: the pattern must match all of the value
    req["CompilationJobName"] = "ok-name_"
    assert "Value 'ok-name_' at 'compilationJobName'" in message_for(req)


def test_enum():
    req = good()
    req["OutputConfig"]["TargetDevice"] = "ml_c99"
    msg = message_for(req)
    assert msg.startswith(
        "1 validation error detected: Value 'ml_c99' at 'outputConfig.targetDevice' failed to satisfy "
        "constraint: Member must satisfy enum value set: [lambda, ml_m4, ml_m5, "
    )
    assert msg.endswith(", jacinto_tda4vm, imx8mplus]")


def test_string_length_max():
    req = good()
    req["InputConfig"]["FrameworkVersion"] = "1.2345678901"  # fits the pattern, 12 > 10 characters
    assert message_for(req) == (
        "1 validation error detected: Value '1.2345678901' at 'inputConfig.frameworkVersion' failed to "
        "satisfy constraint: Member must have length less than or equal to 10"
    )


def test_string_length_min_and_pattern_both_reported():
    req = good()
    req["CompilationJobName"] = ""
    msg = message_for(req)
    assert msg.startswith("2 validation errors detected: ")
    assert "Value '' at 'compilationJobName' failed to satisfy constraint: Member must have length greater than or equal to 1" in msg
    assert "Value '' at 'compilationJobName' failed to satisfy constraint: Member must satisfy regular expression pattern" in msg


def test_list_length():
    req = good()
    req["VpcConfig"] = {"SecurityGroupIds": [f"sg-{i}" for i in range(6)], "Subnets": ["subnet-1"]}
    assert message_for(req) == (
        "1 validation error detected: Value '[sg-0, sg-1, sg-2, sg-3, sg-4, sg-5]' at "
        "'vpcConfig.securityGroupIds' failed to satisfy constraint: Member must have length less than "
        "or equal to 5"
    )


def test_integer_range():
    req = good()
    req["StoppingCondition"]["MaxRuntimeInSeconds"] = 0
    assert message_for(req) == (
        "1 validation error detected: Value '0' at 'stoppingCondition.maxRuntimeInSeconds' failed to "
        "satisfy constraint: Member must have value greater than or equal to 1"
    )


def test_integer_range_max():
    req = good()
    req["StoppingCondition"]["MaxPendingTimeInSeconds"] = 2419201
    assert "Member must have value less than or equal to 2419200" in message_for(req)


def test_integer_type():
    req = good()
    req["StoppingCondition"]["MaxRuntimeInSeconds"] = "900"
    assert message_for(req) == (
        "1 validation error detected: Value '900' at 'stoppingCondition.maxRuntimeInSeconds' failed to "
        "satisfy constraint: Member must be an integer"
    )


def test_bool_is_not_an_integer():
    req = good()
    req["StoppingCondition"]["MaxRuntimeInSeconds"] = True
    assert "Member must be an integer" in message_for(req)


def test_string_type():
    req = good()
    req["RoleArn"] = 5
    assert "Value '5' at 'roleArn' failed to satisfy constraint: Member must be a string" in message_for(req)


def test_required_member():
    req = good()
    del req["RoleArn"]
    assert message_for(req) == (
        "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_required_nested_member_in_list():
    req = good()
    req["Tags"] = [{"Key": "team", "Value": "ml"}, {"Key": "owner"}]
    assert message_for(req) == (
        "1 validation error detected: Value null at 'tags.2.member.value' failed to satisfy "
        "constraint: Member must not be null"
    )


def test_unknown_top_level_key():
    req = good()
    req["CompilationJobname"] = "x"
    msg = message_for(req)
    assert msg.startswith('1 validation error detected: Unknown parameter in input: "CompilationJobname", '
                          "must be one of: CompilationJobName, RoleArn, ")


def test_unknown_member_key():
    req = good()
    req["OutputConfig"]["TargetDev"] = "ml_c5"
    assert ('Unknown parameter in outputConfig: "TargetDev", must be one of: S3OutputLocation, '
            "TargetDevice, TargetPlatform, CompilerOptions, KmsKeyId") in message_for(req)


def test_structure_type():
    req = good()
    req["StoppingCondition"] = 900
    assert "Value '900' at 'stoppingCondition' failed to satisfy constraint: Member must be a structure" in message_for(req)


def test_errors_are_collected():
    req = good()
    req["CompilationJobName"] = "bad name!"
    req["OutputConfig"]["TargetDevice"] = "ml_c99"
    req["StoppingCondition"]["MaxRuntimeInSeconds"] = 0
    msg = message_for(req)
    assert msg.startswith("3 validation errors detected: Value 'bad name!' at 'compilationJobName'")
    assert msg.count("; ") == 2
    assert "at 'outputConfig.targetDevice'" in msg and "at 'stoppingCondition.maxRuntimeInSeconds'" in msg


def test_tag_pattern_with_unicode_letters_and_spaces():
    req = good()
    req["Tags"] = [{"Key": "équipe ml", "Value": "数据 ٣"}]
    validate_create(req)
    req["Tags"] = [{"Key": "bad!", "Value": "v"}]
    assert ("Value 'bad!' at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy "
            r"regular expression pattern: ([\p{L}\p{Z}\p{N}_.:/=+\-@]*)") in message_for(req)


def test_s3_uri_also_takes_local_paths():
    req = good()
    req["InputConfig"]["S3Uri"] = "file:///tmp/model.tar.gz"
    req["OutputConfig"]["S3OutputLocation"] = "/tmp/out"
    validate_create(req)
    req["InputConfig"]["S3Uri"] = "ftp://host/model.tar.gz"
    assert ("Value 'ftp://host/model.tar.gz' at 'inputConfig.s3Uri' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: (https|s3)://([^/]+)/?(.*)") in message_for(req)


# --- cross-field rules ---------------------------------------------------------------

def test_input_config_and_model_package_together():
    req = good()
    req["ModelPackageVersionArn"] = PACKAGE
    assert message_for(req) == (
        "1 validation error detected: InputConfig and ModelPackageVersionArn cannot both be "
        "specified: provide exactly one of them"
    )


def test_neither_input_config_nor_model_package():
    req = good()
    del req["InputConfig"]
    assert message_for(req) == (
        "1 validation error detected: Either InputConfig or ModelPackageVersionArn must be specified"
    )


def test_model_package_alone_is_valid():
    req = good()
    del req["InputConfig"]
    req["ModelPackageVersionArn"] = PACKAGE
    validate_create(req)


def test_target_device_and_platform_together():
    req = good()
    req["OutputConfig"]["TargetPlatform"] = {"Os": "LINUX", "Arch": "X86_64"}
    assert message_for(req) == (
        "1 validation error detected: OutputConfig.TargetDevice and OutputConfig.TargetPlatform "
        "cannot both be specified: provide exactly one of them"
    )


def test_neither_target_device_nor_platform():
    req = good()
    del req["OutputConfig"]["TargetDevice"]
    assert message_for(req) == (
        "1 validation error detected: OutputConfig must specify either TargetDevice or TargetPlatform"
    )


def test_target_platform_alone_is_valid():
    req = good()
    req["OutputConfig"] = {"S3OutputLocation": "s3://b/o", "TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"},
                           "CompilerOptions": '{"mcpu": "skylake-avx512", "mattr": ["+avx2"]}'}
    validate_create(req)


def test_target_platform_enum_and_required():
    req = good()
    req["OutputConfig"] = {"S3OutputLocation": "s3://b/o", "TargetPlatform": {"Os": "WINDOWS"}}
    msg = message_for(req)
    assert ("Value 'WINDOWS' at 'outputConfig.targetPlatform.os' failed to satisfy constraint: "
            "Member must satisfy enum value set: [ANDROID, LINUX]") in msg
    assert "Value null at 'outputConfig.targetPlatform.arch' failed to satisfy constraint: Member must not be null" in msg


def test_bad_compiler_options_json():
    req = good()
    req["OutputConfig"]["CompilerOptions"] = '{"mcpu": skylake}'
    msg = message_for(req)
    assert msg.startswith(
        "1 validation error detected: Value '{\"mcpu\": skylake}' at 'outputConfig.compilerOptions' "
        "failed to satisfy constraint: Member must be valid JSON: CompilerOptions is not valid JSON ("
    )


def test_compiler_options_must_be_an_object():
    req = good()
    req["OutputConfig"]["CompilerOptions"] = '["+neon"]'
    assert ("at 'outputConfig.compilerOptions' failed to satisfy constraint: Member must be a JSON "
            "object, e.g. {\"mcpu\": \"skylake-avx512\"} or {'mattr': ['+neon']}, not a JSON list") in message_for(req)


@pytest.mark.parametrize("options", [
    "{'mattr': ['+neon']}",
    "{'gpu-code': 'sm_62', 'trt-ver': '6.0.1', 'cuda-ver': '10.0'}",
    "{'ANDROID_PLATFORM': 25, 'mattr': ['+neon']}",
])
def test_single_quoted_compiler_options_accepted(options):
    req = good()
    req["OutputConfig"] = {"S3OutputLocation": "s3://b/o", "TargetPlatform": {"Os": "LINUX", "Arch": "ARM_EABIHF"},
                           "CompilerOptions": options}
    validate_create(req)


def test_neuron_flag_string_only_for_neuron_devices():
    req = good()
    req["OutputConfig"]["TargetDevice"] = "ml_inf1"
    req["OutputConfig"]["CompilerOptions"] = '"--verbose 1 --num-neuroncores 2 -O2"'
    validate_create(req)
    req["OutputConfig"]["TargetDevice"] = "ml_c5"
    assert "Member must be a JSON object, e.g. {\"mcpu\": \"skylake-avx512\"} or {'mattr': ['+neon']}, not a JSON string" in message_for(req)


def test_data_input_config_forms():
    req = good()
    for form in ('{"data": [1, 3, 224, 224]}', "[[1,3,224,224]]", "{'input0': [1, 3, 224, 224]}",
                 '{"input_1": {"shape": ["1..10", 224, 224, 3]}}'):
        req["InputConfig"]["DataInputConfig"] = form
        validate_create(req)
    req["InputConfig"]["DataInputConfig"] = "data:1,3,224,224"
    assert ("Value 'data:1,3,224,224' at 'inputConfig.dataInputConfig' failed to satisfy constraint: "
            "Member must be valid JSON: DataInputConfig is not valid JSON (") in message_for(req)
    req["InputConfig"]["DataInputConfig"] = "42"
    assert "Member must be a JSON object or list, e.g." in message_for(req)
    assert "not a JSON number" in message_for(req)


def test_request_is_not_modified():
    req = good()
    req["OutputConfig"]["CompilerOptions"] = "{'mcpu': 'skylake-avx512'}"
    before = copy.deepcopy(req)
    validate_create(req)
    assert req == before


# --- the other operations ------------------------------------------------------------

def test_describe_requires_name():
    with pytest.raises(ValidationException) as info:
        validate_operation("DescribeCompilationJob", {})
    assert info.value.message == ("1 validation error detected: Value null at 'compilationJobName' failed "
                                  "to satisfy constraint: Member must not be null")
    assert info.value.operation_name == "DescribeCompilationJob"


def test_list_ranges_enums_and_timestamps():
    validate_operation("ListCompilationJobs", {
        "MaxResults": 100, "SortBy": "CreationTime", "SortOrder": "Descending", "StatusEquals": "COMPLETED",
        "CreationTimeAfter": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), "CreationTimeBefore": "2030-01-01",
        "NameContains": "resnet",
    })
    errors = request_errors("ListCompilationJobs", {
        "MaxResults": 101, "SortBy": "Size", "CreationTimeAfter": "yesterday", "NameContains": "a b",
    })
    assert errors == [
        "Value '101' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100",
        "Value 'yesterday' at 'creationTimeAfter' failed to satisfy constraint: Member must be a timestamp "
        "(ISO 8601, e.g. 2024-05-01T12:00:00Z, or epoch seconds)",
        "Value 'a b' at 'nameContains' failed to satisfy constraint: Member must satisfy regular expression "
        r"pattern: [a-zA-Z0-9\-]+",
        "Value 'Size' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: "
        "[Name, CreationTime, Status]",
    ]


@pytest.mark.parametrize("operation", ["StopCompilationJob", "delete-compilation-job", "delete_compilation_job"])
def test_stop_and_delete(operation):
    validate_operation(operation, {"CompilationJobName": "job-1"})
    with pytest.raises(ValidationException):
        validate_operation(operation, {"CompilationJobName": "job 1"})


def test_validate_operation_dispatches_create_rules():
    req = good()
    req["ModelPackageVersionArn"] = PACKAGE
    with pytest.raises(ValidationException, match="cannot both be specified"):
        validate_operation("CreateCompilationJob", req)
