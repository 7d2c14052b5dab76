"""ONNX ReverseSequence: what TensorFlow's bidirectional RNNs export for their backward pass."""

from __future__ import annotations

from typing import Any

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import static_shape


@register("ReverseSequence", 10)
def reverse_sequence(bb: Any, node: OnnxNode) -> Any:
    """Each batch entry's first ``sequence_lens[b]`` steps reversed, the rest kept: a gather along
    the time axis with index ``len - 1 - t`` where ``t < len``, else ``t``."""
    from tvm import relax

    x, lens = node.input(0), node.input(1)
    time_axis, batch_axis = int(node.attr("time_axis", 0)), int(node.attr("batch_axis", 1))
    shape = static_shape(bb, x, "ReverseSequence input")
    steps_shape, lens_shape = [1, 1], [1, 1]
    steps_shape[time_axis], lens_shape[batch_axis] = shape[time_axis], shape[batch_axis]
    steps = relax.op.reshape(relax.op.arange(0, shape[time_axis], 1, "int64"), steps_shape)
    lens = bb.emit(relax.op.reshape(relax.op.astype(lens, "int64"), lens_shape))
    reversed_index = relax.op.subtract(relax.op.subtract(lens, relax.op.ones_like(lens)), steps)
    index = relax.op.where(relax.op.less(steps, lens), reversed_index, relax.op.broadcast_to(steps, shape[:2]))
    index = relax.op.reshape(index, list(shape[:2]) + [1] * (len(shape) - 2))
    return relax.op.gather_elements(x, bb.emit(relax.op.broadcast_to(index, shape)), axis=time_axis)
