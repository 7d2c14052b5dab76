"""FLOP counts (benchmarks/flops.py) against torch's own counter, the sgemm peak, and the GFLOP/s
columns of the results table."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
torch = pytest.importorskip("torch")

from tvm import relax  # noqa: E402

from benchmarks import flops, measure, run, suite  # noqa: E402
from example_archives import built  # noqa: E402


@pytest.mark.parametrize("name", ["resnet_like", "mobilenet_like", "bert_like"])
def test_model_flops_equal_torch_flop_counter(name):
    """Counted on the Relax module neo-local imports from the ONNX archive; torch counts the same
    convs and matmuls (2 x multiply-adds) on the module the archive was exported from."""
    from torch.utils.flop_counter import FlopCounterMode

    from models import get

    example = built(name, "onnx")
    ours = flops.model_flops(str(example.archive), "ONNX", example.data_input_config, {})
    spec = get(name)
    feeds = example.load_inputs()
    module = spec.build(0)  # outside the counter: building calibrates with forward passes
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        module(*(torch.from_numpy(feeds[n]) for n in spec.input_names))
    assert ours == counter.get_total_flops() > 0


def test_an_lstms_steps_count_once_per_layer():
    """The import emits an LSTM direction as a function, which both layers of ``lstm_like`` call
    (the same shapes): its products count once per call."""
    example = built("lstm_like", "onnx")
    ours = flops.model_flops(str(example.archive), "ONNX", example.data_input_config, {})
    steps, hidden = 50, 128
    projections = steps * (64 + hidden) * 4 * hidden
    recurrent = 2 * steps * hidden * 4 * hidden
    assert ours == 2 * (projections + recurrent + hidden * 10)


def test_layouts_groups_and_transposed_convs():
    """Channels-last (TFLite's NHWC/HWIO, depthwise HWOI), grouped, transposed conv and a batched
    matmul, each against its multiply-add count written out by hand."""
    rng = np.random.default_rng(0)

    def const(*shape):
        return relax.const(rng.standard_normal(shape).astype("float32"))

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 8, 8, 16), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(x, const(3, 3, 16, 32), padding=1, data_layout="NHWC", kernel_layout="HWIO"))
            y = bb.emit(relax.op.nn.conv2d(y, const(3, 3, 32, 1), padding=1, groups=32, data_layout="NHWC",
                                           kernel_layout="HWOI"))
            z = bb.emit(relax.op.permute_dims(y, [0, 3, 1, 2]))  # [1, 32, 8, 8]
            z = bb.emit(relax.op.nn.conv2d(z, const(32, 8, 1, 1), groups=4))
            z = bb.emit(relax.op.nn.conv2d_transpose(z, const(32, 4, 2, 2), strides=2))  # IOHW -> [1, 4, 16, 16]
            m = bb.emit(relax.op.matmul(relax.op.reshape(z, [4, 16, 16]), const(4, 16, 5)))
            out = bb.emit_output(m)
        bb.emit_func_output(out)
    want = 2 * (
        8 * 8 * 32 * (3 * 3 * 16)  # conv: every output element reads C_in x kh x kw inputs
        + 8 * 8 * 32 * (3 * 3)  # depthwise
        + 8 * 8 * 32 * 8  # groups=4: 32 / 4 input channels per output
        + 8 * 8 * 32 * (4 * 2 * 2)  # transposed: every input element feeds C_out x kh x kw outputs
        + 4 * 16 * 5 * 16  # batched matmul
    )
    assert flops.relax_flops(bb.get()) == want


def test_sgemm_peak_is_measured_with_the_threads_asked_for():
    peak = measure.sgemm_peak(1, n=256, runs=3)
    assert peak["gflops"] >= peak["median_gflops"] > 0
    assert peak["threads"] == 1 and peak["how"] == "numpy.matmul float32 256x256 @ 256x256, best of 3"


def test_table_shows_gflops_and_share_of_peak():
    timing = {"median_ms": 2.0, "p90_ms": 2.5, "runs": 5, "peak_rss_mb": 100.0}
    result = {
        "model": "m", "framework": "ONNX", "flops": 4e9,
        "latency": {suite.NEO_LOCAL.key: timing, "onnxruntime": {**timing, "median_ms": 4.0}},
        "ratio": {"tvm_over_onnxruntime": 0.5},
        "gflops": {suite.NEO_LOCAL.key: 2000.0, "onnxruntime": 1000.0},
        "peak_fraction": {suite.NEO_LOCAL.key: 0.5, "onnxruntime": 0.25},
        "compile": {"compile_s": 1.0, "peak_rss_mb": 1.0, "children_peak_rss_mb": 1.0, "artifact_bytes": 1,
                    "mcpu": "znver3"},
        "max_abs_diff": {},
    }
    lines = run.table([result]).splitlines()
    assert "GFLOP/s" in lines[0] and "of peak" in lines[0]
    assert "2000.0" in lines[2] and "50%" in lines[2]
    assert "1000.0" in lines[3] and "25%" in lines[3] and "0.50" in lines[3]
    assert "4.000 GFLOP per inference" in "\n".join(lines)
