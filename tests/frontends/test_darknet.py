"""DarkNet frontend: archive rules, DataInputConfig (optional: [net] has the size), layer
semantics checked against numpy and against the torch implementation in models/darknet_writer
(through the job's reference: onnxruntime on our translation), and the errors a user sees."""

import json
import re
import struct
import tarfile

import numpy as np
import pytest
import torch

from models.darknet_writer import CLASSIFIER_CFG, DarknetTorch, build_darknet_example, yolov3_tiny_cfg
from example_archives import CACHE as EXAMPLE_CACHE
from neo_local.api.errors import JobFailure
from neo_local.frontends import get_frontend
from neo_local.frontends.base import ImportOptions

CACHE = EXAMPLE_CACHE / "darknet"
TINY = """\
[net]
width=8
height=8
channels=3

[convolutional]
filters=4
size=3
stride=1
pad=1
activation=leaky
"""


def _write(tmp_path, cfg, values=None, name="net", header=struct.pack("<iiiQ", 0, 2, 0, 0)):
    (tmp_path / f"{name}.cfg").write_text(cfg)
    body = b"" if values is None else np.asarray(values, "<f4").tobytes()
    (tmp_path / f"{name}.weights").write_bytes(header + body)
    return tmp_path


def _write_random(tmp_path, cfg, seed=0, name="net"):
    (tmp_path / f"{name}.cfg").write_text(cfg)
    DarknetTorch(cfg).randomize(seed).save_weights(tmp_path / f"{name}.weights")
    return DarknetTorch(cfg).load_weights(tmp_path / f"{name}.weights").eval()


def _load(model_dir, config=None):
    return get_frontend("DARKNET").load(model_dir, ImportOptions(data_input_config=config))


def _error(model_dir, config=None) -> str:
    with pytest.raises(JobFailure) as err:
        _load(model_dir, config)
    return err.value.reason


def _run(imported, x):
    return imported.reference({"data": x.astype(np.float32)})


# --------------------------------------------------------------------------- archive rules


def test_no_cfg(tmp_path):
    (tmp_path / "net.weights").write_bytes(b"\x00" * 20)
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: No .cfg file found in the archive for DARKNET models. "
        "The archive contains: net.weights"
    )


def test_two_cfgs(tmp_path):
    _write(tmp_path, TINY, name="a")
    (tmp_path / "b.cfg").write_text(TINY)
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: Exactly one .cfg file is allowed for DARKNET models, found 2: a.cfg, b.cfg"
    )


def test_no_weights(tmp_path):
    (tmp_path / "net.cfg").write_text(TINY)
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: No .weights file found in the archive for DARKNET models. "
        "The archive contains: net.cfg"
    )


def test_two_weights(tmp_path):
    _write(tmp_path, TINY)
    (tmp_path / "old.weights").write_bytes(b"\x00" * 20)
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: Exactly one .weights file is allowed for DARKNET models, "
        "found 2: net.weights, old.weights"
    )


def test_cfg_must_start_with_net(tmp_path):
    _write(tmp_path, TINY.replace("[net]", "[convolutional]", 1))
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: net.cfg must start with a [net] section, found [convolutional] at line 1"
    )


def test_unsupported_layer_types_are_listed(tmp_path):
    cfg = TINY + "[reorg]\nstride=2\n[region]\nclasses=2\n[reorg]\nstride=2\n[maxpool]\nsize=2\n"
    _write(tmp_path, cfg)
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: net.cfg uses layer types the compiler does not support: "
        "[region] (1 layer), [reorg] (2 layers)"
    )


def test_unsupported_activation(tmp_path):
    _write(tmp_path, TINY.replace("leaky", "plse"), np.zeros(4 + 4 * 27))
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: net.cfg: layer 0 [convolutional] (line 6): activation=plse is not supported "
        "(supported: elu, hardtan, leaky, linear, logistic, mish, relu, relu6, selu, swish, tanh)"
    )


@pytest.mark.parametrize("count,needs", [(10, 112), (200, 112)])
def test_weights_that_do_not_match_the_cfg(tmp_path, count, needs):
    _write(tmp_path, TINY, np.zeros(count))
    assert _error(tmp_path) == (
        f"ClientError: InputConfiguration: net.weights holds {count} float32 values after its header but net.cfg "
        f"needs {needs} with the input [1, 3, 8, 8]; are they the cfg and weights of the same network?"
    )


# --------------------------------------------------------------------------- DataInputConfig


