"""create-compilation-job's tuning flags: they become OutputConfig.CompilerOptions' "tuning" object."""

from __future__ import annotations

import json

import pytest

from neo_local.cli.main import EXIT_USAGE, build_parser, main
from neo_local.cli.operations import request_from_namespace

BASE = ["create-compilation-job", "--compilation-job-name", "j", "--role-arn", "arn:aws:iam::123456789012:role/neo",
        "--input-config", 'S3Uri=file:///m.tar.gz,Framework=ONNX,DataInputConfig={"x":[1,3,8,8]}',
        "--stopping-condition", "MaxRuntimeInSeconds=60"]


def _options(*argv: str) -> dict:
    ns = build_parser().parse_args([*BASE, *argv])
    return json.loads(request_from_namespace("CreateCompilationJob", ns)["OutputConfig"]["CompilerOptions"])


def test_flags_join_the_compiler_options_given():
    options = _options("--output-config",
                       'S3OutputLocation=file:///o,TargetDevice=ml_c4,CompilerOptions={"mcpu":"znver3","tuning":{"minutes":2}}',
                       "--tune-trials", "20", "--tuning-records", "/tmp/r.jsonl", "--tune-rpc", "10.0.0.2:9090")
    assert options == {"mcpu": "znver3",
                       "tuning": {"minutes": 2, "trials": 20, "records": "/tmp/r.jsonl", "rpc": "10.0.0.2:9090"}}


def test_flags_alone_make_the_tuning_object():
    assert _options("--output-config", "S3OutputLocation=file:///o,TargetDevice=ml_c4",
                    "--tune-minutes", "1.5") == {"tuning": {"minutes": 1.5}}


def test_without_flags_the_options_stay_as_given():
    ns = build_parser().parse_args([*BASE, "--output-config", "S3OutputLocation=file:///o,TargetDevice=ml_c4"])
    assert "CompilerOptions" not in request_from_namespace("CreateCompilationJob", ns)["OutputConfig"]


@pytest.mark.parametrize("argv,message", [
    (["--tune-trials", "many"], "argument --tune-trials: invalid int value: 'many'"),
    (["--output-config", 'S3OutputLocation=file:///o,TargetDevice=ml_c4,CompilerOptions={"tuning":3}',
      "--tune-trials", "5"], "the tuning flags need CompilerOptions (and its tuning) to be a JSON object"),
])
def test_bad_flags_are_usage_errors(argv, message, capsys):
    assert main([*BASE, "--output-config", "S3OutputLocation=file:///o,TargetDevice=ml_c4", *argv]) == EXIT_USAGE
    assert message in capsys.readouterr().err
