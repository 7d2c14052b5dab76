"""End to end for MXNet and DarkNet archives: an MXNet ResNet-like checkpoint and a
yolov3-tiny-shaped DarkNet network compiled for ml_c4, the artifact run in a fresh process and
compared with the torch modules the files were written from (MXNet and DarkNet themselves cannot
run here). More networks compile in tests/frontends/test_{mxnet,darknet}_compile.py."""

import json
import tarfile
from pathlib import Path

import neo_local
from example_archives import CACHE, check_artifact
from models.darknet_writer import build_darknet_example
from models.mxnet_writer import build_mxnet_example
from neo_local.api.requests import CompilationRequest
from neo_local.pipeline import run_compilation


def _meta(artifact: Path) -> dict:
    with tarfile.open(artifact) as tar:
        return json.load(tar.extractfile("compiled.meta"))


def test_mxnet_resnet_like_checkpoint(tmp_path, record_property):
    """conv/bn/relu/maxpool, residual adds, global pool, fc, SoftmaxOutput (with its label)."""
    example = build_mxnet_example("resnet_like_mx", CACHE / "mxnet")
    uri = neo_local.compile(
        InputConfig={"S3Uri": f"file://{example.archive}", "Framework": "MXNET",
                     "DataInputConfig": example.data_input_config},
        OutputConfig={"S3OutputLocation": str(tmp_path / "out"), "TargetDevice": "ml_c4"},
    )
    artifact = Path(uri)
    assert artifact == tmp_path / "out" / "resnet_like_mx-ml_c4.tar.gz"
    check_artifact(artifact, example, tmp_path / "run", record_property)
    meta = _meta(artifact)
    assert meta["Model"]["Framework"] == "MXNET"
    assert meta["Model"]["SourceFile"] == "resnet_like_mx-symbol.json"
    assert meta["Model"]["Inputs"] == [{"name": "data", "shape": [1, 3, 64, 64], "dtype": "float32"}]
    assert meta["Model"]["Outputs"] == [{"name": "softmax_output", "shape": [1, 10], "dtype": "float32"}]
    assert meta["Verification"]["status"] == "passed"


def test_darknet_yolov3_tiny_without_data_input_config(tmp_path, record_property):
    """The input shape comes from the cfg's [net] and is reported as DerivedDataInputConfig."""
    example = build_darknet_example("yolov3_tiny_160", CACHE / "darknet")
    request = CompilationRequest.from_api({
        "CompilationJobName": "yolo",
        "RoleArn": "arn:aws:iam::123456789012:role/neo",
        "InputConfig": {"S3Uri": example.archive, "Framework": "DARKNET"},
        "OutputConfig": {"S3OutputLocation": str(tmp_path / "out"), "TargetDevice": "ml_c4"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
    })
    log: list[str] = []
    result = run_compilation(request, tmp_path / "work", log.append)
    assert result.derived_information == {"DerivedDataInputConfig": '{"data": [1, 3, 160, 160]}'}
    assert 'Derived DataInputConfig {"data": [1, 3, 160, 160]}' in log
    artifact = Path(result.artifact_uri)
    check_artifact(artifact, example, tmp_path / "run", record_property)
    meta = _meta(artifact)
    assert meta["Model"]["SourceFile"] == "yolov3_tiny_160.cfg"
    assert [(o["name"], o["shape"]) for o in meta["Model"]["Outputs"]] == [
        ("yolo_16", [1, 255, 5, 5]), ("yolo_23", [1, 255, 10, 10])
    ]
    assert meta["Verification"]["status"] == "passed"
