"""MXNet frontend: archive rules, DataInputConfig, operator translation checked against torch
(the modules the checkpoints were written from) through the job's own reference (onnxruntime on
our translation), and the errors a user sees."""

import json
import tarfile

import numpy as np
import pytest
import torch
from torch import nn

from models.mxnet_writer import MxReshape, SoftmaxOutput, build_mxnet_example, write_checkpoint, write_ndarray_list
from example_archives import CACHE as EXAMPLE_CACHE
from neo_local.api.errors import JobFailure
from neo_local.frontends import get_frontend
from neo_local.frontends.base import ImportOptions
from neo_local.frontends.mxnet_ops import OPS, infer_reshape

CACHE = EXAMPLE_CACHE / "mxnet"


def _load(model_dir, config='{"data": [1, 3, 8, 8]}'):
    return get_frontend("MXNET").load(model_dir, ImportOptions(data_input_config=config))


def _error(model_dir, config='{"data": [1, 3, 8, 8]}') -> str:
    with pytest.raises(JobFailure) as err:
        _load(model_dir, config)
    return err.value.reason


def _symbol(tmp_path, nodes, heads, params=(), prefix="net", epoch=0):
    """Write a hand-made symbol (nodes as (op, name, attrs, inputs)) and its params."""
    doc = {
        "nodes": [{"op": op, "name": name, "attrs": attrs, "inputs": [[i, o, 0] for i, o in inputs]}
                  for op, name, attrs, inputs in nodes],
        "arg_nodes": [i for i, n in enumerate(nodes) if n[0] == "null"],
        "heads": [[i, o, 0] for i, o in heads],
    }
    (tmp_path / f"{prefix}-symbol.json").write_text(json.dumps(doc))
    (tmp_path / f"{prefix}-{epoch:04d}.params").write_bytes(write_ndarray_list(list(params)))
    return tmp_path


def _conv_net(tmp_path, prefix="net", epoch=0):
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    write_checkpoint(module, {"data": (1, 3, 8, 8)}, tmp_path, prefix, epoch)
    return module


def _check_against_torch(imported, module, feeds, rtol=1e-5):
    with torch.no_grad():
        expected = module(*(torch.from_numpy(v) for v in feeds.values()))
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = imported.reference(feeds)
    for e, a in zip(expected, actual):
        e = e.numpy()
        err = float(np.max(np.abs(e - a)))
        print(f"max abs error {err:.3g}, relative {err / max(float(np.max(np.abs(e))), 1e-6):.3g}")
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * float(np.max(np.abs(e))))


# --------------------------------------------------------------------------- archive rules


def test_no_symbol_file(tmp_path):
    (tmp_path / "net-0000.params").write_bytes(write_ndarray_list([]))
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: No -symbol.json file found in the archive for MXNET models. "
        "The archive contains: net-0000.params"
    )


def test_two_symbol_files(tmp_path):
    _conv_net(tmp_path, "a")
    _conv_net(tmp_path, "b")
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: Exactly one -symbol.json file is allowed for MXNET models, "
        "found 2: a-symbol.json, b-symbol.json"
    )


def test_missing_params_file(tmp_path):
    _conv_net(tmp_path)
    (tmp_path / "net-0000.params").rename(tmp_path / "other-0000.params")
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: No parameters file for net-symbol.json: expected net-NNNN.params "
        "beside it (NNNN is the epoch, e.g. net-0000.params). The archive's .params files: other-0000.params"
    )


def test_several_epochs(tmp_path):
    _conv_net(tmp_path, epoch=0)
    _conv_net(tmp_path, epoch=10)
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: Exactly one net-NNNN.params file is allowed beside net-symbol.json, "
        "found 2: net-0000.params, net-0010.params. Keep only the epoch to compile"
    )


def test_any_epoch_number_is_accepted(tmp_path):
    module = _conv_net(tmp_path, epoch=37)
    imported = _load(tmp_path)
    assert imported.source_file == "net-symbol.json"
    _check_against_torch(imported, module, {"data": np.random.default_rng(0).standard_normal((1, 3, 8, 8), np.float32)})


def test_params_file_that_is_not_one(tmp_path):
    _conv_net(tmp_path)
    (tmp_path / "net-0000.params").write_bytes(b"PK\x03\x04 a zip file, not params")
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: net-0000.params is not an MXNet parameters file: "
        "it does not start with the NDArray list magic 0x112 (found 0x7a20612004034b50)"
    )


def test_symbol_file_that_is_not_one(tmp_path):
    _conv_net(tmp_path)
    (tmp_path / "net-symbol.json").write_text('{"format": "keras"}')
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: net-symbol.json is not an MXNet symbol file: "
        'it has no "nodes" list and "heads" (is it a -symbol.json written by MXNet?)'
    )


# --------------------------------------------------------------------------- DataInputConfig


