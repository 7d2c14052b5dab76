"""TFLITE frontend: float32 and quantized (int8/uint8) flatbuffers through TVM's Relax TFLite
importer, derived DataInputConfig, numerics against the TFLite interpreter, exact errors."""

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from neo_local.api.errors import JobFailure
from neo_local.frontends import get_frontend
from neo_local.frontends.base import ImportOptions

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "test-models" / "tf"
INPUT = "serving_default_image:0"


def _tflite_bytes(name):
    """The .tflite file of a cached example (models.tf_models), built on first use."""
    from models.tf_models import build_tf_example

    built = build_tf_example(name, CACHE)
    with tarfile.open(built.archive) as tar:
        (member,) = tar.getmembers()
        return tar.extractfile(member).read()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tflite")
    folders = {}
    for kind in ("float", "int8", "uint8", "int8_float_io"):
        name = "tflite_mobile_cnn" if kind == "float" else f"tflite_mobile_cnn_{kind}"
        folders[kind] = root / kind
        folders[kind].mkdir()
        (folders[kind] / "model.tflite").write_bytes(_tflite_bytes(name))
    return folders


def _load(folder, config=None):
    return get_frontend("TFLITE").load(folder, ImportOptions(data_input_config=config))


def _reason(folder, config=None):
    with pytest.raises(JobFailure) as err:
        _load(folder, config)
    return err.value.reason


def _compiled(imported):
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.compile(imported.ir, target="llvm"), tvm.cpu())

    def run(feeds):
        out = vm["main"](*(tvm.runtime.tensor(feeds[s.name]) for s in imported.inputs))
        return [o.numpy() for o in out] if len(imported.outputs) > 1 else [out.numpy()]

    return run


def _image(seed, shape, dtype, quantization=None):
    x = np.random.default_rng(seed).standard_normal(shape).astype("float32")
    if quantization is None:
        return x
    scale, zero = quantization
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)


def test_float_model_derives_its_shape_and_matches_the_interpreter(models):
    imported = _load(models["float"])
    assert [(s.name, s.shape, s.dtype) for s in imported.inputs] == [(INPUT, (1, 32, 32, 3), "float32")]
    assert [(o.name, o.shape, o.dtype) for o in imported.outputs] == [("StatefulPartitionedCall_1:0", (1, 10), "float32")]
    assert json.loads(imported.derived["DerivedDataInputConfig"]) == {INPUT: [1, 32, 32, 3]}
    assert imported.tolerance is None
    run = _compiled(imported)
    worst = 0.0
    for seed in range(3):
        feeds = {INPUT: _image(seed, (1, 32, 32, 3), "float32")}
        expected, actual = imported.reference(feeds)[0], run(feeds)[0]
        worst = max(worst, float(np.max(np.abs(expected - actual)) / np.max(np.abs(expected))))
    print(f"float tflite: max relative error {worst:.3g}")
    assert worst < 1e-4


def test_open_batch_takes_the_given_shape(models):
    imported = _load(models["float"], json.dumps({INPUT: [3, 32, 32, 3]}))
    assert imported.inputs[0].shape == (3, 32, 32, 3) and imported.outputs[0].shape == (3, 10)
    assert imported.derived == {}
    feeds = {INPUT: _image(4, (3, 32, 32, 3), "float32")}
    expected, actual = imported.reference(feeds)[0], _compiled(imported)(feeds)[0]  # interpreter resized
    assert expected.shape == (3, 10)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4 * float(np.max(np.abs(expected))))


def test_float_model_on_the_scheduled_cpu_pipeline(models):
    """The stem reads the NHWC image in place (NCHW3c with one block, not transposed first).
    The pooling head, a mean over H and W without kept dims, reduces a blocked conv's output to
    (N, C/8, 8): summed one vector per pixel by the generic schedule, not by dlight's Reduction
    rule one channel at a time (2.8 -> 0.4 us, a seventh of this model's run)."""
    import tvm
    from tvm import relax

    from neo_local.backends import cpu_schedule

    if " avx2" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("the host cannot run AVX2 code")
    imported = _load(models["float"])
    target = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "core-avx2"}
    opt, stats = cpu_schedule.optimize(imported.ir, target)
    assert stats["dlight"] == 0 and stats["unscheduled"] == 0, stats
    kernels = [gv.name_hint for gv, f in opt.functions.items() if isinstance(f, tvm.tirx.PrimFunc)]
    assert not [k for k in kernels if "transpose" in k], kernels
    mean = next(f for gv, f in opt.functions.items() if gv.name_hint == "mean")
    assert mean.script().count("T.vectorized(T.int64(8))") >= 2, mean.script()
    vm = relax.VirtualMachine(tvm.compile(opt, target=tvm.target.Target(target)), tvm.cpu())
    feeds = {INPUT: _image(0, (1, 32, 32, 3), "float32")}
    expected, got = imported.reference(feeds)[0], vm["main"](tvm.runtime.tensor(feeds[INPUT])).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * float(np.max(np.abs(expected))))


