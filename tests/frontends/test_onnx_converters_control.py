"""neo-local's converters for ONNX control flow and the operators without TVM converters (Scan,
Loop, If, ...): each small graph is imported as the ONNX frontend imports it, compiled for llvm
and compared with onnxruntime on seeded inputs."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from neo_local.api.errors import JobFailure
from onnx_compare import compile_and_compare, onnx_model, seeded


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _scan_model(reverse_in=0, reverse_out=0, out_axis=0):
    """Scan over the rows of X [T, 3]: state s += x_t * w (w an outer initializer) + bias (an outer
    graph input); the scan output is s at each step."""
    body = helper.make_graph(
        [helper.make_node("Mul", ["x_t", "w"], ["xw"]),
         helper.make_node("Add", ["s_in", "xw"], ["s_tmp"]),
         helper.make_node("Add", ["s_tmp", "bias"], ["s_out"]),
         helper.make_node("Identity", ["s_out"], ["y_t"])],
        "body", [_f32("s_in", [3]), _f32("x_t", [3])], [_f32("s_out", [3]), _f32("y_t", [3])])
    node = helper.make_node("Scan", ["s0", "X"], ["s_final", "Y"], body=body, num_scan_inputs=1,
                            scan_input_directions=[reverse_in], scan_output_directions=[reverse_out],
                            scan_output_axes=[out_axis])
    y_shape = [5, 3] if out_axis in (0, -2) else [3, 5]
    return onnx_model([node], [_f32("s0", [3]), _f32("X", [5, 3]), _f32("bias", [3])],
                      [_f32("s_final", [3]), _f32("Y", y_shape)],
                      [numpy_helper.from_array(seeded(3, seed=3), "w")], opset=16)


@pytest.mark.parametrize("reverse_in,reverse_out,out_axis", [(0, 0, 0), (1, 0, 1), (0, 1, -1)])
def test_scan_unrolled_with_outer_values(reverse_in, reverse_out, out_axis):
    model = _scan_model(reverse_in, reverse_out, out_axis)
    compile_and_compare(model, {"s0": seeded(3, seed=0), "X": seeded(5, 3, seed=1), "bias": seeded(3, seed=2)})


def test_scan8_scans_each_batch_entry():
    """Scan-8: batch axis first; a reversed running sum per batch entry."""
    body = helper.make_graph([helper.make_node("Add", ["s_in", "x_t"], ["s_out"]),
                              helper.make_node("Identity", ["s_out"], ["y_t"])],
                             "body", [_f32("s_in", [3]), _f32("x_t", [3])], [_f32("s_out", [3]), _f32("y_t", [3])])
    node = helper.make_node("Scan", ["", "s0", "X"], ["s_final", "Y"], body=body, num_scan_inputs=1, directions=[1])
    model = onnx_model([node], [_f32("s0", [2, 3]), _f32("X", [2, 4, 3])],
                       [_f32("s_final", [2, 3]), _f32("Y", [2, 4, 3])], opset=8)
    compile_and_compare(model, {"s0": seeded(2, 3, seed=0), "X": seeded(2, 4, 3, seed=1)})


def _loop_model(trip_count_input=False):
    """Loop: acc = acc * 0.5 + x each iteration (x read from the enclosing graph), the scan
    output collects acc + iteration number; 4 iterations (a constant, or a graph input)."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Mul", ["acc_in", "half"], ["scaled"]),
         helper.make_node("Add", ["scaled", "x"], ["acc_out"]),
         helper.make_node("Cast", ["i"], ["i_f"], to=TensorProto.FLOAT),
         helper.make_node("Add", ["acc_out", "i_f"], ["step"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []), _f32("acc_in", [2, 3])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), _f32("acc_out", [2, 3]),
         _f32("step", [2, 3])],
        initializer=[numpy_helper.from_array(np.array(0.5, np.float32), "half")])
    node = helper.make_node("Loop", ["M", "cond", "acc0"], ["acc", "steps"], body=body)
    inits = [numpy_helper.from_array(np.array(True), "cond")]
    inputs = [_f32("acc0", [2, 3]), _f32("x", [2, 3])]
    if trip_count_input:
        inputs.append(helper.make_tensor_value_info("M", TensorProto.INT64, []))
    else:
        inits.append(numpy_helper.from_array(np.array(4, np.int64), "M"))
    return onnx_model([node], inputs, [_f32("acc", [2, 3]), _f32("steps", [4, 2, 3])], inits, opset=16)


