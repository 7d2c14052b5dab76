"""End to end for TargetDevice coreml through the library, as boto3 users call it: archives packed
as a user would, the artifact tarball unpacked and its Core ML package read back with coremltools;
compiled.meta and the job's messages say prediction was not run and what was checked; DLRModel
and ``neo-local run`` refuse the artifact with where it runs. (coremltools cannot predict off
Apple's systems, so there are no numbers to compare: see tests/backends/test_coreml.py.)"""

import json
import logging
import tarfile
from pathlib import Path

import pytest

import neo_local
from coreml_models import keras_dir, torchscript_dir
from models.export import make_archive
from neo_local.api.errors import JobFailure
from neo_local.backends.coreml_check import NOT_RUN
from neo_local.runtime import DLRModel
from neo_local.runtime.model import ArtifactError


def _archive(folder: Path, tmp_path: Path) -> Path:
    return make_archive(sorted(folder.iterdir()), tmp_path / "model.tar.gz")


def _compile(archive: Path, framework: str, config: str, out: Path, options: str | None = None) -> Path:
    output = {"S3OutputLocation": str(out), "TargetDevice": "coreml"}
    if options:
        output["CompilerOptions"] = options
    return Path(neo_local.compile(
        InputConfig={"S3Uri": f"file://{archive}", "Framework": framework, "DataInputConfig": config},
        OutputConfig=output,
    ))


def _unpack(artifact: Path, dest: Path) -> dict:
    with tarfile.open(artifact) as tar:
        names = tar.getnames()
        tar.extractall(dest, filter="data")
    assert "compiled.meta" in names and "model.mlpackage/Manifest.json" in names
    assert not any(n.endswith(".so") for n in names)
    return json.loads((dest / "compiled.meta").read_text())


@pytest.fixture(scope="module")
def torch_archive(tmp_path_factory):
    folder = torchscript_dir(tmp_path_factory.mktemp("torchscript"))
    return _archive(folder, tmp_path_factory.mktemp("archive"))


def test_torchscript_image_classifier(torch_archive, tmp_path, caplog, capsys):
    import coremltools as ct

    config = ('[{"shape": [[1,3,16,16], [1,3,8,8]], "default_shape": [1,3,16,16], "type": "Image", '
              '"bias": [-1,-1,-1], "scale": 0.007843137255}]')
    with caplog.at_level(logging.INFO, logger="neo_local"):
        artifact = _compile(torch_archive, "PYTORCH", config, tmp_path / "out", '{"class_labels": "labels.txt"}')
    assert artifact.name == "model-coreml.tar.gz"
    meta = _unpack(artifact, tmp_path / "unpacked")
    assert meta["Runtime"] == {"Kind": "coreml", "Library": "model.mlpackage", "FormatVersion": 1}
    assert meta["Requirements"]["TargetDevice"] == "coreml" and meta["Target"]["Os"] == "MACOS_IOS"
    assert meta["Compiler"]["coremltools"] == ct.__version__
    assert meta["Model"]["Inputs"][0]["enumerated_shapes"] == [[1, 3, 16, 16], [1, 3, 8, 8]]
    assert [o["name"] for o in meta["Model"]["Outputs"]] == ["classLabel", "classLabel_probs"]
    assert meta["Verification"]["status"] == "structural"
    assert meta["Verification"]["detail"].startswith(NOT_RUN)
    assert "prediction is not run here" in meta["Target"]["Notes"][0]
    assert any(r.getMessage().startswith(f"Verification structural: {NOT_RUN}") for r in caplog.records)

    spec = ct.utils.load_spec(str(tmp_path / "unpacked" / "model.mlpackage"))
    assert spec.description.input[0].type.WhichOneof("Type") == "imageType"
    assert spec.description.predictedFeatureName == "classLabel"

    for path in (artifact, tmp_path / "unpacked"):
        with pytest.raises(ArtifactError, match=r"artifact is a Core ML model \(model.mlpackage\) for Apple devices: it "
                                                r"runs with Core ML on macOS or iOS .* not with this runtime on Linux"):
            DLRModel(path)
    from neo_local.cli.main import main

    assert main(["run", str(artifact)]) != 0
    err = capsys.readouterr().err
    assert "artifact is a Core ML model (model.mlpackage)" in err and "Traceback" not in err


def test_keras_ranges_with_default_shape(tmp_path):
    (tmp_path / "model").mkdir()
    archive = _archive(keras_dir(tmp_path / "model"), tmp_path)
    artifact = _compile(
        archive, "KERAS", '{"input_1": {"shape": ["1..10", 16, 16, 3], "default_shape": [4, 16, 16, 3]}}', tmp_path / "out"
    )
    meta = _unpack(artifact, tmp_path / "unpacked")
    assert meta["Model"]["Inputs"] == [{
        "name": "input_1", "shape": [4, 16, 16, 3], "dtype": "float32", "type": "Tensor",
        "shape_range": [[1, 10], [16, 16], [16, 16], [3, 3]],
    }]
    assert "input input_1 Tensor 4x16x16x3 (ranges 1..10 x 16 x 16 x 3)" in meta["Verification"]["detail"]


@pytest.mark.parametrize(
    "framework, config, options, reason",
    [
        ("PYTORCH", '[{"shape": ["1..10", 3, 16, 16], "default_shape": [1, 3, 32, 32]}]', None,
         "ClientError: InputConfiguration: DataInputConfig input 0 \"default_shape\" [1, 3, 32, 32] is not within "
         "\"shape\" ['1..10', 3, 16, 16]"),
        ("ONNX", '{"data": [1, 3, 16, 16]}', None,
         "ClientError: InputConfiguration: TargetDevice coreml converts models with coremltools, which reads PYTORCH "
         "(TorchScript (.pt/.pth)); KERAS (.h5/.keras models); TENSORFLOW (SavedModels); it has no converter for ONNX "
         "models. Export the model from its training framework as one of those, or compile the ONNX model for a CPU "
         "TargetDevice"),
        ("PYTORCH", '[[1, 3, 16, 16]]', '{"class_labels": "missing.txt"}',
         "ClientError: OutputConfiguration: CompilerOptions class_labels file 'missing.txt' is not in the model "
         "archive. Text files in the archive: labels.txt"),
    ],
)
def test_failure_reasons(torch_archive, tmp_path, framework, config, options, reason):
    with pytest.raises(JobFailure) as err:
        _compile(torch_archive, framework, config, tmp_path / "out", options)
    assert err.value.reason == reason
