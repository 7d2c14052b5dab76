"""ONNX NonMaxSuppression and TopK as TIR kernels of their own.

TVM 0.27 lowers TopK, and the sort inside its NMS, on CPU to ``tvm.contrib.sort``: packed
functions of the full TVM library that the runtime a compiled artifact runs with does not have.
TVM's NMS converter also reads ``max_output_boxes_per_class`` and the thresholds only when they
are constants (graph inputs silently become 0: no box selected). The kernels here are plain
sequential TIR (selection by repeated arg-max, no sort), so they run with the bare runtime, and
read the NMS operands at run time. Both break ties as ONNX does: the lower index first.
"""

from __future__ import annotations

import math
from typing import Any

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant, constant_value, dtype_of, static_shape

#: op_pattern 8 (opaque): Relax never fuses these kernels with their neighbours
_OPAQUE = {"tirx.is_scheduled": True, "tirx.noalias": True, "op_pattern": 8}


def _nms_kernel(batches: int, classes: int, boxes_count: int, center_point_box: bool, has_score_threshold: bool) -> Any:
    """selected [batches·classes·boxes_count, 3] int64 (the first ``count[0]`` rows valid) from
    boxes [B, N, 4] and scores [B, C, N] (float32), max_out [1] int64, iou/score thresholds [1]."""
    from tvm.script import tirx as T

    rows = batches * classes * boxes_count
    n = boxes_count

    # Relax's fusion analysis wants an s_tir block body, which the tirx verifier does not know
    @T.prim_func(private=True, check_well_formed=False)
    def nms(boxes: T.Buffer((batches, n, 4), "float32"), scores: T.Buffer((batches, classes, n), "float32"),
            max_out: T.Buffer((1,), "int64"), iou_threshold: T.Buffer((1,), "float32"),
            score_threshold: T.Buffer((1,), "float32"),
            selected: T.Buffer((rows, 3), "int64"), count: T.Buffer((1,), "int64")):
        T.func_attr(_OPAQUE)
        with T.sblock("root"):
            corners = T.alloc_buffer((n, 4), "float32")  # x_min, y_min, x_max, y_max
            alive = T.alloc_buffer((n,), "int32")
            best = T.alloc_buffer((1,), "int32")
            chosen = T.alloc_buffer((1,), "int64")
            searching = T.alloc_buffer((1,), "int32")
            count[0] = T.int64(0)
            for b in range(batches):
                for i in range(n):
                    if center_point_box:
                        corners[i, 0] = boxes[b, i, 0] - boxes[b, i, 2] / T.float32(2)
                        corners[i, 2] = boxes[b, i, 0] + boxes[b, i, 2] / T.float32(2)
                        corners[i, 1] = boxes[b, i, 1] - boxes[b, i, 3] / T.float32(2)
                        corners[i, 3] = boxes[b, i, 1] + boxes[b, i, 3] / T.float32(2)
                    else:  # [y1, x1, y2, x2], either corner first
                        corners[i, 0] = T.min(boxes[b, i, 1], boxes[b, i, 3])
                        corners[i, 2] = T.max(boxes[b, i, 1], boxes[b, i, 3])
                        corners[i, 1] = T.min(boxes[b, i, 0], boxes[b, i, 2])
                        corners[i, 3] = T.max(boxes[b, i, 0], boxes[b, i, 2])
                for c in range(classes):
                    chosen[0] = T.int64(0)
                    for i in range(n):
                        if has_score_threshold:
                            alive[i] = T.Cast("int32", scores[b, c, i] > score_threshold[0])
                        else:
                            alive[i] = 1
                    searching[0] = 1
                    for _step in range(n):  # stops searching once nothing is left or the cap is reached
                        best[0] = -1
                        if searching[0] == 1 and chosen[0] < max_out[0]:
                            for i in range(n):
                                if alive[i] == 1:
                                    if best[0] < 0:
                                        best[0] = i
                                    elif scores[b, c, i] > scores[b, c, best[0]]:
                                        best[0] = i
                        if best[0] < 0:
                            searching[0] = 0
                        else:
                            k = best[0]
                            alive[k] = 0
                            selected[count[0], 0] = T.int64(b)
                            selected[count[0], 1] = T.int64(c)
                            selected[count[0], 2] = T.Cast("int64", k)
                            count[0] = count[0] + T.int64(1)
                            chosen[0] = chosen[0] + T.int64(1)
                            for j in range(n):
                                if alive[j] == 1:
                                    inter_w = T.min(corners[k, 2], corners[j, 2]) - T.max(corners[k, 0], corners[j, 0])
                                    inter_h = T.min(corners[k, 3], corners[j, 3]) - T.max(corners[k, 1], corners[j, 1])
                                    if inter_w > T.float32(0) and inter_h > T.float32(0):
                                        inter = inter_w * inter_h
                                        area_k = (corners[k, 2] - corners[k, 0]) * (corners[k, 3] - corners[k, 1])
                                        area_j = (corners[j, 2] - corners[j, 0]) * (corners[j, 3] - corners[j, 1])
                                        union = area_k + area_j - inter
                                        if area_k > T.float32(0) and area_j > T.float32(0) and union > T.float32(0):
                                            if inter / union > iou_threshold[0]:
                                                alive[j] = 0

    return nms