def test_loop_with_constant_trip_count_is_unrolled():
    compile_and_compare(_loop_model(), {"acc0": seeded(2, 3, seed=0), "x": seeded(2, 3, seed=1)})


def test_loop_with_run_time_trip_count_is_refused_cleanly():
    feeds = {"acc0": seeded(2, 3, seed=0), "x": seeded(2, 3, seed=1), "M": np.array(4, np.int64)}
    with pytest.raises(JobFailure, match="Loop with a trip count computed at run time is not supported"):
        compile_and_compare(_loop_model(trip_count_input=True), feeds)


@pytest.mark.parametrize("flag", [True, False])
def test_if_with_run_time_condition(flag):
    """TVM imports If itself (a relax.If); the operator check lets it through."""
    def branch(name, op):
        return helper.make_graph([helper.make_node(op, ["a", "b"], [f"{name}_out"])], name, [],
                                 [_f32(f"{name}_out", [2, 3])])

    node = helper.make_node("If", ["c"], ["y"], then_branch=branch("then", "Add"), else_branch=branch("else", "Sub"))
    model = onnx_model([node], [helper.make_tensor_value_info("c", TensorProto.BOOL, []), _f32("a", [2, 3]),
                                _f32("b", [2, 3])], [_f32("y", [2, 3])], opset=16)
    compile_and_compare(model, {"c": np.array(flag), "a": seeded(2, 3, seed=0), "b": seeded(2, 3, seed=1)})


@pytest.mark.parametrize("source,target", [(np.float32, TensorProto.INT32), (np.int64, TensorProto.DOUBLE),
                                           (np.uint16, TensorProto.INT16)])
def test_bitcast_keeps_the_bits(source, target):
    x = (seeded(2, 3, seed=0) * 1000).astype(source)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(source))
    model = onnx_model([helper.make_node("BitCast", ["x"], ["y"], to=target)],
                       [helper.make_tensor_value_info("x", elem, [2, 3])],
                       [helper.make_tensor_value_info("y", target, [2, 3])], opset=26)
    compile_and_compare(model, {"x": x})


@pytest.mark.parametrize("mode,writes", [("linear", [0, 2]), ("circular", [3, 1])])
def test_tensor_scatter_updates_the_cache(mode, writes):
    model = onnx_model([helper.make_node("TensorScatter", ["past", "update", "w"], ["present"], mode=mode)],
                       [_f32("past", [2, 1, 4, 5]), _f32("update", [2, 1, 2, 5]),
                        helper.make_tensor_value_info("w", TensorProto.INT64, [2])],
                       [_f32("present", [2, 1, 4, 5])], opset=24)
    compile_and_compare(model, {"past": seeded(2, 1, 4, 5, seed=0), "update": seeded(2, 1, 2, 5, seed=1),
                                "w": np.array(writes, np.int64)})


@pytest.mark.parametrize("n", [2, 3, 4])
def test_det_of_small_matrices(n):
    model = onnx_model([helper.make_node("Det", ["x"], ["d"])], [_f32("x", [3, n, n])], [_f32("d", [3])], opset=22)
    compile_and_compare(model, {"x": seeded(3, n, n, seed=n)}, rtol=1e-5, atol=1e-5)


def test_if_with_constant_condition_becomes_its_branch():
    """The pre-pass replaces the If by the branch it takes (its initializers included), so no
    relax.If is left to import."""
    from neo_local.frontends.onnx_prepass import prepass

    then_branch = helper.make_graph([helper.make_node("Mul", ["a", "k"], ["then_out"])], "then", [],
                                    [_f32("then_out", [2, 3])],
                                    initializer=[numpy_helper.from_array(np.float32(3.0).reshape(()), "k")])
    else_branch = helper.make_graph([helper.make_node("Neg", ["a"], ["else_out"])], "else", [],
                                    [_f32("else_out", [2, 3])])
    nodes = [helper.make_node("If", ["c"], ["t"], then_branch=then_branch, else_branch=else_branch),
             helper.make_node("Add", ["t", "a"], ["y"])]
    model = onnx_model(nodes, [_f32("a", [2, 3])], [_f32("y", [2, 3])],
                       [numpy_helper.from_array(np.array(True), "c")], opset=16)
    assert [n.op_type for n in prepass(model).graph.node] == ["Mul", "Identity", "Add"]
    compile_and_compare(model, {"a": seeded(2, 3, seed=0)})


