"""ONNX MaxPool with its Indices output, which TVM 0.27's converter does not produce."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant, dtype_of, static_shape
from neo_local.frontends.onnx_converters.semantics import tvm_converter


@register("MaxPool", 8)
def max_pool(bb: Any, node: OnnxNode) -> Any:
    """With two outputs: every window position is one strided slice of the padded input; the
    values are the maximum over these candidates and the indices the flat input index
    (row-major, or column-major over the spatial axes for ``storage_order=1``) of the first
    maximum, as onnxruntime picks. One output: TVM's converter."""
    from tvm import relax

    if node.num_outputs < 2:
        return tvm_converter(bb, node)
    x = node.input(0)
    shape = static_shape(bb, x, "MaxPool input")
    window = _Window.of(node, shape[2:])
    dtype = dtype_of(bb, x)
    lowest = -np.inf if dtype.startswith(("float", "bfloat")) else np.iinfo(dtype).min
    pad_width = [0, 0, 0, 0] + [p for pair in zip(window.begin, window.end) for p in pair]
    padded = bb.emit(relax.op.nn.pad(x, pad_width, pad_value=float(lowest)))
    offsets = list(np.ndindex(*window.kernel))
    candidates = bb.emit(relax.op.stack([_candidate(padded, window, k) for k in offsets], axis=0))
    first_max = bb.emit(relax.op.expand_dims(relax.op.argmax(candidates, axis=0), 0))
    values = relax.op.squeeze(relax.op.gather_elements(candidates, first_max, axis=0), [0])
    order = int(node.attr("storage_order", 0))
    in_plane = relax.op.broadcast_to(constant(_plane_indices(shape[2:], window, offsets, order), "int64"),
                                     [len(offsets), *shape[:2], *window.out])
    in_plane = relax.op.gather_elements(bb.emit(in_plane), first_max, axis=0)
    planes = np.arange(shape[0] * shape[1], dtype="int64").reshape(1, *shape[:2], *[1] * len(window.out))
    indices = relax.op.squeeze(relax.op.add(in_plane, constant(planes * int(np.prod(shape[2:])), "int64")), [0])
    return relax.Tuple([bb.emit(values), bb.emit(indices)])


@dataclass(frozen=True)
class _Window:
    """Kernel, strides, dilations, begin/end padding and output size per spatial axis."""

    kernel: list[int]
    strides: list[int]
    dilations: list[int]
    begin: list[int]
    end: list[int]
    out: list[int]

    @classmethod
    def of(cls, node: OnnxNode, spatial: tuple[int, ...]) -> "_Window":
        kernel = [int(k) for k in node.attr("kernel_shape")]
        rank = len(kernel)
        strides = [int(s) for s in node.attr("strides", [1] * rank)]
        dilations = [int(d) for d in node.attr("dilations", [1] * rank)]
        spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
        auto_pad = node.attr("auto_pad", "NOTSET")
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            totals = [max((math.ceil(n / s) - 1) * s + w - n, 0) for n, s, w in zip(spatial, strides, spans)]
            small = [t // 2 for t in totals]
            begin = small if auto_pad == "SAME_UPPER" else [t - h for t, h in zip(totals, small)]
            end = [t - b for t, b in zip(totals, begin)]
        else:
            pads = [0] * (2 * rank) if auto_pad == "VALID" else [int(p) for p in node.attr("pads", [0] * 2 * rank)]
            begin, end = pads[:rank], pads[rank:]
        round_ = math.ceil if int(node.attr("ceil_mode", 0)) else math.floor
        out = []
        for n, s, w, b, e in zip(spatial, strides, spans, begin, end):
            size = round_((n + b + e - w) / s) + 1
            out.append(size - 1 if (size - 1) * s >= n + b else size)  # no window may start in the end padding
        # ceil mode's last window may reach past the given end padding: pad that far
        end = [max(e, (o - 1) * s + w - n - b) for e, o, s, w, n, b in zip(end, out, strides, spans, spatial, begin)]
        return cls(kernel, strides, dilations, begin, end, out)


def _candidate(padded: Any, window: _Window, offset: tuple[int, ...]) -> Any:
    """The padded input at kernel ``offset`` of every output position."""
    from tvm import relax

    axes = list(range(2, 2 + len(offset)))
    begin = [k * d for k, d in zip(offset, window.dilations)]
    end = [b + (o - 1) * s + 1 for b, o, s in zip(begin, window.out, window.strides)]
    return relax.op.strided_slice(padded, axes, begin, end, window.strides)


def _plane_indices(spatial: tuple[int, ...], window: _Window, offsets: list, storage_order: int) -> np.ndarray:
    """[kernel positions, 1, 1, *out]: the index within one (N, C) plane each candidate reads."""
    grids = np.meshgrid(*[np.arange(o) for o in window.out], indexing="ij")
    per_offset = []
    for offset in offsets:
        coords = [g * s + k * d - b for g, s, k, d, b in
                  zip(grids, window.strides, offset, window.dilations, window.begin)]
        order = range(len(spatial)) if storage_order == 0 else reversed(range(len(spatial)))
        flat = np.zeros(window.out, "int64")
        for axis in order:
            flat = flat * spatial[axis] + coords[axis]
        per_offset.append(flat)
    return np.stack(per_offset)[:, None, None]
