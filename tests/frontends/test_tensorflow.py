"""TENSORFLOW frontend: SavedModel directories (signatures, signature_def_key) and frozen
GraphDefs (tensor names, output_names), numerics against TensorFlow, and the exact errors."""

import json
import shutil

import numpy as np
import pytest

from neo_local.api.errors import JobFailure
from neo_local.frontends import get_frontend
from neo_local.frontends.base import ImportOptions


def _load(folder, config=None, **options):
    return get_frontend("TENSORFLOW").load(folder, ImportOptions(data_input_config=config, compiler_options=options))


def _reason(folder, config=None, **options):
    with pytest.raises(JobFailure) as err:
        _load(folder, config, **options)
    return err.value.reason


def _run_relax(imported, feeds):
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.compile(imported.ir, target="llvm"), tvm.cpu())
    out = vm["main"](*(tvm.runtime.tensor(feeds[s.name]) for s in imported.inputs))
    return [o.numpy() for o in out] if len(imported.outputs) > 1 else [out.numpy()]


def _rel_error(expected, actual):
    err = max(float(np.max(np.abs(e - a))) for e, a in zip(expected, actual))
    return err, err / max(float(np.max(np.abs(e))) for e in expected)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A SavedModel in TF Serving's layout (model/1/) whose only signature is serving_custom."""
    from models.tf_models import _tf, custom_signature_module

    tf = _tf()
    root = tmp_path_factory.mktemp("saved")
    module = custom_signature_module(seed=0)
    tf.saved_model.save(module, str(root / "model" / "1"), signatures={"serving_custom": module.serve})
    return root, module


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    from models.tf_models import frozen_cnn

    root = tmp_path_factory.mktemp("frozen")
    graph_def, serve = frozen_cnn(seed=0, size=16)
    (root / "frozen_cnn.pb").write_bytes(graph_def.SerializeToString())
    return root, graph_def, serve


# --- SavedModel ----------------------------------------------------------------------------


def test_saved_model_signature_matches_tensorflow(saved_model):
    root, module = saved_model
    imported = _load(root, '{"images": [2, 32, 32, 3], "bias": [2, 5]}', signature_def_key="serving_custom")
    assert imported.source_file == "model/1"
    assert [(s.name, s.shape) for s in imported.inputs] == [("bias", (2, 5)), ("images", (2, 32, 32, 3))]
    assert [(o.name, o.shape) for o in imported.outputs] == [("logits", (2, 5)), ("probabilities", (2, 5))]
    rng = np.random.default_rng(0)
    feeds = {"bias": rng.standard_normal((2, 5)).astype("float32"),
             "images": rng.standard_normal((2, 32, 32, 3)).astype("float32")}
    out = module.serve(**feeds)
    expected = [out["logits"].numpy(), out["probabilities"].numpy()]
    for e, r in zip(expected, imported.reference(feeds)):
        np.testing.assert_allclose(r, e, rtol=0, atol=1e-6)
    abs_err, rel_err = _rel_error(expected, _run_relax(imported, feeds))
    print(f"SavedModel: max abs error {abs_err:.3g}, relative {rel_err:.3g}")
    assert rel_err < 1e-4


def test_missing_signature_lists_the_available_ones(saved_model):
    root, _ = saved_model
    assert _reason(root, '{"images": [1, 32, 32, 3], "bias": [1, 5]}') == (
        "ClientError: InputConfiguration: The SavedModel model/1 has no signature 'serving_default'. "
        "Its signatures are: serving_custom; set signature_def_key in CompilerOptions to one of them"
    )


def test_saved_model_unknown_input_name(saved_model):
    root, _ = saved_model
    assert _reason(root, '{"input": [1, 32, 32, 3]}', signature_def_key="serving_custom") == (
        "ClientError: InputConfiguration: Input 'input' in DataInputConfig is not an input of the model. "
        "The model's inputs are: bias [None, 5] float32, images [None, 32, 32, 3] float32"
    )


def test_saved_model_open_batch_needs_a_shape(saved_model):
    root, _ = saved_model
    with pytest.raises(JobFailure, match=r"Input 'bias' has dynamic dimensions \['\?', 5\]; give its shape"):
        _load(root, None, signature_def_key="serving_custom")


def test_two_saved_models(tmp_path, saved_model):
    root, _ = saved_model
    shutil.copytree(root / "model" / "1", tmp_path / "model" / "1")
    shutil.copytree(root / "model" / "1", tmp_path / "model" / "2")
    assert _reason(tmp_path) == (
        "ClientError: InputConfiguration: Exactly one SavedModel directory is allowed for TensorFlow models, "
        "found 2: model/1, model/2"
    )


def test_saved_model_and_a_frozen_graph(tmp_path, saved_model, frozen):
    shutil.copytree(saved_model[0] / "model", tmp_path / "model")
    shutil.copy(frozen[0] / "frozen_cnn.pb", tmp_path / "frozen_cnn.pb")
    assert _reason(tmp_path) == (
        "ClientError: InputConfiguration: The archive holds a SavedModel (model/1) and frozen graph file(s) "
        "(frozen_cnn.pb); keep one model"
    )


# --- frozen GraphDef -----------------------------------------------------------------------


def test_frozen_graph_matches_tensorflow(frozen):
    root, _, serve = frozen
    imported = _load(root, '{"input:0": [1, 16, 16, 3]}', output_names=["output_tensor:0"])
    assert [(s.name, s.shape) for s in imported.inputs] == [("input:0", (1, 16, 16, 3))]
    assert [(o.name, o.shape) for o in imported.outputs] == [("output_tensor:0", (1, 10))]
    assert imported.derived == {}
    x = np.random.default_rng(1).standard_normal((1, 16, 16, 3)).astype("float32")
    expected = [serve(x).numpy()]
    np.testing.assert_allclose(imported.reference({"input:0": x})[0], expected[0], rtol=0, atol=1e-6)
    abs_err, rel_err = _rel_error(expected, _run_relax(imported, {"input:0": x}))
    print(f"frozen graph: max abs error {abs_err:.3g}, relative {rel_err:.3g}")
    assert rel_err < 1e-4


