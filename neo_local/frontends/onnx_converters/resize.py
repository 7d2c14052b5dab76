"""ONNX Resize in the forms TVM 0.27's converter gets wrong or refuses, as one matrix per axis.

TVM's converter (topi's resize) derives the coordinate scale from the output size, where ONNX
uses the given ``scales`` (downsampling by 0.6 gives a different answer), and has no antialias,
``axes``, ``keep_aspect_ratio_policy`` or ``half_pixel_symmetric``. Resize is separable and linear
along each axis, so with static shapes and constant scales/sizes/roi each resized axis is a
constant [out, in] interpolation matrix, built here in float64 from the ONNX definition (every
mode, coordinate transformation, cubic coefficient, exclude_outside, antialias and
extrapolation_value), and applied with a matmul. Nodes TVM gets right keep TVM's converter
(its direct kernels are cheaper than matmuls on large images), as do integer images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant, constant_value, dtype_of, static_shape
from neo_local.frontends.onnx_converters.semantics import tvm_converter


@dataclass(frozen=True)
class AxisResize:
    """One resized axis: sizes, the scale its coordinates use, and its roi (tf_crop_and_resize)."""

    size_in: int
    size_out: int
    scale: float
    roi: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class Interpolation:
    """The node's attributes that shape the per-axis matrices."""

    mode: str
    coordinates: str
    nearest_mode: str
    cubic_a: float
    exclude_outside: bool
    antialias: bool

    @staticmethod
    def of(node: OnnxNode) -> Interpolation:
        return Interpolation(
            mode=node.attr("mode", "nearest"),
            coordinates=node.attr("coordinate_transformation_mode", "half_pixel"),
            nearest_mode=node.attr("nearest_mode", "round_prefer_floor"),
            cubic_a=float(node.attr("cubic_coeff_a", -0.75)),
            exclude_outside=bool(node.attr("exclude_outside", 0)),
            antialias=bool(node.attr("antialias", 0)),
        )


def source_coordinates(axis: AxisResize, coordinates: str) -> np.ndarray:
    """Where each output index samples the input, per coordinate_transformation_mode."""
    x = np.arange(axis.size_out, dtype=np.float64)
    size_in, scale, out_width = axis.size_in, axis.scale, axis.scale * axis.size_in
    if coordinates == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if coordinates == "half_pixel_symmetric":
        offset = size_in / 2 * (1 - axis.size_out / out_width)
        return offset + (x + 0.5) / scale - 0.5
    if coordinates == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out_width != 1 else np.full_like(x, -0.5)
    if coordinates == "align_corners":
        return x * (size_in - 1) / (out_width - 1) if out_width != 1 else np.zeros_like(x)
    if coordinates == "asymmetric":
        return x / scale
    if coordinates == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    if coordinates == "tf_crop_and_resize":
        start, end = axis.roi
        span = x * (end - start) * (size_in - 1) / (out_width - 1) if out_width != 1 else np.full_like(
            x, (end - start) * (size_in - 1) / 2)
        return span + start * (size_in - 1)
    raise ValueError(f"Resize: coordinate_transformation_mode '{coordinates}' is not defined by ONNX")


