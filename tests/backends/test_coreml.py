"""The Core ML backend: Neo's DataInputConfig forms for coreml, the readers' refusals, and the
converted ML Program read back from disk and compared field by field with the request.

coremltools 9 cannot evaluate an ML Program off Apple's systems (prediction needs the Core ML
framework; no MIL interpreter ships with it), so no numbers are compared here: the saved spec is.
"""

import shutil
from pathlib import Path

import pytest

from coreml_models import LABELS, keras_dir, saved_model_dir, torchscript_dir
from neo_local.api.errors import JobFailure
from neo_local.backends import coreml
from neo_local.backends.coreml_check import NOT_RUN, check_saved_model
from neo_local.backends.coreml_inputs import CoreMLInput, ImagePreprocessing, parse_coreml_inputs
from neo_local.backends.coreml_source import load
from neo_local.frontends import get_frontend
from neo_local.frontends.base import ImportOptions
from neo_local.targets.spec import TargetSpec

TARGET = TargetSpec(name="coreml", os="MACOS_IOS", arch="ANY", tvm_target={}, backend="coreml")
IMAGE = '"type": "Image", "bias": [-1, -1, -1], "scale": 0.007843137255'


@pytest.fixture(scope="module")
def torch_dir(tmp_path_factory):
    return torchscript_dir(tmp_path_factory.mktemp("torchscript"))


@pytest.fixture(scope="module")
def keras_model_dir(tmp_path_factory):
    return keras_dir(tmp_path_factory.mktemp("keras"))


def _convert(framework, model_dir, config, tmp_path, **options):
    """Read, convert and save; the saved spec (read back from disk), the checked detail, the build."""
    import coremltools as ct

    model = load(get_frontend(framework), model_dir, ImportOptions(data_input_config=config, compiler_options=options))
    built = coreml.build(model, TARGET, tmp_path / "artifact")
    detail = check_saved_model(tmp_path / "artifact", model.ir)
    return ct.utils.load_spec(str(tmp_path / "artifact" / coreml.PACKAGE)), detail, built


# --- DataInputConfig forms -----------------------------------------------------------------


def test_neo_forms_parse():
    assert parse_coreml_inputs('{"input_1": [1, 224, 224, 3]}') == (CoreMLInput("input_1", (1, 224, 224, 3), (), (1, 224, 224, 3)),)
    assert parse_coreml_inputs('{"input_1": {"shape": ["1..10", 224, 224, 3]}}') == (
        CoreMLInput("input_1", ((1, 10), 224, 224, 3), (), (1, 224, 224, 3)),
    )
    enumerated = parse_coreml_inputs(
        '{"input_1": {"shape": [[1,224,224,3], [1,160,160,3]], "default_shape": [1,160,160,3]}}'
    )
    assert enumerated == (CoreMLInput("input_1", (), ((1, 224, 224, 3), (1, 160, 160, 3)), (1, 160, 160, 3)),)
    image = parse_coreml_inputs(
        f'[{{"shape": [[1,3,224,224], [1,3,160,160]], "default_shape": [1,3,224,224], {IMAGE}}}]'
    )
    assert image[0].name is None and image[0].image == ImagePreprocessing((-1.0, -1.0, -1.0), 0.007843137255)
    assert parse_coreml_inputs('[[1, 3, 16, 16]]')[0].default == (1, 3, 16, 16)
    assert parse_coreml_inputs('{"x": {"shape": ["2..2", 3]}}')[0].shape == (2, 3)  # a range of one size is a size
    assert parse_coreml_inputs(None) is None


