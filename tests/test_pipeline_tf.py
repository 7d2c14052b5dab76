"""End to end through the library for TENSORFLOW, KERAS and TFLITE archives: models built in
code with seeded weights (models/tf_models.py, cached under .cache/), packed as a user would,
compiled for ml_c4, run in a fresh process and compared with the framework's own prediction
(Keras / TensorFlow on the model as built, the TFLite interpreter) on the same inputs."""

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

import neo_local
from neo_local.api.errors import JobFailure
from neo_local.verify import compare, run_artifact

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "test-models" / "tf"

FLOAT = [
    # keras.applications.MobileNetV2 (alpha 0.35, 96x96) as .h5, NCHW input: ~40 s of the file's time
    pytest.param("keras_mobilenet_v2", marks=pytest.mark.slow),
    "keras_bert_like",        # embeddings + MultiHeadAttention + LayerNorm + GELU, int32 tokens, .keras
    "keras_sequential_cnn",   # Sequential CNN as .h5
    "tf_saved_model",         # SavedModel (model/1/) with the signature serving_custom, two outputs
    "tf_frozen_graph",        # frozen GraphDef, input:0 -> output_tensor:0
    "tflite_mobile_cnn",      # float32 TFLite, DataInputConfig derived
]
QUANTIZED = [
    "tflite_mobile_cnn_int8",   # full integer, int8 in and out (uint8: tests/frontends/test_tflite.py)
]


def _built(name):
    from models.tf_models import build_tf_example

    return build_tf_example(name, CACHE)


def _compile(example, out: Path) -> Path:
    inp = {"S3Uri": f"file://{example.archive}", "Framework": example.framework}
    if example.data_input_config:
        inp["DataInputConfig"] = example.data_input_config
    output = {"S3OutputLocation": str(out), "TargetDevice": "ml_c4"}
    if example.compiler_options:
        output["CompilerOptions"] = example.compiler_options
    return Path(neo_local.compile(InputConfig=inp, OutputConfig=output))


def _meta(artifact: Path) -> dict:
    with tarfile.open(artifact) as tar:
        assert sorted(tar.getnames()) == ["compiled.meta", "compiled.so"]
        return json.load(tar.extractfile("compiled.meta"))


def _check_meta(meta, example, feeds):
    assert meta["Requirements"] == {"TargetDevice": "ml_c4", "TargetDeviceType": "cpu"}
    assert meta["Model"]["Framework"] == example.framework
    # the compiled model takes the inputs under the names the request (or the model) gave them
    assert sorted(i["name"] for i in meta["Model"]["Inputs"]) == sorted(feeds)
    for spec in meta["Model"]["Inputs"]:
        assert spec["shape"] == list(feeds[spec["name"]].shape)
        assert spec["dtype"] == str(feeds[spec["name"]].dtype)
    assert meta["Verification"]["status"] == "passed"


@pytest.mark.parametrize("name", FLOAT)
def test_float_model_matches_the_framework(name, tmp_path, record_property):
    example = _built(name)
    artifact = _compile(example, tmp_path / "out")
    assert artifact.name == f"{name}-ml_c4.tar.gz"
    feeds = example.load_inputs()
    _check_meta(_meta(artifact), example, feeds)
    actual = run_artifact(artifact, feeds, tmp_path / "run")
    max_abs, max_rel = compare(example.load_outputs(), actual)
    record_property("max_abs_error", max_abs)
    record_property("max_rel_error", max_rel)
    print(f"{name}: max abs error {max_abs:.3g}, max rel error {max_rel:.3g}")
    assert max_rel < 1e-4, f"max abs {max_abs:.3g}, rel {max_rel:.3g}"


@pytest.mark.parametrize("name", QUANTIZED)
def test_quantized_tflite_within_one_step_of_the_interpreter(name, tmp_path, record_property):
    """Tolerance: one quantization step (integer outputs differ by at most 1)."""
    example = _built(name)
    artifact = _compile(example, tmp_path / "out")
    feeds = example.load_inputs()
    meta = _meta(artifact)
    _check_meta(meta, example, feeds)
    assert meta["Model"]["Outputs"][0]["dtype"] == ("uint8" if name.endswith("uint8") else "int8")
    (expected,) = example.load_outputs()
    (actual,) = run_artifact(artifact, feeds, tmp_path / "run")
    assert actual.dtype == expected.dtype
    steps = int(np.max(np.abs(expected.astype(np.int64) - actual.astype(np.int64))))
    changed = int(np.count_nonzero(expected != actual))
    record_property("max_steps", steps)
    print(f"{name}: largest difference {steps} quantization step(s), {changed} of {expected.size} outputs differ")
    assert steps <= 1


def test_keras_nhwc_data_input_config_fails_with_the_nchw_rule(tmp_path):
    example = _built("keras_sequential_cnn")
    with pytest.raises(JobFailure) as err:
        neo_local.compile(
            InputConfig={"S3Uri": example.archive, "Framework": "KERAS", "DataInputConfig": '{"input_1": [2, 32, 32, 3]}'},
            OutputConfig={"S3OutputLocation": str(tmp_path), "TargetDevice": "ml_c4"},
        )
    assert err.value.reason == (
        "ClientError: InputConfiguration: DataInputConfig shape [2, 32, 32, 3] for 'input_1' is in NHWC "
        "(channels last) layout. For KERAS models DataInputConfig is NCHW (channels first), as Neo's API says, "
        "even though the model itself is NHWC: give [2, 3, 32, 32]"
    )


def test_saved_model_without_signature_def_key_lists_the_signatures(tmp_path):
    example = _built("tf_saved_model")
    with pytest.raises(JobFailure) as err:
        neo_local.compile(
            InputConfig={"S3Uri": example.archive, "Framework": "TENSORFLOW", "DataInputConfig": example.data_input_config},
            OutputConfig={"S3OutputLocation": str(tmp_path), "TargetDevice": "ml_c4"},
        )
    assert err.value.reason == (
        "ClientError: InputConfiguration: The SavedModel saved_model/1 has no signature 'serving_default'. "
        "Its signatures are: serving_custom; set signature_def_key in CompilerOptions to one of them"
    )