def _cubic(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with coefficient ``a``."""
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _taps(ratio: np.ndarray, axis: AxisResize, how: Interpolation) -> tuple[np.ndarray, np.ndarray]:
    """(offsets from the base index, weights [out, taps]) at fractional positions ``ratio`` in (0, 1]."""
    if how.mode == "nearest":
        offsets = np.array([0, 1])
        up = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5,
              "floor": ratio == 1, "ceil": np.ones_like(ratio, bool)}.get(how.nearest_mode)
        if up is None:
            raise ValueError(f"Resize: nearest_mode '{how.nearest_mode}' is not defined by ONNX")
        return offsets, np.stack([~up, up], -1).astype(np.float64)
    reach = 1 if how.mode == "linear" else 2
    stretch = min(axis.scale, 1.0) if how.antialias else 1.0
    first = math.floor(-reach / stretch) + 1
    offsets = np.arange(first, 2 - first)
    distance = (offsets[None, :] - ratio[:, None]) * stretch
    weights = np.clip(1 - np.abs(distance), 0, 1) if how.mode == "linear" else _cubic(distance, how.cubic_a)
    return offsets, weights / weights.sum(-1, keepdims=True) if how.antialias else weights


def interpolation_matrix(axis: AxisResize, how: Interpolation) -> tuple[np.ndarray, np.ndarray | None]:
    """The [out, in] matrix of one axis, and for tf_crop_and_resize the rows sampling outside
    the input (they take extrapolation_value), else None."""
    x = source_coordinates(axis, how.coordinates)
    base = np.floor(x)
    base = np.where(base == x, x - 1, base)  # ONNX prefers the left neighbour: ratio in (0, 1]
    offsets, weights = _taps(x - base, axis, how)
    index = base[:, None].astype(np.int64) + offsets[None, :]
    if how.exclude_outside:
        weights = np.where((index < 0) | (index >= axis.size_in), 0.0, weights)
        total = weights.sum(-1, keepdims=True)
        weights = weights / np.where(total == 0, 1.0, total)
    matrix = np.zeros((axis.size_out, axis.size_in))
    rows = np.broadcast_to(np.arange(axis.size_out)[:, None], index.shape)
    np.add.at(matrix, (rows, np.clip(index, 0, axis.size_in - 1)), weights)
    outside = (x < 0) | (x > axis.size_in - 1) if how.coordinates == "tf_crop_and_resize" else None
    return matrix, outside


def resized_axes(node: OnnxNode, shape: tuple[int, ...]) -> dict[int, AxisResize] | None:
    """Each resized axis (sizes and scales as ONNX derives them from scales or sizes, axes and
    keep_aspect_ratio_policy), or None when roi/scales/sizes are not constants."""
    rank = len(shape)
    axes = [int(a) % rank for a in node.attr("axes", None) or range(rank)]
    roi, scales, sizes = (constant_value(node.input(i)) if node.input(i) is not None else np.zeros(0) for i in (1, 2, 3))
    if roi is None or scales is None or sizes is None:
        return None
    if sizes.size:
        ratios = {a: int(s) / shape[a] for a, s in zip(axes, sizes.reshape(-1))}
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            common = (min if policy == "not_larger" else max)(ratios.values())
            return {a: AxisResize(shape[a], int(common * shape[a] + 0.5), common, _roi(roi, axes, i))
                    for i, a in enumerate(axes)}
        return {a: AxisResize(shape[a], int(s), ratios[a], _roi(roi, axes, i))
                for i, (a, s) in enumerate(zip(axes, sizes.reshape(-1)))}
    return {a: AxisResize(shape[a], int(float(s) * shape[a]), float(s), _roi(roi, axes, i))
            for i, (a, s) in enumerate(zip(axes, scales.reshape(-1)))}


def _roi(roi: np.ndarray, axes: list[int], i: int) -> tuple[float, float]:
    flat = roi.reshape(-1)
    return (float(flat[i]), float(flat[len(axes) + i])) if flat.size else (0.0, 1.0)


def _tvm_gets_it_right(node: OnnxNode, how: Interpolation, axes: dict[int, AxisResize]) -> bool:
    """TVM's converter matches ONNX: no opset-18/19 attribute, and each output size is exactly
    scale × input size (TVM's coordinates use size_out / size_in)."""
    return (
        not how.antialias and not how.exclude_outside and node.attr("axes", None) is None
        and node.attr("keep_aspect_ratio_policy", "stretch") == "stretch"
        and how.coordinates != "half_pixel_symmetric"
        and all(a.size_out == a.scale * a.size_in for a in axes.values())
    )


def _apply_along(bb: Any, x: Any, axis: int, rank: int, matrix: np.ndarray, dtype: str) -> Any:
    """``x`` with ``matrix`` [out, in] applied along ``axis``."""
    from tvm import relax

    order = [d for d in range(rank) if d != axis] + [axis]
    moved = relax.op.permute_dims(x, order) if axis != rank - 1 else x
    product = bb.emit(relax.op.matmul(moved, constant(matrix.T, dtype)))
    back = [order.index(d) for d in range(rank)]
    return bb.emit(relax.op.permute_dims(product, back)) if axis != rank - 1 else product


@register("Resize", 11)
def resize(bb: Any, node: OnnxNode) -> Any:
    """ONNX Resize, exactly: TVM's converter where it agrees with ONNX, else a constant
    interpolation matrix per resized axis (computed in float32, float64 for float64 images)."""
    from tvm import relax

    x = node.input(0)
    dtype = dtype_of(bb, x)
    shape = static_shape(bb, x, "Resize input")
    how = Interpolation.of(node)
    axes = resized_axes(node, shape)
    if axes is None or not dtype.startswith(("float", "bfloat")) or _tvm_gets_it_right(node, how, axes):
        return tvm_converter(bb, node)
    if how.antialias and how.mode == "nearest":
        raise ValueError("Resize: antialias is not defined for mode 'nearest'")
    compute = "float64" if dtype == "float64" else "float32"
    y = bb.emit(relax.op.astype(x, compute)) if compute != dtype else x
    extrapolation = constant(float(node.attr("extrapolation_value", 0.0)), compute)
    for a, axis in axes.items():
        if axis.size_out == axis.size_in and axis.scale == 1.0 and axis.roi == (0.0, 1.0):
            continue
        matrix, outside = interpolation_matrix(axis, how)
        y = _apply_along(bb, y, a, len(shape), matrix, compute)
        if outside is not None and outside.any():
            mask = outside.reshape([-1 if d == a else 1 for d in range(len(shape))])
            y = bb.emit(relax.op.where(constant(mask, "bool"), extrapolation, y))
    return relax.op.astype(y, dtype) if compute != dtype else y
