"""ONNX DFT and STFT as matmuls with constant transform matrices.

Every variant (forward, inverse, one-sided, the real-output inverse of a one-sided spectrum,
``dft_length`` padding or truncating) is linear in the input's real and imaginary parts, so its
matrices are numpy's own transform applied to unit vectors, computed in float64 at import time:
``y = re @ A_re + im @ A_im``. The transform length and the axis must be constants.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import (
    constant, constant_value, dtype_of, index, static_shape,
)

Transform = Callable[[np.ndarray], np.ndarray]  # numpy's transform along the last axis


def _known_int(expr: Any, what: str) -> int | None:
    if expr is None:
        return None
    value = constant_value(expr)
    if value is None:
        raise ValueError(f"{what} computed at run time is not supported (the matrices are built at compile time)")
    return int(value.reshape(-1)[0])


def _components(bb: Any, x: Any) -> tuple[Any, Any | None]:
    """The real and imaginary parts of an ONNX [..., 1 | 2] signal (None: real signal)."""
    parts = static_shape(bb, x, "DFT input")[-1]
    real = index(bb, x, 0, axis=-1)
    return real, (index(bb, x, 1, axis=-1) if parts == 2 else None)


def _apply(bb: Any, real: Any, imag: Any | None, length: int, transform: Transform, complex_out: bool) -> Any:
    """``transform`` of the last axis (``length`` long) as matmuls; the ONNX [..., 2] (or [..., 1])
    layout."""
    from tvm import relax

    dtype = dtype_of(bb, real)
    unit = np.eye(length)
    responses = [transform(unit), transform(1j * unit)]
    inputs = [real, imag]
    outputs = []
    for part in (np.real, np.imag) if complex_out else (np.real,):
        terms = [relax.op.matmul(x, constant(part(r).astype(dtype), dtype))
                 for x, r in zip(inputs, responses) if x is not None]
        outputs.append(terms[0] if len(terms) == 1 else relax.op.add(*terms))
    return relax.op.stack(outputs, axis=-1)


def _dft_transform(length: int, inverse: bool, onesided: bool) -> Transform:
    if inverse and onesided:
        return lambda x: np.fft.irfft(x, n=length, axis=-1)
    if inverse:
        return lambda x: np.fft.ifft(x, n=length, axis=-1)
    if onesided:
        return lambda x: np.fft.fft(x, n=length, axis=-1)[..., : length // 2 + 1]
    return lambda x: np.fft.fft(x, n=length, axis=-1)


@register("DFT", 17)
def dft(bb: Any, node: OnnxNode) -> Any:
    """ONNX DFT (opset 17: axis attribute; 20: axis input)."""
    from tvm import relax

    x = node.input(0)
    rank = len(static_shape(bb, x, "DFT input"))
    axis = _known_int(node.input(2), "DFT axis") if node.opset >= 20 else int(node.attr("axis", 1))
    axis = (-2 if axis is None else axis) % rank
    inverse, onesided = bool(node.attr("inverse", 0)), bool(node.attr("onesided", 0))
    size = static_shape(bb, x, "DFT input")[axis]
    length = _known_int(node.input(1), "DFT dft_length")
    if length is None:
        length = 2 * (size - 1) if inverse and onesided else size
    order = [d for d in range(rank - 1) if d != axis] + [axis]
    real, imag = (None if c is None else bb.emit(relax.op.permute_dims(c, order)) for c in _components(bb, x))
    result = _apply(bb, real, imag, size, _dft_transform(length, inverse, onesided), not (inverse and onesided))
    back = [order.index(d) for d in range(rank - 1)] + [rank - 1]
    return relax.op.permute_dims(bb.emit(result), back)


@register("STFT", 17)
def stft(bb: Any, node: OnnxNode) -> Any:
    """ONNX STFT: frames gathered by a constant index, windowed, then one DFT matmul."""
    from tvm import relax

    signal, window = node.input(0), node.input(2)
    length = static_shape(bb, signal, "STFT signal")[1]
    step = _known_int(node.input(1), "STFT frame_step")
    frame = _known_int(node.input(3), "STFT frame_length")
    if frame is None:
        if window is None:
            raise ValueError("STFT needs a window or a frame_length")
        frame = static_shape(bb, window, "STFT window")[0]
    frames = 1 + (length - frame) // step
    positions = np.arange(frames)[:, None] * step + np.arange(frame)[None, :]
    parts = []
    for part in _components(bb, signal):
        if part is not None:
            part = relax.op.take(part, constant(positions, "int64"), axis=1)  # [batch, frames, frame]
            parts.append(bb.emit(part if window is None else relax.op.multiply(part, window)))
    real, imag = parts if len(parts) == 2 else (parts[0], None)
    onesided = bool(node.attr("onesided", 1))
    return _apply(bb, real, imag, frame, _dft_transform(frame, False, onesided), True)