@pytest.mark.parametrize(
    "config, message",
    [
        ('{"x": {"shape": ["1..", 3]}}',
         "DataInputConfig 'x' has dimension '1..'; a dimension is a positive integer or a range such as \"1..10\""),
        ('{"x": {"shape": ["10..1", 3]}}',
         "DataInputConfig 'x' has range '10..1'; a range \"lower..upper\" needs 1 <= lower <= upper"),
        ('{"x": {"shape": [[1, 3], [1, 3, 4]]}}',
         "DataInputConfig 'x' enumerated shapes must all have the same rank, got [[1, 3], [1, 3, 4]]"),
        ('{"x": {"shape": [[1, 3], [1, 3]]}}', "DataInputConfig 'x' lists an enumerated shape twice: [[1, 3], [1, 3]]"),
        ('{"x": {"shape": [[1, 3], [2, 3]], "default_shape": [4, 3]}}',
         "DataInputConfig 'x' \"default_shape\" [4, 3] is not one of the enumerated shapes [[1, 3], [2, 3]]"),
        ('{"x": {"shape": ["1..10", 3], "default_shape": [11, 3]}}',
         "DataInputConfig 'x' \"default_shape\" [11, 3] is not within \"shape\" ['1..10', 3]"),
        ('{"x": {"shape": [1, 3], "type": "image", "bias": [0], "scale": 1}}',
         "DataInputConfig 'x' has \"type\" 'image'; the allowed values are Tensor and Image"),
        ('{"x": {"shape": [1, 3, 8, 8], "type": "Image", "scale": 1}}',
         "DataInputConfig 'x' is an Image input without bias; Image inputs need both, e.g. \"bias\": [-1, -1, -1], "
         "\"scale\": 0.007843137255"),
        ('{"x": {"shape": [1, 3, 8, 8], "bias": [0, 0, 0]}}',
         "DataInputConfig 'x' gives bias, which apply only to \"type\": \"Image\" inputs"),
        ('{"x": {"shape": [1, 3, 8, 8], "type": "Image", "bias": [0, 0, 0], "scale": 0}}',
         "DataInputConfig 'x' \"scale\" must be a non-zero number, got 0"),
        ('{"x": {"shape": [1, 3, 8, 8], "means": [0, 0, 0]}}',
         "DataInputConfig 'x' has unknown key(s) means; the keys for TargetDevice coreml are shape, default_shape, "
         "type, bias, scale"),
        ('{"x": {"default_shape": [1, 3]}}', "DataInputConfig 'x' has no \"shape\""),
        ('[{"shape": [0, 3]}]',
         "DataInputConfig input 0 has dimension 0; a dimension is a positive integer or a range such as \"1..10\""),
        ('"1,3,8,8"', "DataInputConfig for TargetDevice coreml must be an object of inputs or a list of them"),
    ],
)
def test_bad_forms_say_what_to_fix(config, message):
    with pytest.raises(JobFailure) as err:
        parse_coreml_inputs(config)
    assert err.value.reason.startswith(f"ClientError: InputConfiguration: {message}")


# --- what the readers refuse ---------------------------------------------------------------


@pytest.mark.parametrize(
    "framework, config, options, message",
    [
        ("ONNX", '[[1, 3, 16, 16]]', {},
         "InputConfiguration: TargetDevice coreml converts models with coremltools, which reads PYTORCH (TorchScript "
         "(.pt/.pth)); KERAS (.h5/.keras models); TENSORFLOW (SavedModels); it has no converter for ONNX models."),
        ("PYTORCH", None, {}, "InputConfiguration: DataInputConfig is required for TargetDevice coreml"),
        ("PYTORCH", '[[1, 3, 16, 16], [1, 3, 16, 16]]', {},
         "InputConfiguration: DataInputConfig gives 2 input(s) but model.pth has 1: input0"),
        ("PYTORCH", '[[1, 3, 16, 16]]', {"class_labels": "imagenet.txt"},
         "OutputConfiguration: CompilerOptions class_labels file 'imagenet.txt' is not in the model archive. "
         "Text files in the archive: labels.txt"),
        ("PYTORCH", '[[1, 3, 16, 16]]', {"mcpu": "skylake"},
         "OutputConfiguration: CompilerOptions mcpu: not used by TargetDevice coreml; its options are class_labels"),
        ("PYTORCH", '[{"shape": [1, 4, 16, 16], "type": "Image", "bias": [0, 0, 0, 0], "scale": 1}]', {},
         "InputConfiguration: DataInputConfig 'input0' is an Image input, which needs a 4-D NCHW shape with 1 "
         "(grayscale) or 3 (RGB) channels fixed in dimension 1; got [1, 4, 16, 16]"),
        ("PYTORCH", '[{"shape": [1, 3, 16, 16], "type": "Image", "bias": [0], "scale": 1}]', {},
         "InputConfiguration: DataInputConfig 'input0' has 1 bias value(s) for an Image with 3 channel(s); give one "
         "per channel"),
    ],
)
def test_refusals(torch_dir, framework, config, options, message):
    with pytest.raises(JobFailure) as err:
        load(get_frontend(framework), torch_dir, ImportOptions(data_input_config=config, compiler_options=options))
    assert err.value.reason.startswith(f"ClientError: {message}")