def test_input_shape_is_derived_from_net(tmp_path):
    _write(tmp_path, TINY, np.zeros(112))
    imported = _load(tmp_path)
    assert [(s.name, s.shape, s.dtype) for s in imported.inputs] == [("data", (1, 3, 8, 8), "float32")]
    assert json.loads(imported.derived["DerivedDataInputConfig"]) == {"data": [1, 3, 8, 8]}
    assert [(o.name, o.shape) for o in imported.outputs] == [("convolutional_0", (1, 4, 8, 8))]


def test_given_shape_resizes_the_network(tmp_path):
    _write(tmp_path, TINY, np.zeros(112))
    imported = _load(tmp_path, '{"data": [2, 3, 16, 12]}')
    assert imported.derived == {}
    assert imported.outputs[0].shape == (2, 4, 16, 12)
    assert _load(tmp_path, "[[1, 3, 4, 4]]").inputs[0].shape == (1, 3, 4, 4)


def test_wrong_input_name(tmp_path):
    _write(tmp_path, TINY, np.zeros(112))
    assert _error(tmp_path, '{"input0": [1, 3, 8, 8]}') == (
        "ClientError: InputConfiguration: Input 'input0' in DataInputConfig is not an input of the model. "
        "The model's inputs are: data [1, 3, 8, 8] float32"
    )


def test_nhwc_shape_is_refused(tmp_path):
    _write(tmp_path, TINY, np.zeros(112))
    assert _error(tmp_path, '{"data": [1, 8, 8, 3]}') == (
        "ClientError: InputConfiguration: DataInputConfig shape [1, 8, 8, 3] for 'data' has 8 channels but net.cfg "
        "says channels=3; the shape is NCHW: [batch, channels, height, width], e.g. [1, 3, 8, 8]"
    )
    assert _error(tmp_path, '{"data": [3, 8, 8]}') == (
        "ClientError: InputConfiguration: DataInputConfig shape [3, 8, 8] for 'data' must be NCHW: "
        "[batch, channels, height, width]"
    )


def test_size_needed_when_net_has_none(tmp_path):
    _write(tmp_path, TINY.replace("width=8\nheight=8\n", ""), np.zeros(112))
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: DataInputConfig is required: the [net] section of net.cfg gives no width, "
        'height and channels (found width=0, height=0, channels=3); e.g. {"data": [1, 3, 416, 416]}'
    )
    assert _load(tmp_path, '{"data": [1, 3, 8, 8]}').outputs[0].shape == (1, 4, 8, 8)


def test_input_size_that_does_not_suit_yolo(tmp_path):
    _write_random(tmp_path, yolov3_tiny_cfg(160), name="yolov3-tiny")
    reason = _error(tmp_path, '{"data": [1, 3, 140, 140]}')
    line = yolov3_tiny_cfg(160).splitlines().index("layers = -1, 8")  # 1-based: the [route] line above it
    assert reason == (
        f"ClientError: InputConfiguration: yolov3-tiny.cfg: layer 20 [route] (line {line}): joins layers whose "
        "heights and widths differ: layer 19 (128x10x10), layer 8 (256x9x9); the input size does not suit this "
        "network (for YOLO networks, height and width must be multiples of 32)"
    )


# --------------------------------------------------------------------------- layer semantics


def _darknet_maxpool(x, size, stride, padding):
    """darknet's forward_maxpool_layer, loop for loop."""
    b, c, h, w = x.shape
    out_h, out_w = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
    offset = -(padding // 2)
    out = np.empty((b, c, out_h, out_w), np.float32)
    for i in range(out_h):
        for j in range(out_w):
            best = np.full((b, c), -np.inf, np.float32)
            for n in range(size):
                for m in range(size):
                    y, xx = offset + i * stride + n, offset + j * stride + m
                    if 0 <= y < h and 0 <= xx < w:
                        best = np.maximum(best, x[:, :, y, xx])
            out[:, :, i, j] = best
    return out


@pytest.mark.parametrize(
    "size,stride,padding,hw",
    [(2, 1, None, 5), (2, 2, None, 7), (2, 2, None, 8), (3, 2, None, 9), (3, 1, 2, 6), (3, 3, 0, 10), (5, 2, 1, 9)],
)
def test_maxpool_matches_darknet(tmp_path, size, stride, padding, hw):
    pad = "" if padding is None else f"padding={padding}\n"
    cfg = f"[net]\nwidth={hw}\nheight={hw}\nchannels=2\n[maxpool]\nsize={size}\nstride={stride}\n{pad}"
    _write(tmp_path, cfg)
    x = np.random.default_rng(size * 10 + stride).standard_normal((1, 2, hw, hw)).astype(np.float32) - 3
    [y] = _run(_load(tmp_path), x)
    expected = _darknet_maxpool(x, size, stride, size - 1 if padding is None else padding)
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y, expected)