def test_frozen_graph_shapes_are_derived_and_bare_names_kept(frozen):
    root, _, _ = frozen
    imported = _load(root, None, output_names="output_tensor")
    assert json.loads(imported.derived["DerivedDataInputConfig"]) == {"input:0": [1, 16, 16, 3]}
    # a name without ":0" means the op's first output; the compiled model keeps the name as given
    imported = _load(root, '{"input": [1, 16, 16, 3]}', output_names=["output_tensor:0"])
    assert [s.name for s in imported.inputs] == ["input"]
    x = np.ones((1, 16, 16, 3), "float32")
    assert imported.reference({"input": x})[0].shape == (1, 10)


def test_frozen_graph_needs_output_names(frozen):
    root, _, _ = frozen
    assert _reason(root, '{"input:0": [1, 16, 16, 3]}') == (
        "ClientError: InputConfiguration: frozen_cnn.pb is a frozen graph: give its output tensors in "
        'CompilerOptions, e.g. {"output_names": ["output_tensor:0"]}'
    )


def test_frozen_graph_unknown_output(frozen):
    root, _, _ = frozen
    assert _reason(root, None, output_names=["logits:0"]) == (
        "ClientError: InputConfiguration: output_names: 'logits:0' is not a tensor of frozen_cnn.pb. "
        "Tensors nothing else consumes: Identity:0"
    )


def test_frozen_graph_unknown_input(frozen):
    root, _, _ = frozen
    assert _reason(root, '{"x:0": [1, 16, 16, 3]}', output_names=["output_tensor:0"]) == (
        "ClientError: InputConfiguration: Input 'x:0' in DataInputConfig is not an input of the model. "
        "The model's inputs are: input:0 [1, 16, 16, 3] float32"
    )


def test_pbtxt_is_read(tmp_path, frozen):
    from google.protobuf import text_format

    _, graph_def, _ = frozen
    (tmp_path / "graph.pbtxt").write_text(text_format.MessageToString(graph_def))
    imported = _load(tmp_path, None, output_names=["output_tensor:0"])
    assert imported.source_file == "graph.pbtxt"
    assert imported.outputs[0].shape == (1, 10)


def test_two_graph_files(tmp_path, frozen):
    shutil.copy(frozen[0] / "frozen_cnn.pb", tmp_path / "a.pb")
    shutil.copy(frozen[0] / "frozen_cnn.pb", tmp_path / "b.pb")
    assert _reason(tmp_path, None, output_names=["output_tensor:0"]) == (
        "ClientError: InputConfiguration: Exactly one .pb or .pbtxt file is allowed for TensorFlow models, "
        "found 2: a.pb, b.pb"
    )


def test_nothing_to_load(tmp_path):
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    assert _reason(tmp_path) == (
        "ClientError: InputConfiguration: No SavedModel (saved_model.pb) or frozen graph (.pb or .pbtxt file) "
        "found in the archive for TensorFlow models. The archive contains: labels.txt"
    )


def test_a_graph_with_variables_is_not_frozen(tmp_path):
    from models.tf_models import _tf

    tf = _tf()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (1, 4), name="x")
        w = tf.compat.v1.get_variable("w", (4, 2))
        tf.matmul(x, w, name="y")
    (tmp_path / "model.pb").write_bytes(graph.as_graph_def().SerializeToString())
    assert _reason(tmp_path, None, output_names=["y:0"]) == (
        "ClientError: InputConfiguration: model.pb is not a frozen graph: it holds variables (VarHandleOp). "
        "Freeze it (convert_variables_to_constants_v2) or upload a SavedModel directory instead"
    )


def test_not_a_graph(tmp_path):
    (tmp_path / "model.pb").write_bytes(b"\xff\xfe not a protobuf")
    with pytest.raises(JobFailure, match="ClientError: InputConfiguration: model.pb is not a TensorFlow GraphDef"):
        _load(tmp_path, None, output_names=["y:0"])


def test_unconvertible_operators_are_listed(tmp_path):
    from models.tf_models import _tf

    tf = _tf()

    @tf.function(input_signature=[tf.TensorSpec((2, 4), tf.float32, name="x")])
    def special(x):
        return tf.identity(tf.math.lgamma(x) + tf.math.bessel_i0e(x) + tf.math.lgamma(x * 2.0), name="y")

    graph_def = special.get_concrete_function().graph.as_graph_def()
    (tmp_path / "special.pb").write_bytes(graph_def.SerializeToString())
    assert _reason(tmp_path, None, output_names=["y:0"]) == (
        "ClientError: InputConfiguration: special.pb uses operators the compiler does not support: "
        "BesselI0e (1 node), Lgamma (2 nodes)"
    )


def test_framework_version_is_one_neo_lists():
    frontend = get_frontend("TENSORFLOW")
    assert frontend.framework_version_note("1.15.3").startswith(
        "FrameworkVersion 1.15.3: the model is read with tensorflow-cpu 2.21.0, tf2onnx 1.17.0, onnx "
    )
    with pytest.raises(JobFailure) as err:
        frontend.framework_version_note("2.21")
    assert err.value.reason == (
        "ClientError: InputConfiguration: FrameworkVersion 2.21 is not one Neo supports for TENSORFLOW; use one of 1.15, 2.9"
    )