def test_data_input_config_key_not_an_input(tmp_path):
    _conv_net(tmp_path)
    assert _error(tmp_path, '{"input0": [1, 3, 8, 8]}') == (
        "ClientError: InputConfiguration: Input 'input0' in DataInputConfig is not an input of net-symbol.json. "
        "The symbol's inputs (variables without parameters in net-0000.params) are: data"
    )


def test_data_input_config_is_required(tmp_path):
    _conv_net(tmp_path)
    assert _error(tmp_path, None) == (
        "ClientError: InputConfiguration: DataInputConfig is required for MXNET models: give the shape of each "
        'input of net-symbol.json, e.g. {"data": [1, 3, 224, 224]}. The symbol\'s inputs (variables without '
        "parameters in net-0000.params) are: data"
    )


def test_list_form_and_missing_inputs(tmp_path):
    nodes = [("null", "a", {}, []), ("null", "b", {}, []), ("elemwise_add", "sum", {}, [(0, 0), (1, 0)])]
    _symbol(tmp_path, nodes, [(2, 0)])
    imported = _load(tmp_path, "[[2, 3], [2, 3]]")
    assert [(s.name, s.shape) for s in imported.inputs] == [("a", (2, 3)), ("b", (2, 3))]
    assert [o.name for o in imported.outputs] == ["sum_output"]
    assert _error(tmp_path, '{"a": [2, 3]}') == (
        "ClientError: InputConfiguration: Input 'b' of net-symbol.json has no parameters in net-0000.params "
        "and no shape in DataInputConfig; give the shape of every input: a, b"
    )
    assert _error(tmp_path, "[[2, 3]]") == (
        "ClientError: InputConfiguration: DataInputConfig lists 1 shapes but net-symbol.json has 2 inputs: a, b"
    )


def test_shapes_that_do_not_fit_the_weights(tmp_path):
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(3, 2, ceil_mode=True)).eval()
    write_checkpoint(module, {"data": (1, 3, 8, 8)}, tmp_path, "net")
    # caught by the importer (the node, then TVM's message)
    assert _error(tmp_path, '{"data": [1, 4, 8, 8]}').startswith(
        "ClientError: InputConfiguration: net-symbol.json could not be imported: Conv node '_0': The channel size of "
        "the data"
    )
    # caught while translating: pooling_convention='full' needs the input's shape
    assert _error(tmp_path, '{"data": [1, 3, 8]}').startswith(
        "ClientError: InputConfiguration: net-symbol.json could not be translated with the input shapes "
        "data [1, 3, 8]: [ShapeInferenceError]"
    )


def test_softmax_label_is_not_an_input(tmp_path):
    module = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), SoftmaxOutput()).eval()
    write_checkpoint(module, {"data": (2, 3, 2, 2)}, tmp_path, "net")
    symbol = json.loads((tmp_path / "net-symbol.json").read_text())
    assert "_2_label" in [n["name"] for n in symbol["nodes"]]
    imported = _load(tmp_path, '{"data": [2, 3, 2, 2]}')
    assert [s.name for s in imported.inputs] == ["data"]
    _check_against_torch(imported, module, {"data": np.random.default_rng(1).standard_normal((2, 3, 2, 2), np.float32)})


# --------------------------------------------------------------------------- operators


def test_unsupported_operators_are_listed_at_once(tmp_path):
    nodes = [
        ("null", "data", {}, []),
        ("Foo", "f1", {}, [(0, 0)]),
        ("Activation", "r", {"act_type": "relu"}, [(1, 0)]),
        ("Foo", "f2", {}, [(2, 0)]),
        ("Correlation", "corr", {}, [(3, 0), (3, 0)]),
    ]
    _symbol(tmp_path, nodes, [(4, 0)])
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: net-symbol.json uses operators the compiler does not support: "
        "Correlation (1 node), Foo (2 nodes)"
    )


def test_unsupported_attribute_values_name_the_node(tmp_path):
    nodes = [("null", "data", {}, []),
             ("Pooling", "pool0", {"kernel": "(2, 2)", "pool_type": "lp"}, [(0, 0)])]
    _symbol(tmp_path, nodes, [(1, 0)])
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: net-symbol.json: Pooling node 'pool0': pool_type=lp is not supported "
        "(supported: max, avg, sum)"
    )


def test_batchnorm_fix_gamma_defaults_to_true(tmp_path):
    """MXNet ignores gamma unless fix_gamma is False; eps defaults to 1e-3."""
    rng = np.random.default_rng(0)
    gamma, beta = rng.random(3, np.float32) + 2, rng.standard_normal(3, np.float32)
    mean, var = rng.standard_normal(3, np.float32), rng.random(3, np.float32) + 0.5
    nodes = [("null", "data", {}, []), ("null", "bn_gamma", {}, []), ("null", "bn_beta", {}, []),
             ("null", "bn_moving_mean", {}, []), ("null", "bn_moving_var", {}, []),
             ("BatchNorm", "bn", {}, [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)])]
    params = [("arg:bn_gamma", gamma), ("arg:bn_beta", beta), ("aux:bn_moving_mean", mean), ("aux:bn_moving_var", var)]
    _symbol(tmp_path, nodes, [(5, 0)], params)
    x = rng.standard_normal((1, 3, 4, 4), np.float32)
    [y] = _load(tmp_path, '{"data": [1, 3, 4, 4]}').reference({"data": x})
    c = (slice(None), None, None)
    np.testing.assert_allclose(y, (x - mean[c]) / np.sqrt(var[c] + 1e-3) + beta[c], rtol=1e-5, atol=1e-5)