def test_keras_input_names_are_the_models(keras_model_dir):
    with pytest.raises(JobFailure) as err:
        load(get_frontend("KERAS"), keras_model_dir, ImportOptions(data_input_config='{"data": [1, 16, 16, 3]}'))
    assert err.value.reason == (
        "ClientError: InputConfiguration: Input 'data' in DataInputConfig is not an input of model.keras. "
        "Its inputs are: input_1"
    )


# --- the converted model, read back --------------------------------------------------------


def test_torchscript_image_enumerated_classifier(torch_dir, tmp_path):
    config = f'[{{"shape": [[1,3,16,16], [1,3,8,8]], "default_shape": [1,3,16,16], {IMAGE}}}]'
    spec, detail, built = _convert("PYTORCH", torch_dir, config, tmp_path, class_labels="labels.txt")
    assert spec.WhichOneof("Type") == "mlProgram" and spec.specificationVersion == 6
    (feature,) = spec.description.input
    image = feature.type.imageType
    assert (feature.name, image.width, image.height, image.ColorSpace.Name(image.colorSpace)) == ("input0", 16, 16, "RGB")
    assert [(s.height, s.width) for s in image.enumeratedSizes.sizes] == [(16, 16), (8, 8)]
    assert [o.name for o in spec.description.output] == ["classLabel", "classLabel_probs"]
    assert spec.description.predictedFeatureName == "classLabel"
    assert detail.startswith(NOT_RUN)
    assert "scale 0.00784313772, bias [-1.0, -1.0, -1.0]" in detail
    assert "with the 3 labels of labels.txt" in detail
    assert built.runtime == "coreml" and built.library == "model.mlpackage"
    assert built.model_meta["Inputs"] == [{
        "name": "input0", "shape": [1, 3, 16, 16], "dtype": "float32", "type": "Image",
        "enumerated_shapes": [[1, 3, 16, 16], [1, 3, 8, 8]], "bias": [-1.0, -1.0, -1.0], "scale": 0.007843137255,
    }]
    assert built.details["ClassLabels"] == "3 labels from labels.txt"
    labels = [
        v.immediateValue.tensor.strings.values[0]
        for op in spec.mlProgram.functions["main"].block_specializations["CoreML5"].operations if op.type == "classify"
        for v in op.inputs["classes"].arguments[0].value.immediateValue.list.values
    ]
    assert tuple(labels) == LABELS


def test_torchscript_range_tensor_named_by_request(torch_dir, tmp_path):
    spec, detail, built = _convert(
        "PYTORCH", torch_dir, '{"x": {"shape": ["1..10", 3, "8..32", 16], "default_shape": [2, 3, 16, 16]}}', tmp_path
    )
    (feature,) = spec.description.input
    array = feature.type.multiArrayType
    assert feature.name == "x" and list(array.shape) == [2, 3, 16, 16]
    assert [(r.lowerBound, r.upperBound) for r in array.shapeRange.sizeRanges] == [(1, 10), (3, 3), (8, 32), (16, 16)]
    assert [o.name for o in spec.description.output] == ["output0"]
    assert built.model_meta["Outputs"] == [{"name": "output0", "type": "multiArrayType", "dtype": "float32"}]
    assert "input x Tensor 2x3x16x16 (ranges 1..10 x 3 x 8..32 x 16)" in detail


