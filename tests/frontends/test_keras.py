"""KERAS frontend: .h5/.keras archives, NCHW DataInputConfig for NHWC models, multi-input
functional models, custom layers, and the exact errors a user sees."""

import json

import numpy as np
import pytest

from neo_local.api.errors import JobFailure
from neo_local.frontends import get_frontend
from neo_local.frontends.base import ImportOptions
from neo_local.frontends.keras import resolve_channels_first

IMAGE = [("input_1", (None, 32, 32, 3), "float32")]
TWO = [("image", (None, 24, 24, 3), "float32"), ("features", (None, 6), "float32")]


def _reason(fn, *args):
    with pytest.raises(JobFailure) as err:
        fn(*args)
    return err.value.reason


# --- DataInputConfig against the model (no TensorFlow needed) -----------------------------


def test_nchw_shape_becomes_a_transpose_to_the_models_nhwc():
    [(name, shape, dtype, perm)] = resolve_channels_first(IMAGE, '{"input_1": [1, 3, 32, 32]}')
    assert (name, shape, dtype, perm) == ("input_1", (1, 3, 32, 32), "float32", (0, 2, 3, 1))


def test_vector_inputs_are_taken_as_given_and_the_model_order_is_kept():
    resolved = resolve_channels_first(TWO, '{"features": [4, 6], "image": [4, 3, 24, 24]}')
    assert [(n, s, p) for n, s, _, p in resolved] == [
        ("image", (4, 3, 24, 24), (0, 2, 3, 1)), ("features", (4, 6), None)
    ]


def test_list_form_follows_the_models_input_order():
    resolved = resolve_channels_first(TWO, "[[1, 3, 24, 24], [1, 6]]")
    assert [(n, s) for n, s, _, _ in resolved] == [("image", (1, 3, 24, 24)), ("features", (1, 6))]


def test_nhwc_shape_is_refused_with_the_nchw_rule():
    assert _reason(resolve_channels_first, IMAGE, '{"input_1": [1, 32, 32, 3]}') == (
        "ClientError: InputConfiguration: DataInputConfig shape [1, 32, 32, 3] for 'input_1' is in NHWC "
        "(channels last) layout. For KERAS models DataInputConfig is NCHW (channels first), as Neo's API says, "
        "even though the model itself is NHWC: give [1, 3, 32, 32]"
    )


def test_unknown_input_name_lists_the_models_inputs():
    assert _reason(resolve_channels_first, TWO, '{"input_1": [1, 3, 24, 24], "features": [1, 6]}') == (
        "ClientError: InputConfiguration: Input 'input_1' in DataInputConfig is not an input of the model. "
        "The model's inputs are (NCHW): image [?, 3, 24, 24] float32, features [?, 6] float32"
    )


def test_shape_that_fits_neither_layout():
    assert _reason(resolve_channels_first, IMAGE, '{"input_1": [1, 3, 64, 64]}') == (
        "ClientError: InputConfiguration: DataInputConfig shape [1, 3, 64, 64] for 'input_1' does not match the "
        "model's input: the model takes [?, 32, 32, 3] (NHWC), so DataInputConfig should be [?, 3, 32, 32] (NCHW)"
    )


def test_data_input_config_is_required_and_the_error_shows_an_example():
    assert _reason(resolve_channels_first, TWO, None) == (
        "ClientError: InputConfiguration: DataInputConfig is required for KERAS models, in NCHW (channels first) "
        'layout, e.g. {"image": [1, 3, 24, 24], "features": [1, 6]}. '
        "The model's inputs are: image [?, 3, 24, 24] float32, features [?, 6] float32"
    )


def test_every_input_needs_a_shape():
    assert _reason(resolve_channels_first, TWO, '{"image": [1, 3, 24, 24]}') == (
        "ClientError: InputConfiguration: DataInputConfig has no shape for 'features'; give every input in NCHW "
        '(channels first), e.g. {"image": [1, 3, 24, 24], "features": [1, 6]}'
    )