@pytest.mark.parametrize("with_mask_bias,attrs", [
    (False, {}),
    (True, {"group": 2, "offset_group": 2, "strides": [2, 1], "pads": [1, 0, 1, 2], "dilations": [1, 2]}),
])
def test_deform_conv_samples_bilinearly(with_mask_bias, attrs):
    """Offsets of a few pixels push sampling points across and beyond the image border."""
    n, c, h, w, oc, k = 2, 4, 6, 5, 6, 3
    group, offset_group = attrs.get("group", 1), attrs.get("offset_group", 1)
    strides, pads, dil = attrs.get("strides", [1, 1]), attrs.get("pads", [0, 0, 0, 0]), attrs.get("dilations", [1, 1])
    oh = (h + pads[0] + pads[2] - dil[0] * (k - 1) - 1) // strides[0] + 1
    ow = (w + pads[1] + pads[3] - dil[1] * (k - 1) - 1) // strides[1] + 1
    names, inputs = ["X", "W", "offset"], [_f32("X", [n, c, h, w]), _f32("W", [oc, c // group, k, k]),
                                           _f32("offset", [n, offset_group * k * k * 2, oh, ow])]
    feeds = {"X": seeded(n, c, h, w, seed=0), "W": seeded(oc, c // group, k, k, seed=1),
             "offset": seeded(n, offset_group * k * k * 2, oh, ow, seed=2, scale=2.0)}
    if with_mask_bias:
        names += ["B", "mask"]
        inputs += [_f32("B", [oc]), _f32("mask", [n, offset_group * k * k, oh, ow])]
        feeds.update(B=seeded(oc, seed=3), mask=seeded(n, offset_group * k * k, oh, ow, seed=4))
    node = helper.make_node("DeformConv", names, ["Y"], kernel_shape=[k, k], **attrs)
    model = onnx_model([node], inputs, [_f32("Y", [n, oc, oh, ow])], opset=22)
    compile_and_compare(model, feeds, rtol=1e-4, atol=1e-5)


def _ml_model(nodes, inputs, outputs):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)])


def test_binarizer_and_array_feature_extractor():
    nodes = [helper.make_node("Binarizer", ["x"], ["b"], domain="ai.onnx.ml", threshold=0.3),
             helper.make_node("ArrayFeatureExtractor", ["b", "i"], ["y"], domain="ai.onnx.ml")]
    model = _ml_model(nodes, [_f32("x", [3, 5]), helper.make_tensor_value_info("i", TensorProto.INT64, [2])],
                      [_f32("y", [3, 2])])
    compile_and_compare(model, {"x": seeded(3, 5, seed=0), "i": np.array([4, 1], np.int64)})


def test_binarizer_on_integers_compares_with_the_fractional_threshold():
    """onnxruntime has no integer Binarizer kernel: numpy's ``x > t`` is the yardstick."""
    from onnx_compare import run_compiled

    x = np.array([-2, -1, 0, 1, 2], np.int64)
    model = _ml_model([helper.make_node("Binarizer", ["x"], ["y"], domain="ai.onnx.ml", threshold=-0.5)],
                      [helper.make_tensor_value_info("x", TensorProto.INT64, [5])],
                      [helper.make_tensor_value_info("y", TensorProto.INT64, [5])])
    np.testing.assert_array_equal(run_compiled(model, {"x": x})[0], (x > -0.5).astype(np.int64))


@pytest.mark.parametrize("aggregate", [0, 1])  # AVERAGE, SUM
def test_tree_ensemble_modes_membership_and_missing_values(aggregate):
    """Tree 0: x0 <= 0.5 ? (x1 in {1, 2} ? leaf 1 : leaf 2) : leaf 0; tree 1: x1 > 0 (NaN goes
    true) ? leaf 3 : leaf 4; two targets."""
    node = helper.make_node(
        "TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", aggregate_function=aggregate, n_targets=2,
        tree_roots=[0, 2], nodes_featureids=[0, 1, 1],
        nodes_modes=numpy_helper.from_array(np.array([0, 6, 3], np.uint8)),
        nodes_splits=numpy_helper.from_array(np.array([0.5, 0.0, 0.0], np.float32)),
        nodes_truenodeids=[1, 1, 3], nodes_trueleafs=[0, 1, 1],
        nodes_falsenodeids=[0, 2, 4], nodes_falseleafs=[1, 1, 1],
        nodes_missing_value_tracks_true=[0, 0, 1],
        membership_values=numpy_helper.from_array(np.array([1.0, 2.0, np.nan], np.float32)),
        leaf_targetids=[0, 1, 0, 1, 0], leaf_weights=numpy_helper.from_array(np.array([1, 2, 3, 4, 5], np.float32)))
    model = _ml_model([node], [_f32("X", [6, 2])], [_f32("Y", [6, 2])])
    x = np.array([[0, 1], [0, 2], [0, 3], [1, -1], [0.5, np.nan], [2, 2]], np.float32)
    compile_and_compare(model, {"X": x})