def test_multi_output_operator_and_output_names(tmp_path):
    nodes = [("null", "data", {}, []),
             ("SliceChannel", "split0", {"num_outputs": "2", "axis": "1", "squeeze_axis": "False"}, [(0, 0)]),
             ("Activation", "act", {"act_type": "softrelu"}, [(1, 1)])]
    _symbol(tmp_path, nodes, [(1, 0), (2, 0)])
    imported = _load(tmp_path, '{"data": [1, 4, 2, 2]}')
    assert [o.name for o in imported.outputs] == ["split0_output0", "act_output"]
    x = np.random.default_rng(0).standard_normal((1, 4, 2, 2), np.float32)
    first, second = imported.reference({"data": x})
    np.testing.assert_allclose(first, x[:, :2], rtol=1e-6)
    np.testing.assert_allclose(second, np.log1p(np.exp(x[:, 2:])), rtol=1e-5)


def test_reshape_special_values():
    assert infer_reshape((2, 3, 4), (0, -1)) == [2, 12]
    assert infer_reshape((2, 3, 4), (-2,)) == [2, 3, 4]
    assert infer_reshape((2, 3, 4), (-3, 4)) == [6, 4]
    assert infer_reshape((2, 3, 4), (0, 0, -4, 2, -1)) == [2, 3, 2, 2]
    assert infer_reshape((2, 3, 4, 5), (-4, 1, 2, -3, -2)) == [1, 2, 12, 5]
    assert infer_reshape((2, 3, 4), (6, 1, -2)) == [6, 1, 4]  # -2 copies what is left (axis 2)
    assert infer_reshape((10, 5, 4), (-1, 0), reverse=True) == [50, 4]
    assert infer_reshape((10, 5, 4), (-1, 0)) == [40, 5]
    with pytest.raises(ValueError, match="cannot infer -1"):
        infer_reshape((2, 3), (4, -1))


def test_reshape_error_names_the_shapes(tmp_path):
    nodes = [("null", "data", {}, []), ("Reshape", "r", {"shape": "(5, -1)"}, [(0, 0)])]
    _symbol(tmp_path, nodes, [(1, 0)])
    assert _error(tmp_path, '{"data": [2, 3]}') == (
        "ClientError: InputConfiguration: net-symbol.json: Reshape node 'r': shape=(5, -1) does not fit the input "
        "shape [2, 3]: cannot infer -1: 6 elements do not divide into [5, 1]"
    )


@pytest.mark.parametrize("name", ["mxnet_ops_mix", "mobilenet_like_mx", "resnet_like_mx"])
def test_networks_match_torch(name, tmp_path):
    """Checkpoints written from torch modules; the translation run by onnxruntime (the job's
    reference) against torch. The compiled artifacts are checked in test_pipeline_mxnet_darknet."""
    example = build_mxnet_example(name, CACHE)
    with tarfile.open(example.archive) as tar:
        tar.extractall(tmp_path, filter="data")
    imported = _load(tmp_path, example.data_input_config)
    actual = imported.reference(example.load_inputs())
    for e, a in zip(example.load_outputs(), actual):
        err = float(np.max(np.abs(e - a)))
        print(f"{name}: max abs error {err:.3g}, relative {err / float(np.max(np.abs(e))):.3g}")
        assert err <= 1e-5 * float(np.max(np.abs(e)))
    assert imported.reference_label == (
        "onnxruntime running neo-local's own ONNX translation of the MXNET model (MXNET itself cannot run here)"
    )


def test_reshape_and_broadcast_in_a_small_graph(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.r = MxReshape((0, -4, 2, -1, -2), (1, 2, 3, 4, 4))

        def forward(self, x):
            y = self.r(x)
            return y * y.mean(2, keepdim=True) - 0.5

    module = Net().eval()
    write_checkpoint(module, {"data": (1, 6, 4, 4)}, tmp_path, "net")
    imported = _load(tmp_path, '{"data": [1, 6, 4, 4]}')
    _check_against_torch(imported, module, {"data": np.random.default_rng(3).standard_normal((1, 6, 4, 4), np.float32)})


def test_operator_coverage():
    required = {
        "Convolution", "BatchNorm", "Activation", "LeakyReLU", "Pooling", "FullyConnected", "Flatten",
        "elemwise_add", "_Plus", "broadcast_add", "_plus_scalar", "_mul_scalar", "elemwise_mul", "broadcast_mul",
        "Concat", "Reshape", "softmax", "SoftmaxOutput", "SoftmaxActivation", "Dropout", "clip", "transpose",
        "mean", "Deconvolution",
    }
    assert required <= set(OPS)
