"""models.quantized: onnxruntime's QDQ int8 model of a float example, built once per key."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from models.quantized import build_quantized_example, onnxruntime_outputs  # noqa: E402


def test_qdq_resnet_like_is_built_once_with_per_channel_weights(tmp_path):
    import onnx
    from onnx import numpy_helper

    built = build_quantized_example("resnet_like_qdq", tmp_path)
    with tarfile.open(built.archive) as tar:
        assert tar.getnames() == [built.model_file]
        (tmp_path / "m.onnx").write_bytes(tar.extractfile(built.model_file).read())
    model = onnx.load(tmp_path / "m.onnx")
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weights = [inits[n.input[0]] for n in model.graph.node
               if n.op_type == "DequantizeLinear" and inits.get(n.input[0]) is not None and inits[n.input[0]].ndim == 4]
    assert weights and all(w.dtype == np.int8 and np.abs(w.astype(int)).max() <= 64 for w in weights)  # 7-bit
    with np.load(built.inputs_npz) as z:
        feeds = {k: z[k] for k in z.files}
    with np.load(built.outputs_npz) as z:
        np.testing.assert_array_equal(z["output0"], onnxruntime_outputs(tmp_path / "m.onnx", feeds)[0])
    again = build_quantized_example("resnet_like_qdq", tmp_path)
    assert again.cached and again.key == built.key