def _const_i64(name, value):
    return numpy_helper.from_array(np.array(value, np.int64), name)


@pytest.mark.parametrize("parts,attrs,length", [
    (1, {}, None), (2, {}, 6), (1, {"onesided": 1}, None), (2, {"inverse": 1}, None), (2, {"inverse": 1}, 4),
])
def test_dft_matches_onnxruntime(parts, attrs, length):
    """DFT along axis 1 of [2, 5, 3, parts] (opset 20: axis and dft_length as constant inputs)."""
    n = length or 5
    bins = n // 2 + 1 if attrs.get("onesided") else n
    inits = [_const_i64("axis", 1)] + ([_const_i64("len", length)] if length else [])
    node = helper.make_node("DFT", ["x", "len" if length else "", "axis"], ["y"], **attrs)
    model = onnx_model([node], [_f32("x", [2, 5, 3, parts])], [_f32("y", [2, bins, 3, 2])], inits, opset=20)
    compile_and_compare(model, {"x": seeded(2, 5, 3, parts, seed=parts)}, rtol=1e-4, atol=1e-5)


def test_dft_inverse_of_one_sided_spectrum():
    """irfft: a real signal of length 2 * (bins - 1) from a one-sided spectrum."""
    node = helper.make_node("DFT", ["x", "", "axis"], ["y"], inverse=1, onesided=1)
    model = onnx_model([node], [_f32("x", [2, 5, 2])], [_f32("y", [2, 8, 1])], [_const_i64("axis", 1)], opset=20)
    compile_and_compare(model, {"x": seeded(2, 5, 2, seed=0)}, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("with_window", [False, True])
def test_stft_matches_onnxruntime(with_window):
    inits = [_const_i64("step", 3), _const_i64("frame", 8)]
    names = ["signal", "step", "", "frame"]
    if with_window:
        inits.append(numpy_helper.from_array(np.hanning(8).astype(np.float32), "window"))
        names[2] = "window"
    node = helper.make_node("STFT", names, ["y"])
    model = onnx_model([node], [_f32("signal", [2, 32, 1])], [_f32("y", [2, 9, 5, 2])], inits, opset=17)
    compile_and_compare(model, {"signal": seeded(2, 32, 1, seed=0)}, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("attrs", [{}, {"strides": [2, 1], "pads": [1, 0, 1, 1], "dilations": [1, 2]}])
def test_col2im_matches_onnxruntime(attrs):
    """A 7x6 image from 3x2 blocks (its shapes constant, as models carry them)."""
    image, block = [7, 6], [3, 2]
    strides, pads, dil = attrs.get("strides", [1, 1]), attrs.get("pads", [0, 0, 0, 0]), attrs.get("dilations", [1, 1])
    slides = [(image[d] + pads[d] + pads[d + 2] - dil[d] * (block[d] - 1) - 1) // strides[d] + 1 for d in range(2)]
    cols = [2, 3 * 6, slides[0] * slides[1]]
    node = helper.make_node("Col2Im", ["x", "image", "block"], ["y"], **attrs)
    model = onnx_model([node], [_f32("x", cols)], [_f32("y", [2, 3, *image])],
                       [_const_i64("image", image), _const_i64("block", block)], opset=18)
    compile_and_compare(model, {"x": seeded(*cols, seed=0)})


def test_col2im_with_run_time_image_shape_is_refused_cleanly():
    node = helper.make_node("Col2Im", ["x", "image", "block"], ["y"])
    model = onnx_model([node], [_f32("x", [1, 4, 9]), helper.make_tensor_value_info("image", TensorProto.INT64, [2])],
                       [_f32("y", [1, 1, 4, 4])], [_const_i64("block", [2, 2])], opset=18)
    with pytest.raises(JobFailure, match="Col2Im image_shape computed at run time is not supported"):
        compile_and_compare(model, {"x": seeded(1, 4, 9, seed=0), "image": np.array([4, 4], np.int64)})
