"""ONNX Pow, EyeLike and OneHot where TVM 0.27's converters reject the types or operands ONNX allows.

Pow with mixed or integer types (TVM's ``power`` takes one float type), EyeLike with a ``dtype``
other than the input's, and OneHot with ``values`` computed at run time (TVM reads them as a
constant).
"""

from __future__ import annotations

from typing import Any

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant, constant_value, dtype_of, index, static_shape
from neo_local.frontends.onnx_converters.semantics import tvm_converter


def _is_float(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat"))


@register("Pow", 1)
def power(bb: Any, node: OnnxNode) -> Any:
    """The result has the base's type: a float base takes the exponent cast to it; an integer
    base is raised in float64 and cast back (truncated, as numpy's cast of the float result;
    exact while the result fits float64's 53-bit mantissa)."""
    from tvm import relax

    base, exponent = node.input(0), node.input(1)
    base_type, exponent_type = dtype_of(bb, base), dtype_of(bb, exponent)
    if _is_float(base_type):
        if exponent_type == base_type:
            return tvm_converter(bb, node)
        return relax.op.power(base, relax.op.astype(exponent, base_type))
    wide = relax.op.power(relax.op.astype(base, "float64"), relax.op.astype(exponent, "float64"))
    if not _is_float(exponent_type):
        wide = relax.op.round(wide)  # integer powers: undo float64's last-bit error before the cast
    return relax.op.astype(wide, base_type)


@register("EyeLike", 9)
def eye_like(bb: Any, node: OnnxNode) -> Any:
    """Ones on the ``k``-th diagonal of a matrix shaped like the input, of type ``dtype``
    (default: the input's type)."""
    from tvm import relax
    from tvm.relax.frontend.onnx.onnx_frontend import get_type

    x = node.input(0)
    rows, cols = static_shape(bb, x, "EyeLike input")
    dtype = get_type(node.attr("dtype")) if node.attr("dtype") is not None else dtype_of(bb, x)
    row = relax.op.reshape(relax.op.arange(0, rows, 1, "int64"), [rows, 1])
    col = relax.op.reshape(relax.op.arange(0, cols, 1, "int64"), [1, cols])
    diagonal = relax.op.equal(relax.op.add(row, constant(int(node.attr("k", 0)), "int64")), col)
    return relax.op.astype(diagonal, dtype)


@register("OneHot", 9)
def one_hot(bb: Any, node: OnnxNode) -> Any:
    """``values[1]`` where the (negative: wrapped once) index equals the position along the new
    ``axis``, else ``values[0]``; out-of-range indices give an all-off row. ``depth`` must be a
    constant (it sizes the output); ``values`` may be computed at run time."""
    from tvm import relax

    indices, depth_value, values = node.input(0), constant_value(node.input(1)), node.input(2)
    if depth_value is None:
        raise ValueError("OneHot: a depth computed at run time is not supported (it sets the output shape)")
    depth = int(depth_value.reshape(-1)[0])
    rank = len(static_shape(bb, indices, "OneHot indices")) + 1
    axis = int(node.attr("axis", -1)) % rank
    wide = bb.emit(relax.op.astype(indices, "int64"))
    wrapped = relax.op.where(relax.op.less(wide, constant(0, "int64")),
                             relax.op.add(wide, constant(depth, "int64")), wide)
    positions = [1] * rank
    positions[axis] = depth
    hot = relax.op.equal(relax.op.expand_dims(wrapped, axis),
                         relax.op.reshape(relax.op.arange(0, depth, 1, "int64"), positions))
    return relax.op.where(hot, index(bb, values, 1), index(bb, values, 0))