@pytest.mark.parametrize("kind", ["int8", "uint8"])
def test_quantized_model_builds_on_the_scheduled_cpu_pipeline(models, kind):
    """Channels-last QDQ: the requantize constants were (1, C, 1, 1), along NHWC's H, and the
    blocked layout pass failed on them ("Cannot broadcast from 5 to 4": the plain build, 7x the
    interpreter's time). Within one step of the interpreter, built by the scheduled pipeline."""
    import tvm
    from tvm import relax

    from neo_local.backends import cpu_schedule

    if " avx2" not in Path("/proc/cpuinfo").read_text():
        pytest.skip("the host cannot run AVX2 code")
    buffer = (models[kind] / "model.tflite").read_bytes()
    imported = _load(models[kind])
    ex, stats = cpu_schedule.compile_cpu(imported.ir, {"kind": "llvm", "mtriple": "x86_64-linux-gnu",
                                                       "mcpu": "core-avx2"})
    assert stats["conv"] + stats["depthwise"] >= 4 and stats["unscheduled"] == 0, stats
    vm = relax.VirtualMachine(ex, tvm.cpu())
    feeds = {INPUT: _image(0, (1, 32, 32, 3), kind, _input_quantization(buffer))}
    got = vm["main"](tvm.runtime.tensor(feeds[INPUT])).numpy()
    assert int(np.max(np.abs(imported.reference(feeds)[0].astype(int) - got.astype(int)))) <= 1


@pytest.mark.parametrize("kind,dtype", [("int8", "int8"), ("uint8", "uint8")])
def test_quantized_model_within_one_step_of_the_interpreter(models, kind, dtype):
    """Tolerance: one quantization step, i.e. integer outputs differ by at most 1."""
    import tflite

    from neo_local.frontends.tflite import quantized_tolerance

    buffer = (models[kind] / "model.tflite").read_bytes()
    model = tflite.Model.GetRootAsModel(buffer, 0)
    quantization = _input_quantization(buffer)
    imported = _load(models[kind])
    assert [(s.name, s.dtype) for s in imported.inputs] == [(INPUT, dtype)]
    assert imported.outputs[0].dtype == dtype
    # what the pipeline's verification allows: one step per two quantized operators (8 to 10 here)
    assert imported.tolerance == quantized_tolerance(model, model.Subgraphs(0))
    assert 4 <= imported.tolerance <= 5
    run = _compiled(imported)
    steps = []
    for seed in range(5):
        feeds = {INPUT: _image(seed, (1, 32, 32, 3), dtype, quantization)}
        expected, actual = imported.reference(feeds)[0], run(feeds)[0]
        steps.append(int(np.max(np.abs(expected.astype(int) - actual.astype(int)))))
    print(f"{kind} tflite: largest difference per input, in quantization steps: {steps}")
    assert max(steps) <= 1


def test_quantized_model_with_float_io_within_one_step(models):
    imported = _load(models["int8_float_io"])
    assert imported.inputs[0].dtype == "float32"
    step = 1 / 256  # the softmax output's scale
    assert imported.tolerance / step in (4, 5)  # steps of the output, not of the raw int8
    run = _compiled(imported)
    worst = 0.0
    for seed in range(5):
        feeds = {INPUT: _image(seed, (1, 32, 32, 3), "float32")}
        worst = max(worst, float(np.max(np.abs(imported.reference(feeds)[0] - run(feeds)[0]))))
    print(f"int8 tflite with float io: max abs error {worst:.3g} ({worst / step:.2f} steps)")
    assert worst <= step + 1e-7


def _input_quantization(buffer):
    from models.tf_models import tflite_io

    (detail,), _ = tflite_io(buffer)
    return detail["quantization"]


def test_unknown_input_name(models):
    assert _reason(models["float"], '{"image": [1, 32, 32, 3]}') == (
        "ClientError: InputConfiguration: Input 'image' in DataInputConfig is not an input of the model. "
        f"The model's inputs are: {INPUT} [1, 32, 32, 3] float32"
    )


def test_shape_the_model_cannot_take(models):
    with pytest.raises(JobFailure, match=rf"DataInputConfig shape \[1, 3, 32, 32\] for '{INPUT}' does not match"):
        _load(models["float"], json.dumps({INPUT: [1, 3, 32, 32]}))


def test_unsupported_operators_are_listed(tmp_path):
    from tensorflow.compiler.tf2xla.python import xla

    from models.tf_models import _tf

    tf = _tf()

    @tf.function(input_signature=[tf.TensorSpec((4, 4), tf.float32), tf.TensorSpec((2, 2), tf.float32)])
    def update(x, u):
        return xla.dynamic_update_slice(x, u, tf.constant([1, 1])) * 2.0

    converter = tf.lite.TFLiteConverter.from_concrete_functions([update.get_concrete_function()], update)
    (tmp_path / "update.tflite").write_bytes(converter.convert())
    assert _reason(tmp_path) == (
        "ClientError: InputConfiguration: update.tflite uses operators the compiler does not support: "
        "DYNAMIC_UPDATE_SLICE (1 node)"
    )


def test_quantized_operator_the_importer_lacks(tmp_path):
    """Keras' Flatten leaves a SHAPE op on a quantized tensor, which the importer cannot lower."""
    import keras

    from models.tf_models import _fresh, to_tflite

    _fresh(0)
    model = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    (tmp_path / "flat.tflite").write_bytes(to_tflite(model, "int8-io"))
    reason = _reason(tmp_path)
    assert reason.startswith(
        "ClientError: InputConfiguration: flat.tflite uses operators the compiler does not support: "
        "The following quantized TFLite operators are not supported in frontend TFLite yet: 'SHAPE'."
    ), reason


def test_two_model_files(tmp_path):
    (tmp_path / "a.tflite").write_bytes(b"x")
    (tmp_path / "b.tflite").write_bytes(b"x")
    assert _reason(tmp_path) == (
        "ClientError: InputConfiguration: Exactly one .tflite file is allowed for TFLITE models, found 2: "
        "a.tflite, b.tflite"
    )


def test_not_a_tflite_file(tmp_path):
    (tmp_path / "model.tflite").write_bytes(io.BytesIO(b"\x00" * 64).getvalue())
    assert _reason(tmp_path) == (
        "ClientError: InputConfiguration: model.tflite is not a TensorFlow Lite model (no TFL3 flatbuffer identifier)"
    )
