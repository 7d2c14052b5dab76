"""Grouped convs that are not depthwise (ResNeXt's 32 groups of 4 channels, RegNet's groups of 8
to 64, ShuffleNet v1's grouped 1x1 convs) in the blocked layout.

``ConvertLayout`` skips grouped convs, and TVM's own legalization of one ran on dlight: a ResNeXt
block (32 groups of 4 channels, 3x3 at 56x56, between 1x1 convs) took 7.4x onnxruntime's time.
Here adjacent groups merge into *block groups*, the fewest whose input and output channels both
fill whole vector blocks (``block_group``); a block group is a small dense conv whose weights are
zero between its groups (block-diagonal, ``block_grouped_weights``), so its multiply-adds are the
merged groups' count times the conv's own: 2x at 4 channels a group in 8-lane blocks, none from 8.
The conv is then a blocked conv2d with ``groups`` = the block groups, which ``_BlockedRegion``
rewrites like a depthwise one and ``passes.conv2d_nchwc_compute`` computes on the dense convs'
frame and schedules, each output block reading its own block group's input blocks.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from neo_local.backends.cpu_schedule.rewriting import plain_nchw_conv

#: the most groups merged into one block group: beyond it the zero weights cost more than dlight's
#: loop nest (at 4 channels a group, 16-lane blocks merge 4)
MAX_MERGE = 4


def block_group(groups: int, cin: int, cout: int, lanes: int) -> int:
    """How many adjacent groups of a conv with ``groups`` groups over ``cin`` -> ``cout``
    channels make one block group in ``lanes``-wide blocks: the fewest (dividing ``groups``) whose
    input and output channels are whole blocks; 0 where none up to ``MAX_MERGE`` does."""
    per_in, per_out = cin // groups, cout // groups
    for merge in range(1, MAX_MERGE + 1):
        if groups % merge == 0 and merge * per_in % lanes == 0 and merge * per_out % lanes == 0:
            return merge
    return 0


def plain_grouped(call: relax.Call, lanes: int) -> int:
    """``block_group``'s merge of a grouped ``plain_nchw_conv`` that is not depthwise; 0 for any
    other call or where no block group fits."""
    shapes = plain_nchw_conv(call)
    if shapes is None:
        return 0
    (xs, ws), groups = shapes, int(call.attrs.groups)
    if groups == 1 or ws[1] * groups != xs[1] or (groups == xs[1] and ws[0] == groups):  # depthwise: its own
        return 0
    return block_group(groups, xs[1], ws[0], lanes)


def block_grouped_weights(weights: tvm.ir.expr.Constant, groups: int, merge: int, lanes: int
                          ) -> tvm.ir.expr.Constant:
    """Grouped OIHW weights [O, I/groups, kh, kw] as the block groups' OIHW{L}i{L}o,
    [O/L, merge*I/groups/L, kh, kw, L, L]: each output channel's weights at its own group's input
    channels within its block group, zero at the other groups'."""
    w = weights.value.numpy()
    cout, per_in, kh, kw = w.shape
    per_out = cout // groups
    w = w.reshape(groups // merge, merge, per_out, per_in, kh, kw)
    # dense[s, j, o, k, i] = w[s, j, o, i] where j == k: block-diagonal within a block group
    dense = np.einsum("sjoihw,jk->sjokihw", w, np.eye(merge, dtype=w.dtype))
    wide = merge * per_in
    dense = dense.reshape(cout // lanes, lanes, wide // lanes, lanes, kh, kw)
    return relax.const(np.ascontiguousarray(dense.transpose(0, 2, 4, 5, 3, 1)))
