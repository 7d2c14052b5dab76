"""Small Relax helpers shared by the converters."""

from __future__ import annotations

from typing import Any

import numpy as np


def static_shape(bb: Any, expr: Any, what: str) -> tuple[int, ...]:
    """The static shape of ``expr``; a clear error naming ``what`` when a dimension is symbolic."""
    from tvm import tirx

    shape = bb.normalize(expr).ty.shape
    if shape is None:
        raise ValueError(f"{what}: the shape must be known at compile time")
    dims = []
    for dim in shape.values:
        if not isinstance(dim, tirx.IntImm):
            raise ValueError(f"{what}: dimension {dim} must be static")
        dims.append(int(dim))
    return tuple(dims)


def dtype_of(bb: Any, expr: Any) -> str:
    return str(bb.normalize(expr).ty.dtype)


def constant(value: float | int | np.ndarray, dtype: str) -> Any:
    from tvm import relax

    # the dtype is passed explicitly: relax.const turns a 0-d float64 array into float32
    return relax.const(np.asarray(value, dtype=dtype), dtype)


def constant_value(expr: Any) -> np.ndarray | None:
    """The numpy value of a Relax constant (initializers arrive as constants), else None."""
    from tvm.ir import GenericConst  # TVM 0.27: relax.Constant became tvm.ir.GenericConst (.value)

    return expr.value.numpy() if isinstance(expr, GenericConst) else None


def index(bb: Any, x: Any, i: int, axis: int = 0) -> Any:
    """``x[i]`` along ``axis`` (that axis removed), emitted."""
    from tvm import relax

    part = relax.op.strided_slice(x, axes=[axis], begin=[i], end=[i + 1])
    return bb.emit(relax.op.squeeze(part, axis=[axis]))


def chunks(bb: Any, x: Any, count: int, axis: int) -> list[Any]:
    """``x`` split into ``count`` equal parts along ``axis``, each emitted."""
    from tvm import relax

    parts = bb.emit(relax.op.split(x, count, axis=axis))
    return [bb.emit(relax.TupleGetItem(parts, i)) for i in range(count)]
