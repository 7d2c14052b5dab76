"""neo-local's ONNX converters and the function-op inlining: each small graph is imported as the
ONNX frontend imports it, compiled for llvm and compared with onnxruntime on seeded inputs."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from neo_local.api.errors import JobFailure
from neo_local.frontends import onnx_converters
from neo_local.frontends.onnx_converters import importer_converts, register
from neo_local.frontends.onnx_converters.tvm_hook import our_converters, tvm_convert_map
from neo_local.frontends.onnx_prepass import prepass
from neo_local.frontends.onnx_import import onnxruntime_reference
from onnx_compare import compile_and_compare, onnx_model, run_compiled, seeded

T, B, I, H = 5, 2, 3, 4  # sequence length, batch, input size, hidden size


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _recurrent_model(op, gates, direction="forward", layout=0, with_bias=True, with_initial=True,
                     with_seq_lens=False, peepholes=False, **attrs):
    """A one-node RNN/GRU/LSTM graph; weights are seeded initializers, X (and the initial states)
    are graph inputs."""
    nd = 2 if direction == "bidirectional" else 1
    batch_first = layout == 1
    x_shape = [B, T, I] if batch_first else [T, B, I]
    state_shape = [B, nd, H] if batch_first else [nd, B, H]
    inits = [numpy_helper.from_array(seeded(nd, gates * H, I, seed=1, scale=0.5), "W"),
             numpy_helper.from_array(seeded(nd, gates * H, H, seed=2, scale=0.5), "R")]
    names = ["X", "W", "R", "", "", ""]
    if with_bias:
        inits.append(numpy_helper.from_array(seeded(nd, 2 * gates * H, seed=3, scale=0.5), "B"))
        names[3] = "B"
    if with_seq_lens:
        inits.append(numpy_helper.from_array(np.array([T, 3], np.int32), "lens"))
        names[4] = "lens"
    inputs = [_f32("X", x_shape)]
    states = ["initial_h", "initial_c"][: 2 if op == "LSTM" else 1]
    if with_initial:
        names[5:] = states
        inputs += [_f32(s, state_shape) for s in states]
    if peepholes:
        inits.append(numpy_helper.from_array(seeded(nd, 3 * H, seed=4), "P"))
        names += [""] * (8 - len(names))
        names[7] = "P"
    outputs = ["Y", "Y_h", "Y_c"][: 3 if op == "LSTM" else 2]
    y_shape = [B, T, nd, H] if batch_first else [T, nd, B, H]
    node = helper.make_node(op, names, outputs, hidden_size=H, direction=direction, layout=layout, **attrs)
    model = onnx_model([node], inputs, [_f32(outputs[0], y_shape)] + [_f32(o, state_shape) for o in outputs[1:]],
                       inits, opset=14)
    feeds = {"X": seeded(*x_shape, seed=5)}
    if with_initial:
        feeds.update({s: seeded(*state_shape, seed=6 + k) for k, s in enumerate(states)})
    return model, feeds


DIRECTIONS = ["forward", "reverse", "bidirectional"]


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_lstm_directions_with_initial_states(direction):
    compile_and_compare(*_recurrent_model("LSTM", 4, direction))


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_gru_directions_with_initial_state(direction):
    compile_and_compare(*_recurrent_model("GRU", 3, direction))


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_rnn_directions_with_initial_state(direction):
    compile_and_compare(*_recurrent_model("RNN", 1, direction))


@pytest.mark.parametrize("op, gates", [("LSTM", 4), ("GRU", 3), ("RNN", 1)])
def test_batch_first_layout_without_bias_or_initial_state(op, gates):
    """onnxruntime refuses layout=1, so the yardstick is onnxruntime on the layout-0 model with
    the same weights, its inputs and outputs transposed."""
    seq_first, feeds = _recurrent_model(op, gates, "bidirectional", with_bias=False, with_initial=False)
    batch_first, _ = _recurrent_model(op, gates, "bidirectional", layout=1, with_bias=False, with_initial=False)
    expected = onnxruntime_reference(seq_first.SerializeToString())(feeds)
    got = run_compiled(batch_first, {"X": feeds["X"].transpose(1, 0, 2).copy()})
    np.testing.assert_allclose(got[0], expected[0].transpose(2, 0, 1, 3), rtol=1e-5, atol=1e-6)
    for g, e in zip(got[1:], expected[1:]):
        np.testing.assert_allclose(g, e.transpose(1, 0, 2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op, gates", [("LSTM", 4), ("GRU", 3), ("RNN", 1)])
def test_sequence_lengths_shorter_than_the_input(op, gates):
    """Batch entry 1 is 3 steps long: its outputs past step 3 are zeros, its final state is the
    one at step 3, and the reverse direction starts there."""
    compile_and_compare(*_recurrent_model(op, gates, "bidirectional", with_seq_lens=True))


def test_lstm_peepholes_input_forget_and_clip():
    compile_and_compare(*_recurrent_model("LSTM", 4, "bidirectional", peepholes=True, input_forget=1, clip=0.7))


@pytest.mark.parametrize("op, options, marked", [
    ("LSTM", {}, [("lstm", 0), ("lstm", 1)]),
    ("LSTM", {"clip": 0.7}, []), ("LSTM", {"peepholes": True}, []), ("LSTM", {"input_forget": 1}, []),
    ("LSTM", {"with_seq_lens": True}, []),
    ("GRU", {"linear_before_reset": 1}, [("gru", 0), ("gru", 1)]), ("GRU", {}, []),
    ("GRU", {"linear_before_reset": 1, "activations": ["Sigmoid", "Relu"] * 2}, []),
])
def test_plain_recurrence_directions_are_functions_a_backend_may_replace(op, options, marked):
    """A plain LSTM's or GRU's (linear_before_reset, torch's) directions are private functions
    marked ``RECURRENCE_ATTR`` (the scheduled CPU pipeline runs each as one kernel); a clip,
    peepholes, coupled gates, other activations or sequence lengths keep the steps inline."""
    from neo_local.frontends.base import RECURRENCE_ATTR, REVERSE_ATTR, TensorSpec
    from neo_local.frontends.onnx_import import import_onnx

    model, feeds = _recurrent_model(op, 4 if op == "LSTM" else 3, "bidirectional", **options)
    mod, _ = import_onnx(model, tuple(TensorSpec(n, a.shape, str(a.dtype)) for n, a in feeds.items()), "m.onnx")
    found = sorted((str(f.attrs[RECURRENCE_ATTR]), int(f.attrs[REVERSE_ATTR]))
                   for gv, f in mod.functions_items() if gv.name_hint != "main")
    assert found == marked


def test_gru_linear_before_reset():
    compile_and_compare(*_recurrent_model("GRU", 3, "bidirectional", linear_before_reset=1))


def test_recurrent_activations_with_alpha_and_beta():
    """Alpha/beta are consumed in order by the activations that take them (LeakyRelu, then
    ScaledTanh); Sigmoid takes none."""
    model, feeds = _recurrent_model(
        "GRU", 3, "bidirectional",
        activations=["LeakyRelu", "ScaledTanh", "Sigmoid", "HardSigmoid"],
        activation_alpha=[0.3, 0.8, 0.25], activation_beta=[1.5, 0.4],
    )
    compile_and_compare(model, feeds)


@pytest.mark.parametrize("p", [1, 2])
def test_lp_normalization_with_a_zero_row(p):
    x = seeded(3, 4)
    x[1] = 0.0
    model = onnx_model([helper.make_node("LpNormalization", ["x"], ["y"], p=p, axis=1)], [_f32("x", [3, 4])],
                       [_f32("y", [3, 4])])
    compile_and_compare(model, {"x": x})


@pytest.mark.parametrize("outputs", [["y"], ["y", "mean", "inv_std"]])
def test_layer_normalization_with_and_without_its_statistics_outputs(outputs):
    inits = [numpy_helper.from_array(seeded(3, 4, seed=1), "g"), numpy_helper.from_array(seeded(3, 4, seed=2), "b")]
    stats = [_f32(o, [2, 1, 1]) for o in outputs[1:]]
    model = onnx_model([helper.make_node("LayerNormalization", ["x", "g", "b"], outputs, axis=1, epsilon=1e-3)],
                       [_f32("x", [2, 3, 4])], [_f32("y", [2, 3, 4]), *stats], inits)
    compile_and_compare(model, {"x": seeded(2, 3, 4, scale=3.0)}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axis", [0, -1])
def test_rms_normalization_over_all_axes_and_the_last(axis):
    """axis 0 is computed by our converter (TVM's fails to build it), -1 by TVM's."""
    shape = [2, 3, 4][axis:] if axis == -1 else [2, 3, 4]
    model = onnx_model([helper.make_node("RMSNormalization", ["x", "g"], ["y"], axis=axis, epsilon=1e-3)],
                       [_f32("x", [2, 3, 4])], [_f32("y", [2, 3, 4])],
                       [numpy_helper.from_array(seeded(*shape, seed=1), "g")], opset=23)
    compile_and_compare(model, {"x": seeded(2, 3, 4, scale=3.0)}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("exclusive, reverse", [(0, 0), (1, 1)])
def test_cum_prod_along_a_constant_axis(exclusive, reverse):
    axis = numpy_helper.from_array(np.array(1, np.int64), "axis")
    model = onnx_model([helper.make_node("CumProd", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse)],
                       [_f32("x", [3, 4])], [_f32("y", [3, 4])], [axis], opset=26)
    compile_and_compare(model, {"x": seeded(3, 4) + 1.0})


@pytest.mark.parametrize("dtype", [np.float16])  # onnxruntime has no float64 Elu
def test_elu_in_float16(dtype):
    """TVM's own Elu converter mixes float32 constants into other float types and fails."""
    model = onnx_model([helper.make_node("Elu", ["x"], ["y"], alpha=0.6)], [_qtensor("x", dtype, [3, 4])],
                       [_qtensor("y", dtype, [3, 4])])
    compile_and_compare(model, {"x": seeded(3, 4, scale=2.0).astype(dtype)}, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("time_axis", [0, 1])
def test_reverse_sequence_with_lengths_given_at_run_time(time_axis):
    shape = [4, 3, 2] if time_axis == 0 else [3, 4, 2]
    node = helper.make_node("ReverseSequence", ["x", "lens"], ["y"], time_axis=time_axis, batch_axis=1 - time_axis)
    model = onnx_model([node], [_f32("x", shape), helper.make_tensor_value_info("lens", TensorProto.INT64, [3])],
                       [_f32("y", shape)])
    compile_and_compare(model, {"x": seeded(*shape), "lens": np.array([4, 1, 3], np.int64)})


# --------------------------------------------------------------------------- function ops


def _op_types(model):
    return [n.op_type for n in model.graph.node]


def test_function_ops_the_importer_lacks_are_inlined_and_match():
    """Swish (opset 24) and Celu have no converter: their ONNX function bodies replace them."""
    model = onnx_model(
        [helper.make_node("Swish", ["x"], ["s"], alpha=0.7), helper.make_node("Celu", ["s"], ["y"], alpha=1.3)],
        [_f32("x", [2, 5])], [_f32("y", [2, 5])], opset=24,
    )
    rewritten = prepass(model)
    assert not {"Swish", "Celu"} & set(_op_types(rewritten))
    compile_and_compare(model, {"x": seeded(2, 5, scale=2.0)})


def test_opset23_attention_is_inlined_not_given_to_the_contrib_converter():
    """TVM's "Attention" converter is com.microsoft's: a default-domain Attention node must be
    expanded into its ONNX function body instead."""
    q, k, v = (_f32(n, [1, 2, 3, 4]) for n in "qkv")
    model = onnx_model([helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=1)], [q, k, v],
                       [_f32("y", [1, 2, 3, 4])], opset=23)
    assert "Attention" not in _op_types(prepass(model))
    compile_and_compare(model, {n: seeded(1, 2, 3, 4, seed=s) for s, n in enumerate("qkv")}, rtol=1e-4, atol=1e-5)


def test_attention_with_an_absent_optional_input_before_a_present_one_is_inlined():
    """nonpad_kv_seqlen (input 6) given, past_key/past_value (4, 5) absent: onnx's inliner needs a
    type for the absent "" input to build this context-dependent body."""
    q, k, v = (_f32(n, [2, 2, 3, 4]) for n in "qkv")
    lens = numpy_helper.from_array(np.array([3, 2], np.int64), "lens")
    node = helper.make_node("Attention", ["q", "k", "v", "", "", "", "lens"], ["y"])
    model = onnx_model([node], [q, k, v], [_f32("y", [2, 2, 3, 4])], [lens], opset=24)
    assert "Attention" not in _op_types(prepass(model))
    compile_and_compare(model, {n: seeded(2, 2, 3, 4, seed=s) for s, n in enumerate("qkv")}, rtol=1e-4, atol=1e-5)


def test_a_function_op_with_a_converter_is_not_inlined():
    model = onnx_model(
        [helper.make_node("LayerNormalization", ["x", "g"], ["y"], axis=-1)], [_f32("x", [2, 4])], [_f32("y", [2, 4])],
        [numpy_helper.from_array(np.ones(4, np.float32), "g")],
    )
    assert _op_types(prepass(model)) == ["LayerNormalization"]


def test_importer_converts_knows_domains():
    assert importer_converts("", "LSTM", 14)
    assert not importer_converts("", "Attention", 23)
    assert importer_converts("com.microsoft", "Attention", 17)
    assert not importer_converts("", "Det", 17)


# --------------------------------------------------------------------------- registry and hook


def test_our_converters_are_visible_only_inside_the_hook():
    from tvm.relax.frontend.onnx import onnx_frontend

    assert "LSTM" not in onnx_frontend._get_convert_map()
    with our_converters():
        assert "LSTM" in onnx_frontend._get_convert_map()
        assert "LSTM" not in tvm_convert_map()
    assert "LSTM" not in onnx_frontend._get_convert_map()


def test_registry_rejects_overlapping_opset_ranges(monkeypatch):
    onnx_converters.registered()  # the real converters load before the registry is swapped
    monkeypatch.setattr(onnx_converters, "_REGISTRY", {})
    register("Op", 7, 12)(lambda bb, node: None)
    register("Op", 13)(lambda bb, node: None)
    assert onnx_converters.find("Op", 12).last_opset == 12
    assert onnx_converters.find("Op", 20).first_opset == 13
    assert onnx_converters.find("Op", 6) is None
    with pytest.raises(ValueError, match="overlap"):
        register("Op", 10, 14)(lambda bb, node: None)


# --------------------------------------------------------------------------- quantized


def _q(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _ints(shape, dtype, seed, bits=None):
    """Seeded integers over the dtype's range, or over ``bits`` signed bits."""
    info = np.iinfo(dtype)
    low, high = (info.min, info.max) if bits is None else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return np.random.default_rng(seed).integers(low, high, size=shape, endpoint=True).astype(dtype)


def _qtensor(name, dtype, shape):
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape)


@pytest.mark.parametrize("per_channel", [False, True])
def test_qlinear_conv_grouped_strided_padded_with_bias(per_channel):
    """uint8 activations, int8 weights (per-tensor or per-output-channel scale), int32 bias:
    integer results must equal onnxruntime's exactly. The weights use 7 bits, as quantizers do
    for x86 (``reduce_range``): onnxruntime's u8·s8 kernel on AVX2 saturates pairs of products
    in int16 with full-range weights, and then differs from the exact result."""
    w_scale = np.linspace(0.002, 0.01, 6).astype(np.float32) if per_channel else np.float32(0.004)
    w_zp = np.zeros(6, np.int8) if per_channel else np.int8(0)
    inits = [_q("xs", np.float32(0.02)), _q("xz", np.uint8(120)), _q("w", _ints((6, 2, 3, 3), np.int8, 1, bits=7)),
             _q("ws", w_scale), _q("wz", w_zp), _q("ys", np.float32(0.15)), _q("yz", np.uint8(100)),
             _q("b", _ints((6,), np.int16, 2).astype(np.int32))]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            group=2, pads=[1, 1, 1, 1], strides=[2, 2])
    model = onnx_model([node], [_qtensor("x", np.uint8, [1, 4, 7, 7])], [_qtensor("y", np.uint8, [1, 6, 4, 4])], inits)
    compile_and_compare(model, {"x": _ints((1, 4, 7, 7), np.uint8, 3)}, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_qlinear_matmul_batched(dtype):
    inits = [_q("as", np.float32(0.05)), _q("az", dtype(3)), _q("b", _ints((5, 4), dtype, 1)),
             _q("bs", np.float32(0.03)), _q("bz", dtype(-2 if dtype == np.int8 else 7)),
             _q("ys", np.float32(0.4)), _q("yz", dtype(5))]
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])
    model = onnx_model([node], [_qtensor("a", dtype, [2, 3, 5])], [_qtensor("y", dtype, [2, 3, 4])], inits)
    compile_and_compare(model, {"a": _ints((2, 3, 5), dtype, 2)}, rtol=0, atol=0)