# --- real Keras files ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """A Sequential CNN as .h5 and a two-input functional model as .keras, seeded."""
    from models.tf_models import sequential_cnn, two_input_functional

    root = tmp_path_factory.mktemp("keras")
    seq, two = sequential_cnn(seed=0, size=16), two_input_functional(seed=0)
    (root / "seq").mkdir()
    seq.save(root / "seq" / "cnn.h5")
    (root / "two").mkdir()
    two.save(root / "two" / "two_input.keras")
    return root, seq, two


def _load(folder, config):
    return get_frontend("KERAS").load(folder, ImportOptions(data_input_config=config))


def _run_relax(imported, feeds):
    """Build the imported module for this CPU (default pipeline) and run it in-process."""
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.compile(imported.ir, target="llvm"), tvm.cpu())
    out = vm["main"](*(tvm.runtime.tensor(feeds[s.name]) for s in imported.inputs))
    return [o.numpy() for o in out] if len(imported.outputs) > 1 else [out.numpy()]


def _max_errors(expected, actual):
    errors = [float(np.max(np.abs(e - a))) for e, a in zip(expected, actual)]
    scale = max(float(np.max(np.abs(e))) for e in expected)
    return max(errors), max(errors) / scale


def test_sequential_h5_takes_nchw_and_matches_keras(keras_files):
    root, seq, _ = keras_files
    imported = _load(root / "seq", '{"input_1": [2, 3, 16, 16]}')
    assert [(s.name, s.shape, s.dtype) for s in imported.inputs] == [("input_1", (2, 3, 16, 16), "float32")]
    assert [(o.name, o.shape) for o in imported.outputs] == [("dense_1", (2, 10))]
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype("float32")
    keras_out = [seq(np.transpose(x, (0, 2, 3, 1)), training=False).numpy()]
    reference = imported.reference({"input_1": x})
    compiled = _run_relax(imported, {"input_1": x})
    abs_err, rel_err = _max_errors(keras_out, compiled)
    print(f"sequential .h5: max abs error {abs_err:.3g}, relative {rel_err:.3g}")
    assert rel_err < 1e-4
    np.testing.assert_allclose(reference[0], keras_out[0], rtol=0, atol=1e-6)


def test_functional_two_inputs_two_outputs(keras_files):
    root, _, two = keras_files
    imported = _load(root / "two", '{"features": [3, 6], "image": [3, 3, 24, 24]}')
    assert [(s.name, s.shape) for s in imported.inputs] == [("image", (3, 3, 24, 24)), ("features", (3, 6))]
    assert [(o.name, o.shape) for o in imported.outputs] == [("score", (3, 1)), ("classes", (3, 4))]
    rng = np.random.default_rng(1)
    feeds = {"image": rng.standard_normal((3, 3, 24, 24)).astype("float32"),
             "features": rng.standard_normal((3, 6)).astype("float32")}
    keras_out = [o.numpy() for o in two([np.transpose(feeds["image"], (0, 2, 3, 1)), feeds["features"]], training=False)]
    abs_err, rel_err = _max_errors(keras_out, _run_relax(imported, feeds))
    print(f"two-input .keras: max abs error {abs_err:.3g}, relative {rel_err:.3g}")
    assert rel_err < 1e-4


def test_nhwc_config_on_a_real_model(keras_files):
    root, _, _ = keras_files
    with pytest.raises(JobFailure, match=r"is in NHWC \(channels last\) layout.*give \[1, 3, 16, 16\]"):
        _load(root / "seq", '{"input_1": [1, 16, 16, 3]}')


def _custom_layer_model():
    import keras

    from models.tf_models import _fresh

    _fresh(0)

    @keras.saving.register_keras_serializable(package="acme")
    class Swish2(keras.layers.Layer):
        def call(self, x):
            return x * keras.ops.sigmoid(2.0 * x)

    model = keras.Sequential([keras.Input((8,), name="x"), keras.layers.Dense(4), Swish2(), keras.layers.Dense(2)])
    return model, Swish2


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_custom_layers_are_named(tmp_path, suffix):
    import keras

    model, cls = _custom_layer_model()
    model.save(tmp_path / f"model{suffix}")
    # the job's worker never has the user's Python classes: forget the registration
    keras.saving.get_custom_objects().pop("acme>Swish2", None)
    assert keras.saving.get_registered_object("acme>Swish2") is None
    with pytest.raises(JobFailure) as err:
        _load(tmp_path, '{"x": [1, 8]}')
    assert err.value.reason == (
        f"ClientError: InputConfiguration: model{suffix} uses custom layer(s) Swish2 that are not part of Keras; "
        "their Python code is not in the archive, so the model cannot be loaded. Replace them with built-in "
        "layers, or export the model as a TensorFlow SavedModel (Framework TENSORFLOW) or ONNX"
    )