def test_grayscale_image_with_ranges(tmp_path):
    import torch

    from models.export import to_torchscript

    to_torchscript(torch.nn.Conv2d(1, 2, 3), (torch.zeros(1, 1, 16, 16),), tmp_path / "gray.pt")
    config = '[{"shape": [1, 1, "8..64", "8..64"], "default_shape": [1, 1, 16, 16], "type": "Image", "bias": [-0.5], "scale": 0.25}]'
    spec, detail, _ = _convert("PYTORCH", tmp_path, config, tmp_path)
    image = spec.description.input[0].type.imageType
    assert image.ColorSpace.Name(image.colorSpace) == "GRAYSCALE" and (image.height, image.width) == (16, 16)
    sizes = image.imageSizeRange
    assert (sizes.heightRange.lowerBound, sizes.heightRange.upperBound) == (8, 64)
    assert (sizes.widthRange.lowerBound, sizes.widthRange.upperBound) == (8, 64)
    assert "Image (GRAYSCALE) 1x1x16x16 (ranges 1 x 1 x 8..64 x 8..64), scale 0.25, bias [-0.5]" in detail


def test_keras_nhwc_image_enumerated(keras_model_dir, tmp_path):
    config = f'{{"input_1": {{"shape": [[1,16,16,3], [1,8,8,3]], "default_shape": [1,8,8,3], {IMAGE}}}}}'
    spec, detail, _ = _convert("KERAS", keras_model_dir, config, tmp_path)
    image = spec.description.input[0].type.imageType
    assert (spec.description.input[0].name, image.height, image.width) == ("input_1", 8, 8)
    assert sorted((s.height, s.width) for s in image.enumeratedSizes.sizes) == [(8, 8), (16, 16)]
    assert "Image (RGB) 1x8x8x3 (enumerated 1x16x16x3, 1x8x8x3)" in detail


def test_keras_sequential_h5(tmp_path):
    """coremltools 9 fails on Keras 3 Sequential models ('output_names'): they are converted as functional ones."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.save(str(tmp_path / "model.h5"))
    spec, detail, _ = _convert("KERAS", tmp_path, '[[1, 8, 8, 3]]', tmp_path)
    assert list(spec.description.input[0].type.multiArrayType.shape) == [1, 8, 8, 3]
    assert f"input {spec.description.input[0].name} Tensor 1x8x8x3" in detail


def test_saved_model_signature_with_a_batch_range(tmp_path_factory, tmp_path):
    model_dir = saved_model_dir(tmp_path_factory.mktemp("saved_model"))
    spec, detail, _ = _convert("TENSORFLOW", model_dir, '{"input_1": {"shape": ["1..4", 16, 16, 3]}}', tmp_path)
    array = spec.description.input[0].type.multiArrayType
    assert [(r.lowerBound, r.upperBound) for r in array.shapeRange.sizeRanges] == [(1, 4), (16, 16), (16, 16), (3, 3)]
    assert "input input_1 Tensor 1x16x16x3 (ranges 1..4 x 16 x 16 x 3)" in detail


def test_check_finds_a_spec_that_differs_from_the_request(torch_dir, tmp_path):
    model = load(get_frontend("PYTORCH"), torch_dir, ImportOptions(data_input_config='[{"shape": ["1..10", 3, 16, 16]}]'))
    coreml.build(model, TARGET, tmp_path / "artifact")
    other = load(get_frontend("PYTORCH"), torch_dir, ImportOptions(data_input_config='[{"shape": ["1..8", 3, 16, 16]}]'))
    with pytest.raises(JobFailure) as err:
        check_saved_model(tmp_path / "artifact", other.ir)
    assert err.value.reason.startswith(
        "InternalError: the Core ML model does not match the request: input input0 shape ranges "
        "((1, 10), (3, 3), (16, 16), (16, 16)), requested ((1, 8), (3, 3), (16, 16), (16, 16))"
    )


def test_conversion_failure_is_a_client_error(torch_dir, tmp_path):
    shutil.copy(torch_dir / "model.pth", tmp_path / "model.pth")
    with pytest.raises(JobFailure) as err:
        _convert("PYTORCH", tmp_path, '[[1, 5, 16, 16]]', tmp_path)
    assert err.value.reason.startswith("ClientError: InputConfiguration: coremltools 9.0 could not convert model.pth: ")