def test_conv_integer_with_zero_points_and_same_padding():
    inits = [_q("w", _ints((3, 2, 3, 3), np.uint8, 1)), _q("xz", np.uint8(128)), _q("wz", np.uint8(120))]
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], auto_pad="SAME_UPPER")
    model = onnx_model([node], [_qtensor("x", np.uint8, [1, 2, 5, 5])], [_qtensor("y", np.int32, [1, 3, 5, 5])], inits)
    compile_and_compare(model, {"x": _ints((1, 2, 5, 5), np.uint8, 2)}, rtol=0, atol=0)


# --------------------------------------------------------------------------- a real recurrent model


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_torch_text_model_exported_to_onnx_matches_torch(cell, tmp_path):
    """Embedding → 2-layer bidirectional batch-first LSTM/GRU → Linear, seeded, exported by
    torch.onnx (as the PyTorch and TorchScript routes do) and compiled: the logits match torch."""
    import onnx
    import torch

    torch.manual_seed(0)

    class TextModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(50, 8)
            self.rnn = getattr(torch.nn, cell)(8, 6, num_layers=2, bidirectional=True, batch_first=True)
            self.head = torch.nn.Linear(12, 3)

        def forward(self, tokens):
            out, _ = self.rnn(self.embed(tokens))
            return self.head(out[:, -1])

    model = TextModel().eval()
    tokens = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(1))
    path = tmp_path / "text.onnx"
    torch.onnx.export(model, (tokens,), str(path), input_names=["tokens"], output_names=["logits"],
                      opset_version=17, dynamo=False)
    exported = onnx.load(str(path))
    assert cell in {n.op_type for n in exported.graph.node}
    got = run_compiled(exported, {"tokens": tokens.numpy()})
    with torch.no_grad():
        expected = model(tokens).numpy()
    np.testing.assert_allclose(got[0], expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- detection: NMS and TopK kernels


def _nms_boxes(center_point_box):
    """Boxes on a 4x4 grid jittered so that neighbours overlap, some with flipped corners."""
    rng = np.random.default_rng(3)
    centres = np.stack(np.meshgrid(np.arange(4.0), np.arange(4.0)), -1).reshape(16, 2) * 0.6
    centres = np.broadcast_to(centres, (2, 16, 2)) + rng.uniform(-0.2, 0.2, (2, 16, 2))
    sizes = rng.uniform(0.5, 1.2, (2, 16, 2))
    if center_point_box:
        return np.concatenate([centres, sizes], -1).astype(np.float32)
    corners = np.concatenate([centres - sizes / 2, centres + sizes / 2], -1)
    corners[:, ::3] = corners[:, ::3][..., [2, 3, 0, 1]]  # every third box lists its corners the other way round
    return corners.astype(np.float32)


@pytest.mark.parametrize("center_point_box", [0, 1])
def test_non_max_suppression_with_thresholds_given_at_run_time(center_point_box):
    """Two batches, three classes; max count, IoU and score thresholds are graph inputs (TVM's
    converter reads them as 0 then); the selected count is data-dependent."""
    scalars = [helper.make_tensor_value_info("max", TensorProto.INT64, [1]), _f32("iou", [1]), _f32("min_score", [])]
    node = helper.make_node("NonMaxSuppression", ["boxes", "scores", "max", "iou", "min_score"], ["selected"],
                            center_point_box=center_point_box)
    model = onnx_model([node], [_f32("boxes", [2, 16, 4]), _f32("scores", [2, 3, 16]), *scalars],
                       [helper.make_tensor_value_info("selected", TensorProto.INT64, ["n", 3])], opset=11)
    scores = np.random.default_rng(4).uniform(0, 1, (2, 3, 16)).astype(np.float32)
    scores[1, 2, 5] = scores[1, 2, 9]  # a tie: the lower index is taken first
    for limit, iou, min_score in [(5, 0.3, 0.2), (16, 0.0, 0.0), (0, 0.5, 0.1)]:
        compile_and_compare(model, {"boxes": _nms_boxes(center_point_box), "scores": scores,
                                    "max": np.array([limit], np.int64), "iou": np.array([iou], np.float32),
                                    "min_score": np.array(min_score, np.float32)})


@pytest.mark.parametrize("axis, largest", [(1, 1), (-1, 0)])
def test_top_k_with_ties_along_an_axis(axis, largest):
    x = np.round(seeded(2, 6, 5, seed=8) * 2) / 2  # many equal values
    k = numpy_helper.from_array(np.array([3], np.int64), "k")
    out_shape = [2, 3, 5] if axis == 1 else [2, 6, 3]
    model = onnx_model([helper.make_node("TopK", ["x", "k"], ["values", "indices"], axis=axis, largest=largest)],
                       [_f32("x", [2, 6, 5])],
                       [_f32("values", out_shape), helper.make_tensor_value_info("indices", TensorProto.INT64, out_shape)],
                       [k], opset=11)
    compile_and_compare(model, {"x": x})


# --------------------------------------------------------------------------- Resize as interpolation matrices


def _resize_model(attrs, roi=None, scales=None, sizes=None, in_shape=(1, 2, 7, 9)):
    inits = [numpy_helper.from_array(np.asarray(v, dtype), name)
             for name, v, dtype in (("roi", roi, np.float32), ("scales", scales, np.float32), ("sizes", sizes, np.int64))
             if v is not None]
    names = ["x", "roi" if roi is not None else "", "scales" if scales is not None else "",
             "sizes" if sizes is not None else ""]
    node = helper.make_node("Resize", names[: 4 if sizes is not None else 3], ["y"], **attrs)
    return onnx_model([node], [_f32("x", list(in_shape))], [_f32("y", ["n", "c", "h", "w"])], inits, opset=19)


@pytest.mark.parametrize("attrs, operands", [
    ({"mode": "cubic", "antialias": 1}, {"scales": [1, 1, 0.6, 0.45]}),
    ({"mode": "linear", "antialias": 1, "axes": [3, 2]}, {"sizes": [4, 3]}),
    ({"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1}, {"scales": [1, 1, 0.8, 1.7]}),
    ({"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"}, {"scales": [1, 1, 0.6, 1.3]}),
    ({"mode": "nearest", "keep_aspect_ratio_policy": "not_smaller", "axes": [2, 3]}, {"sizes": [5, 5]}),
    ({"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "axes": [2, 3],
      "extrapolation_value": 10.0}, {"roi": [0.2, -0.3, 0.9, 1.2], "sizes": [5, 6]}),
])
def test_resize_forms_tvm_gets_wrong_match_onnxruntime(attrs, operands):
    """Non-exact downscales, antialias, axes, exclude_outside, half_pixel_symmetric,
    keep_aspect_ratio_policy, tf_crop_and_resize with extrapolation: each resized axis is a
    constant interpolation matrix."""
    model = _resize_model(attrs, **operands)
    compile_and_compare(model, {"x": seeded(1, 2, 7, 9, seed=9)}, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- edges of ONNX definitions


def _tensor(name, array):
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), list(array.shape))


_INF = np.array([1.0, np.inf, -np.inf, 0.0, -2.5, np.inf], np.float32)
_EDGE_CASES = {
    "isinf_negative_only": (helper.make_node("IsInf", ["a"], ["z"], detect_positive=0), {"a": _INF}, 20, TensorProto.BOOL),
    "bitshift_right_out_of_range": (helper.make_node("BitShift", ["a", "b"], ["z"], direction="RIGHT"),
                                    {"a": np.array([-8, 9, -1, 7, -64, 5], np.int32),
                                     "b": np.array([-3, 0, 5, 31, 32, 40], np.int32)}, 28, TensorProto.INT32),
    "bitshift_left_out_of_range": (helper.make_node("BitShift", ["a", "b"], ["z"], direction="LEFT"),
                                   {"a": np.array([-8, 9, -1, 7, -64, 5], np.int32),
                                    "b": np.array([-3, 0, 5, 31, 32, 40], np.int32)}, 28, TensorProto.INT32),
    "mod_by_infinity": (helper.make_node("Mod", ["a", "b"], ["z"]),
                        {"a": np.array([-3, 3, -1, 1, 2.5, -0.5], np.float32),
                         "b": np.array([np.inf, np.inf, -np.inf, -np.inf, 2, -2], np.float32)}, 28, TensorProto.FLOAT),
    "reduce_max_over_an_empty_axis": (helper.make_node("ReduceMax", ["a", "axes"], ["z"], keepdims=1),
                                      {"a": np.zeros((2, 0, 3), np.float32), "axes": np.array([1], np.int64)}, 20, TensorProto.FLOAT),
    "reduce_min_of_bools": (helper.make_node("ReduceMin", ["a", "axes"], ["z"], keepdims=0),
                            {"a": np.array([[True, False], [True, True]]), "axes": np.array([1], np.int64)}, 20, TensorProto.BOOL),
    "reduce_max_of_rows_all_minus_infinity": (
        helper.make_node("ReduceMax", ["a", "axes"], ["z"], keepdims=1),
        {"a": np.array([[-np.inf, -np.inf], [1.0, -np.inf]], np.float32), "axes": np.array([1], np.int64)}, 18,
        TensorProto.FLOAT),
    "reduce_max_of_rows_all_minus_infinity_axes_attribute": (  # opsets 13-17: axes an attribute
        helper.make_node("ReduceMax", ["a"], ["z"], keepdims=1, axes=[1]),
        {"a": np.array([[-np.inf, -np.inf], [1.0, -np.inf]], np.float32)}, 17, TensorProto.FLOAT),
    "matmul_float16_long_sum": (helper.make_node("MatMul", ["a", "b"], ["z"]),
                                {"a": seeded(4, 1024).astype(np.float16), "b": seeded(1024, 3, seed=1).astype(np.float16)},
                                17, TensorProto.FLOAT16),
    "softmax_float16": (helper.make_node("Softmax", ["a"], ["z"]), {"a": seeded(3, 300, scale=3).astype(np.float16)},
                        17, TensorProto.FLOAT16),
    "space_to_depth_crd": (helper.make_node("SpaceToDepth", ["a"], ["z"], blocksize=2, mode="CRD"),
                           {"a": seeded(1, 3, 4, 6)}, 28, TensorProto.FLOAT),
    "conv_transpose_output_shape": (helper.make_node("ConvTranspose", ["a", "w"], ["z"], strides=[3, 2],
                                                     output_shape=[10, 8]),
                                    {"a": seeded(1, 1, 3, 3), "w": seeded(1, 2, 3, 3, seed=1)}, 17, TensorProto.FLOAT),
}


@pytest.mark.parametrize("case", sorted(_EDGE_CASES))
def test_operator_edges_tvm_gets_wrong_match_onnxruntime(case):
    """IsInf's sign flags, out-of-range shifts, Mod by ±inf, an empty ReduceMax, ReduceMax of
    rows of -inf (fully masked attention rows), bool ReduceMin, float16 MatMul and Softmax
    (summed in float32: within a unit in the last place), SpaceToDepth CRD, ConvTranspose
    output_shape (operands after the first are initializers)."""
    node, arrays, opset, out_type = _EDGE_CASES[case]
    first, *rest = node.input
    inits = [numpy_helper.from_array(arrays[name], name) for name in rest]
    keeps = next((a.i for a in node.attribute if a.name == "keepdims"), 1)
    rank = arrays[first].ndim - (0 if keeps else len(arrays.get("axes", [])))
    model = onnx_model([node], [_tensor(first, arrays[first])],
                       [helper.make_tensor_value_info("z", out_type, [f"d{i}" for i in range(rank)])], inits, opset=opset)
    compile_and_compare(model, {first: arrays[first]}, rtol=1e-3, atol=1e-5)


def test_a_reduce_max_of_a_relu_needs_no_test_for_rows_of_minus_infinity():
    """A relu never gives -inf: its ReduceMax (a PointNet's over its points) is the plain max,
    without a second pass over the values for the rows of -inf."""
    from neo_local.frontends.base import TensorSpec
    from neo_local.frontends.onnx_import import import_onnx

    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("ReduceMax", ["r"], ["z"], keepdims=0, axes=[2])]
    model = onnx_model(nodes, [_f32("x", [1, 3, 5])], [_f32("z", [1, 3])], opset=17)
    mod, _ = import_onnx(model, (TensorSpec("x", (1, 3, 5), "float32"),), "m")
    assert "not_equal" not in mod["main"].script()
    compile_and_compare(model, {"x": seeded(1, 3, 5, seed=6)}, rtol=1e-5, atol=1e-6)


def test_batch_normalization_training_mode_running_statistics():
    names = ["x", "scale", "bias", "mean", "var"]
    arrays = {"scale": seeded(3, seed=1) + 2, "bias": seeded(3, seed=2), "mean": seeded(3, seed=3),
              "var": np.abs(seeded(3, seed=4)) + 0.5}
    node = helper.make_node("BatchNormalization", names, ["y", "running_mean", "running_var"], training_mode=1,
                            momentum=0.7)
    outputs = [_f32("y", [2, 3, 4]), _f32("running_mean", [3]), _f32("running_var", [3])]
    model = onnx_model([node], [_f32("x", [2, 3, 4])], outputs,
                       [numpy_helper.from_array(a, n) for n, a in arrays.items()], opset=15)
    compile_and_compare(model, {"x": seeded(2, 3, 4, seed=5)}, rtol=1e-5, atol=1e-5)


def test_an_import_failure_names_the_node_it_failed_on():
    """TVM's own messages rarely say where (``Only constant axes currently supported``)."""
    model = onnx_model([helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="sum1")],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                        helper.make_tensor_value_info("axes", TensorProto.INT64, [1])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], opset=18)
    with pytest.raises(JobFailure) as err:
        run_compiled(model, {"x": seeded(2, 3), "axes": np.array([1])})
    assert err.value.reason == ("ClientError: InputConfiguration: model.onnx could not be imported: ReduceSum node "
                                "'sum1': Only constant axes currently supported")