def _scalar(bb: Any, value: Any, default: float | int, dtype: str) -> Any:
    """An optional scalar operand as a [1] tensor of ``dtype`` (``default`` when absent)."""
    from tvm import relax

    if value is None:
        return constant([default], dtype)
    return bb.emit(relax.op.reshape(relax.op.astype(value, dtype), (1,)))


@register("NonMaxSuppression", 10)
def non_max_suppression(bb: Any, node: OnnxNode) -> Any:
    """ONNX NMS per batch and class: candidates above ``score_threshold`` (strictly) taken by
    score, each suppressing the remaining ones whose IoU with it exceeds ``iou_threshold``, at
    most ``max_output_boxes_per_class`` each; all three operands may be computed at run time.
    The [count, 3] int64 result is the kernel's full-size buffer cut to the count it selected."""
    from tvm import relax, tirx

    boxes, scores = node.input(0), node.input(1)
    batches, n, _ = static_shape(bb, boxes, "NonMaxSuppression boxes")
    _, classes, _ = static_shape(bb, scores, "NonMaxSuppression scores")
    kernel = _nms_kernel(batches, classes, n, bool(node.attr("center_point_box", 0)), node.input(4) is not None)
    rows = batches * classes * n
    result = bb.emit(relax.call_tir(
        bb.add_func(kernel, "neo_non_max_suppression"),
        [bb.emit(relax.op.astype(boxes, "float32")), bb.emit(relax.op.astype(scores, "float32")),
         _scalar(bb, node.input(2), 0, "int64"), _scalar(bb, node.input(3), 0.0, "float32"),
         _scalar(bb, node.input(4), 0.0, "float32")],
        [relax.TensorType((rows, 3), "int64"), relax.TensorType((1,), "int64")],
    ))
    # the selected count becomes a symbolic dimension (the VM reads it from the tensor at run time)
    count = tirx.Var("selected", "int64")
    bb.match_cast(bb.emit(relax.op.tensor_to_shape(relax.TupleGetItem(result, 1))), relax.ShapeType([count]))
    return relax.op.strided_slice(relax.TupleGetItem(result, 0), axes=[0], begin=[0], end=[count], assume_inbound=True)


def _top_k_kernel(rows: int, n: int, k: int, dtype: str, largest: bool) -> Any:
    """values/indices [rows, k]: each row's k largest (or smallest) entries in order."""
    from tvm.script import tirx as T

    @T.prim_func(private=True, check_well_formed=False)
    def top_k(x: T.Buffer((rows, n), dtype), values: T.Buffer((rows, k), dtype), indices: T.Buffer((rows, k), "int64")):
        T.func_attr(_OPAQUE)
        with T.sblock("root"):
            taken = T.alloc_buffer((n,), "int32")
            best = T.alloc_buffer((1,), "int32")
            for r in range(rows):
                for i in range(n):
                    taken[i] = 0
                for j in range(k):
                    best[0] = -1
                    for i in range(n):
                        if taken[i] == 0:
                            if best[0] < 0:
                                best[0] = i
                            elif largest and x[r, i] > x[r, best[0]]:
                                best[0] = i
                            elif not largest and x[r, i] < x[r, best[0]]:
                                best[0] = i
                    taken[best[0]] = 1
                    values[r, j] = x[r, best[0]]
                    indices[r, j] = T.Cast("int64", best[0])

    return top_k


@register("TopK", 10)
def top_k(bb: Any, node: OnnxNode) -> Any:
    """The ``K`` largest (``largest=0``: smallest) entries along ``axis`` and their int64
    indices, sorted, equal values in index order; ``K`` must be a constant (it fixes the shape)."""
    from tvm import relax

    x = node.input(0)
    k_value = constant_value(node.input(1))
    if k_value is None or k_value.size != 1:
        raise ValueError("TopK: K must be a constant (it sets the output shape)")
    k = int(k_value.reshape(-1)[0])
    shape = static_shape(bb, x, "TopK input")
    axis = int(node.attr("axis", -1)) % len(shape)
    if not 0 <= k <= shape[axis]:
        raise ValueError(f"TopK: K={k} is outside 0..{shape[axis]} (the size of axis {axis})")
    order = [d for d in range(len(shape)) if d != axis] + [axis]
    moved = bb.emit(relax.op.permute_dims(x, order))
    rows = math.prod(shape[d] for d in order[:-1])
    dtype = dtype_of(bb, x)
    kernel = _top_k_kernel(rows, shape[axis], k, dtype, bool(node.attr("largest", 1)))
    result = bb.emit(relax.call_tir(
        bb.add_func(kernel, "neo_top_k"), [bb.emit(relax.op.reshape(moved, (rows, shape[axis])))],
        [relax.TensorType((rows, k), dtype), relax.TensorType((rows, k), "int64")],
    ))
    back = [order.index(d) for d in range(len(shape))]
    out_shape = [shape[d] for d in order[:-1]] + [k]
    return relax.Tuple([
        bb.emit(relax.op.permute_dims(relax.op.reshape(relax.TupleGetItem(result, i), out_shape), back))
        for i in range(2)
    ])