def test_yolo_layer_output(tmp_path):
    """Logistic on x, y, objectness and classes per anchor; w, h raw; scale_x_y on x and y."""
    cfg = ("[net]\nwidth=3\nheight=2\nchannels=14\n"
           "[yolo]\nmask=0,1\nanchors=10,14, 23,27, 37,58\nclasses=2\nnum=3\nscale_x_y=1.05\n")
    _write(tmp_path, cfg)
    imported = _load(tmp_path)
    assert [(o.name, o.shape) for o in imported.outputs] == [("yolo_0", (1, 14, 2, 3))]
    x = np.random.default_rng(0).standard_normal((1, 14, 2, 3)).astype(np.float32) * 3
    [y] = _run(imported, x)
    sig = 1 / (1 + np.exp(-x))
    expected = x.copy()
    for a in (0, 7):
        expected[:, a:a + 2] = sig[:, a:a + 2] * 1.05 - 0.025
        expected[:, a + 4:a + 7] = sig[:, a + 4:a + 7]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_yolo_channels_must_fit_the_anchors(tmp_path):
    _write(tmp_path, "[net]\nwidth=3\nheight=3\nchannels=12\n[yolo]\nmask=0,1\nclasses=2\nnum=3\n")
    assert _error(tmp_path) == (
        "ClientError: InputConfiguration: net.cfg: layer 0 [yolo] (line 5): expects 2 anchors x (2 classes + 5) "
        "= 14 input channels, its input has 12"
    )


def test_upsample_activation_and_weighted_shortcut(tmp_path):
    cfg = ("[net]\nwidth=3\nheight=2\nchannels=2\n[upsample]\nstride=2\nscale=0.5\n"
           "[activation]\nactivation=relu\n[shortcut]\nfrom=-2\nalpha=2\nbeta=0.5\nactivation=leaky\n")
    _write(tmp_path, cfg)
    x = np.random.default_rng(0).standard_normal((1, 2, 2, 3)).astype(np.float32)
    [y] = _run(_load(tmp_path), x)
    u = 0.5 * x.repeat(2, axis=2).repeat(2, axis=3)
    s = 2 * np.maximum(u, 0) + 0.5 * u
    np.testing.assert_allclose(y, np.where(s > 0, s, 0.1 * s), rtol=1e-6, atol=1e-7)


def test_transposed_connected_weights(tmp_path):
    """major > 1000 marks connected weights stored [inputs, outputs]."""
    cfg = "[net]\nwidth=2\nheight=1\nchannels=2\n[connected]\noutput=3\nactivation=linear\n"
    rng = np.random.default_rng(0)
    biases, w = rng.standard_normal(3), rng.standard_normal((3, 4))
    _write(tmp_path, cfg, np.concatenate([biases, w.T.ravel()]), header=struct.pack("<iiii", 1001, 0, 0, 0))
    x = rng.standard_normal((1, 2, 1, 2)).astype(np.float32)
    [y] = _run(_load(tmp_path), x)
    np.testing.assert_allclose(y.reshape(3), w @ x.ravel() + biases, rtol=1e-5)


@pytest.mark.parametrize("name", ["darknet_classifier", "yolov3_tiny_160"])
def test_networks_match_the_torch_implementation(tmp_path, name):
    example = build_darknet_example(name, CACHE)
    with tarfile.open(example.archive) as tar:
        tar.extractall(tmp_path, filter="data")
    imported = _load(tmp_path)
    assert json.loads(imported.derived["DerivedDataInputConfig"]) == {"data": example.inputs[0]["shape"]}
    actual = imported.reference(example.load_inputs())
    for e, a in zip(example.load_outputs(), actual):
        err = float(np.max(np.abs(e - a)))
        print(f"{name}: max abs error {err:.3g}, relative {err / float(np.max(np.abs(e))):.3g}")
        assert err <= 1e-5 * float(np.max(np.abs(e)))
    assert imported.reference_label == (
        "onnxruntime running neo-local's own ONNX translation of the DARKNET model (DARKNET itself cannot run here)"
    )


def test_the_yolov3_tiny_cfg_has_darknets_layer_numbering():
    names = [n for n in re.findall(r"^\[(\w+)\]", yolov3_tiny_cfg(), re.M)][1:]
    assert [i for i, n in enumerate(names) if n == "yolo"] == [16, 23]


def test_torch_reference_reads_back_what_it_wrote(tmp_path):
    a = DarknetTorch(CLASSIFIER_CFG).randomize(3)
    a.save_weights(tmp_path / "c.weights", version=(0, 1, 0))  # 32-bit seen
    b = DarknetTorch(CLASSIFIER_CFG).load_weights(tmp_path / "c.weights")
    x = torch.randn(1, 3, 76, 76)
    torch.testing.assert_close(a(x), b(x))