def test_two_model_files(tmp_path):
    (tmp_path / "a.h5").write_bytes(b"x")
    (tmp_path / "b.keras").write_bytes(b"x")
    with pytest.raises(JobFailure) as err:
        _load(tmp_path, '{"x": [1, 8]}')
    assert err.value.reason == (
        "ClientError: InputConfiguration: Exactly one .h5 or .keras file is allowed for KERAS models, found 2: "
        "a.h5, b.keras"
    )


def test_no_model_file(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(JobFailure) as err:
        _load(tmp_path, '{"x": [1, 8]}')
    assert err.value.reason == (
        "ClientError: InputConfiguration: No .h5 or .keras file found in the archive for KERAS models. "
        "The archive contains: weights.bin"
    )


def test_a_file_keras_cannot_read(tmp_path):
    (tmp_path / "model.h5").write_bytes(b"not an hdf5 file" * 8)
    with pytest.raises(JobFailure) as err:
        _load(tmp_path, '{"x": [1, 8]}')
    assert err.value.reason.startswith("ClientError: InputConfiguration: model.h5 could not be loaded by Keras 3.")


def test_bert_like_int_inputs_convert(tmp_path):
    """Token inputs stay int32 and rank 2; exact GELU's erfc is rewritten for ONNX."""
    from models.tf_models import bert_encoder

    model = bert_encoder(seed=0, seq_len=8, vocab=50, dim=16, heads=2, layers=1)
    model.save(tmp_path / "bert.keras")
    imported = _load(tmp_path, json.dumps({"input_ids": [1, 8], "token_type_ids": [1, 8]}))
    assert [(s.name, s.shape, s.dtype) for s in imported.inputs] == [
        ("input_ids", (1, 8), "int32"), ("token_type_ids", (1, 8), "int32")
    ]
    assert [(o.name, o.shape) for o in imported.outputs] == [("logits", (1, 3)), ("sequence_output", (1, 8, 16))]
    rng = np.random.default_rng(2)
    feeds = {"input_ids": rng.integers(0, 50, (1, 8)).astype("int32"),
             "token_type_ids": (np.arange(8) >= 5).astype("int32")[None]}
    expected = [o.numpy() for o in model([feeds["input_ids"], feeds["token_type_ids"]], training=False)]
    abs_err, rel_err = _max_errors(expected, _run_relax(imported, feeds))
    print(f"bert-like .keras: max abs error {abs_err:.3g}, relative {rel_err:.3g}")
    assert rel_err < 1e-4


def test_dict_inputs_and_outputs(tmp_path):
    """A functional model built on dicts: inputs by name, outputs in key order (as Keras returns them)."""
    import keras

    from models.tf_models import _fresh

    _fresh(0)
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    model = keras.Model({"a": a, "b": b}, {"sum": keras.layers.Dense(2)(keras.layers.Concatenate()([a, b])),
                                           "first": keras.layers.Dense(1)(a)})
    model.save(tmp_path / "dicts.keras")
    imported = _load(tmp_path, '{"b": [2, 3], "a": [2, 4]}')
    assert [o.name for o in imported.outputs] == ["first", "sum"]
    rng = np.random.default_rng(3)
    feeds = {"a": rng.standard_normal((2, 4)).astype("float32"), "b": rng.standard_normal((2, 3)).astype("float32")}
    out = model(feeds, training=False)
    abs_err, rel_err = _max_errors([out["first"].numpy(), out["sum"].numpy()], _run_relax(imported, feeds))
    assert rel_err < 1e-4
