"""ONNX Col2Im: column blocks summed back into an N-D image.

For each block offset, every image pixel receives at most one column entry (the sliding
positions are distinct), so the image is a sum over block offsets of one gather each, with a
constant index and a constant mask built in numpy from the (constant) image and block shapes.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant, constant_value, dtype_of, static_shape


def _shape_operand(expr: Any, what: str) -> tuple[int, ...]:
    value = constant_value(expr)
    if value is None:
        raise ValueError(f"Col2Im {what} computed at run time is not supported (it fixes the output shape)")
    return tuple(int(v) for v in value.reshape(-1))


def _sources(image: tuple[int, ...], block: tuple[int, ...], strides: Any, dilations: Any,
             pads: Any) -> tuple[np.ndarray, np.ndarray]:
    """index [blocks, pixels] into the flattened [blocks * positions] columns and a 0/1 mask."""
    dims = len(image)
    slides = [(image[d] + pads[d] + pads[d + dims] - dilations[d] * (block[d] - 1) - 1) // strides[d] + 1
              for d in range(dims)]
    positions = int(np.prod(slides))
    index = np.zeros((int(np.prod(block)), int(np.prod(image))), np.int64)
    mask = np.zeros(index.shape, np.float64)
    for b, offset in enumerate(itertools.product(*(range(k) for k in block))):
        for l, slide in enumerate(itertools.product(*(range(s) for s in slides))):
            pixel = [slide[d] * strides[d] - pads[d] + offset[d] * dilations[d] for d in range(dims)]
            if all(0 <= pixel[d] < image[d] for d in range(dims)):
                p = int(np.ravel_multi_index(pixel, image))
                index[b, p], mask[b, p] = b * positions + l, 1.0
    return index, mask


@register("Col2Im", 18)
def col2im(bb: Any, node: OnnxNode) -> Any:
    """ONNX Col2Im with constant ``image_shape`` and ``block_shape``."""
    from tvm import relax

    x = node.input(0)
    image, block = _shape_operand(node.input(1), "image_shape"), _shape_operand(node.input(2), "block_shape")
    dims = len(image)
    n, channels_blocks, _ = static_shape(bb, x, "Col2Im input")
    blocks = int(np.prod(block))
    index, mask = _sources(image, block, node.attr("strides", (1,) * dims), node.attr("dilations", (1,) * dims),
                           node.attr("pads", (0,) * (2 * dims)))
    c, dtype = channels_blocks // blocks, dtype_of(bb, x)
    flat = relax.op.reshape(x, [n, c, -1])  # [n, c, blocks * positions]
    gathered = relax.op.take(flat, constant(index.reshape(-1), "int64"), axis=2)
    gathered = relax.op.reshape(gathered, [n, c, blocks, int(np.prod(image))])
    weighted = relax.op.multiply(gathered, constant(mask.astype(dtype), dtype))
    return relax.op.reshape(relax.op.sum(weighted, axis=2), [n, c, *image])
