"""Winograd convolution F(m x m, r x r) for blocked float32 3x3 and 5x5 convs.

An r x r stride-1 conv computes each m x m tile of its output from an (m+r-1) x (m+r-1) tile of
its input (3x3 convs below, a = m + 2; 5x5 ones the same with a = m + 4). Winograd's algorithm
transforms the input tiles (``V = B^T d B``) and the weights (``U = G g G^T``, at compile time),
multiplies them element by element, summed over the input channels: (m+2)^2 independent matrix
products of (output channels x input channels) by (input channels x tiles), and transforms the
products back (``Y = A^T M A``). The products take (m+2)^2 / (9 m^2) of the direct conv's
multiply-adds: 0.44 for F(2,3), 0.25 for F(4,3).

Here the three stages are three kernels in the blocked layout:

- ``winograd_input``: V[e1, e2, ic chunk, tile, ic block], the input's zero padding inlined;
- ``conv2d_nchwc``: the products, written as a blocked conv whose batch is the (m+2)^2 points
  (1 x tiles "pixels", a 1x1 "kernel" per point), so ``schedule_conv`` tiles them in registers
  as it does any conv (and the tuner tunes them);
- ``winograd_output``: Y = A^T M A per tile, with the conv's epilogue (bias, residual, relu).

Each transform computes its first half per tile (B^T d, M A) and then the second, rather than
each value from all 36 terms: ResNet-50-style's build (Relax passes and LLVM) took 11.7 s that
way against 16.7 s (9.6 s with no Winograd convs).

Taken (``tile_size``) for 3x3 stride-1 convs padded by 1 or 0 on each side with at least 16
output tiles (outputs of 13x13 and up). Measured alone (Zen 5, 2 threads, against the direct
blocked conv, the epilogue included): 64->64 at 56x56 0.45 -> 0.16 ms, 128->128 at 28x28 0.45 ->
0.15, 256->256 at 14x14 0.52 -> 0.19, DenseNet's 128->32 at 56x56 0.68 -> 0.32, SqueezeNet's
16->64 at 55x55 0.115 -> 0.061 and 64->256 at 13x13 0.118 -> 0.060. At 7x7 (4 tiles) the
transformed weights, 4x the conv's, are read for too few tiles: 512->512 0.53 -> 0.68 ms. The
transforms' arithmetic differs from the direct sum's by about 1e-5 of the largest output per
conv.

Whole models in one process, against the same build with Winograd only where it has 128
channels on both sides (any size), 5 rounds: ResNet-50-style 18.2 -> 16.6 ms (onnxruntime
18.2), DenseNet 8.04 -> 6.83 (8.00), SqueezeNet 1.74 -> 1.41 (1.62), Inception 6.50 -> 5.80
(6.38), VGG-11 15.1 -> 13.2 (30.4).

Outputs of 13x13 to 16x16 (a 4 x 4 grid of F(4,3) tiles) take F(2,3) instead (``F2_MAX_TILES``):
there the transformed weights, read for only 16 tiles, cost more inside a model than the
products they save.

Unpadded ("valid") convs take it too: the input transform reads the input at the conv's own
padding. Inception-v3's 32->32 at 109x109 and 80->192 at 52x52 ran direct until then (1.3 and
4.0 ms of its 16); the model in one process, 30 rounds alternating (znver3, 2 threads): paired
ratio 0.837 against the direct convs (the same library against itself: 1.006).

5x5 convs of 8x8 outputs and up take F(2,5) (``MIN_OUTPUT_5X5``; a = 6, F(4,3)'s points: 36/100
of the multiply-adds; its transformed weights 36/25 of the conv's). Alone (znver3, 2 threads,
with relu): 48->64 at 25x25 0.45 against 0.67 ms direct (onnxruntime 1.13), 32->64 at 56x56 1.33
/ 1.90 (2.00), 96->128 at 14x14 0.38 / 0.77 (1.38); outputs within 1e-5 of the direct sum's
largest. Inception's two 48->64 at 25x25, the model in one process, 30 rounds alternating:
paired ratio 0.973 (control 1.006).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from tvm import s_tir, te, tirx
from tvm.topi.utils import const_matrix

INPUT_BLOCK = "winograd_input"
OUTPUT_BLOCK = "winograd_output"
#: the transforms' first halves (B^T d, M A), computed per tile inside the second
ROWS, COLUMNS = "winograd_input_rows", "winograd_output_columns"
#: the fewest channels on either side measured to gain (SqueezeNet's 16->64)
MIN_CHANNELS = 16
#: fewer output tiles than this: the transformed weights (4x the conv's) are read for too few
#: tiles (512->512 at 7x7, 4 tiles: 37 MB of weights, 0.53 -> 0.68 ms)
MIN_TILES = 16
#: the smallest output (pixels) of a 5x5 conv that takes F(2,5), whose transformed weights are
#: only 36/25 of the conv's. Alone (znver3, 2 threads, with relu, against the direct conv):
#: 128->128 at 8x8 0.17 against 0.34 ms, 32->64 at 10x10 0.071 / 0.093, 48->64 at 12x12
#: 0.100 / 0.146; at 7x7 (8x8 computed) 48->128 the same, 0.123 / 0.127
MIN_OUTPUT_5X5 = 64


@dataclass(frozen=True)
class Matrices:
    """F(m, r)'s transforms: B^T (a x a), G (a x r), A^T (m x a), a = m + r - 1."""

    m: int
    BT: np.ndarray
    G: np.ndarray
    AT: np.ndarray

    @property
    def r(self) -> int:
        return self.G.shape[1]

    @property
    def a(self) -> int:
        return self.m + self.r - 1


#: B^T on the points 0, 1, -1, 2, -2 and infinity: F(4,3)'s and F(2,5)'s (a = 6)
_BT6 = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                 [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], "float64")

#: F(m, r) by (m, r): F(4,3) and F(2,5) on the points 0, 1, -1, 2, -2 (and infinity), F(2,3) on
#: 0, 1, -1 (Lavin and Gray's matrices; F(2,5)'s by the same Toom-Cook construction).
#: F(4,3) measured against F(2,3), each conv alone (Zen 5, 2 threads): faster from 7x7 outputs up
#: (256->256 at 7x7 0.095 against 0.111 ms, 512->512 at 7x7 0.30 against 0.34, at 14x14 0.28
#: against 0.35), though a 7x7 output in 4x4 tiles computes 8x8; inside a model F(2,3) gains
#: where F(4,3) would have 16 tiles (``F2_MAX_TILES``). F(4,3)'s outputs differ from the direct
#: sum's by about 1e-5 of their largest, F(2,3)'s by 1e-6
MATRICES = {
    (4, 3): Matrices(
        4,
        _BT6,
        np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                  [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], "float64"),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], "float64"),
    ),
    (2, 3): Matrices(
        2,
        np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], "float64"),
        np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]], "float64"),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]], "float64"),
    ),
    (2, 5): Matrices(
        2,
        _BT6,
        np.array([[1 / 4, 0, 0, 0, 0], [-1 / 6, -1 / 6, -1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6, 1 / 3, 2 / 3], [1 / 24, -1 / 12, 1 / 6, -1 / 3, 2 / 3], [0, 0, 0, 0, 1]],
                 "float64"),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 1]], "float64"),
    ),
}

#: the most F(4,3) tiles (a 4 x 4 grid: outputs of 13x13 to 16x16) at which a conv takes F(2,3)
#: instead: its transformed weights are 16/9 of the conv's, not 36/9, and each is read for 49 tiles
#: (13x13: 14x14 computed) instead of 16 (16x16 computed). Alone, its weights in cache, F(4,3) is
#: 8-10% faster (znver3, 2 threads: 64->256 at 13x13 0.244 against 0.262 ms, 48->192 0.177
#: against 0.196); inside a model, which reads them from further out, F(2,3) is: SqueezeNet 1.1
#: (four such convs) in one process, 60 rounds alternating, twice: 3% faster (paired ratios
#: 0.968 and 0.972; the same library against itself 0.998 and 0.995), 6% in two shorter runs;
#: DenseNet-121 layout 1.7% in one run, the same in another; ResNet-50 and VGG-11 (their 14x14
#: convs) the same
F2_MAX_TILES = 16


def tile_size(channels: tuple[int, int], kernel: tuple[int, int], strides, padding, dilation,
              out_hw: tuple[int, int]) -> int:
    """m of the F(m, r) to compute a conv with (``MATRICES``), 0 for the direct conv: 3x3 or 5x5,
    stride 1, undilated, padded by at most r // 2 on each side, at least ``MIN_CHANNELS`` in and
    out; 3x3: ``MIN_TILES`` output tiles of 4x4, F(2,3) up to ``F2_MAX_TILES`` of them; 5x5:
    F(2,5) from ``MIN_OUTPUT_5X5`` output pixels."""
    r = int(kernel[0])
    if (tuple(kernel) not in ((3, 3), (5, 5)) or any(int(s) != 1 for s in strides)
            or any(int(d) != 1 for d in dilation) or any(int(p) > r // 2 for p in padding)
            or min(channels) < MIN_CHANNELS):
        return 0
    if r == 5:
        return 2 if out_hw[0] * out_hw[1] >= MIN_OUTPUT_5X5 else 0
    th, tw = tile_grid(*out_hw, 4)
    if th * tw < MIN_TILES:
        return 0
    return 2 if th * tw <= F2_MAX_TILES else 4


def tile_grid(h: int, w: int, m: int) -> tuple[int, int]:
    """The rows and columns of m x m tiles covering an h x w output."""
    return math.ceil(h / m), math.ceil(w / m)


def input_transform(data: te.Tensor, f_mr: tuple[int, int], tiles: int, out_hw: tuple[int, int],
                    pad: tuple[int, int]) -> te.Tensor:
    """V[e1, e2, c, t, k] = (B^T d_t B)[e1, e2] over channel chunk c, block lane k, for the
    ``tiles`` tiles of an ``out_hw`` output (t beyond the last repeats it: the products may be
    computed wider) of the input padded by ``pad`` (top, left) rows and columns; B^T d_t first
    (``ROWS``), then its product with B."""
    mat = MATRICES[f_mr]
    m = mat.m
    _, icc, h, w, icb = (int(d) for d in data.shape)
    th, tw = tile_grid(*out_hw, m)
    top, left = pad
    zero = tirx.const(0, data.dtype)

    def padded(c, y, x, k):  # tiles past the output's edge read zeros past the input's
        inside = tirx.all(y >= top, y < h + top, x >= left, x < w + left)
        return tirx.if_then_else(inside, data[0, c, y - top, x - left, k], zero)

    def corner(t):  # the tile's first input row and column (of the padded input)
        t = te.min(t, th * tw - 1)
        return (t // tw) * m, (t % tw) * m

    b = const_matrix(mat.BT.T.astype("float32"), "winograd_B")
    ri = te.reduce_axis((0, mat.a), "ri")
    rows = te.compute(
        (mat.a, icc, tiles, mat.a, icb),
        lambda e1, c, t, j, k: te.sum(b[ri][e1] * padded(c, corner(t)[0] + ri, corner(t)[1] + j, k), axis=ri),
        name=ROWS,
    )
    rj = te.reduce_axis((0, mat.a), "rj")
    return te.compute((mat.a, mat.a, icc, tiles, icb),
                      lambda e1, e2, c, t, k: te.sum(rows[e1, c, t, rj, k] * b[rj][e2], axis=rj), name=INPUT_BLOCK)


def weight_transform(kernel: te.Tensor, f_mr: tuple[int, int]) -> te.Tensor:
    """U[e1 * a + e2, oc chunk, ic chunk, ic block, oc block] = (G g G^T)[e1, e2] of the blocked
    OIHW{ic}i{oc}o kernel (a constant: folded at compile)."""
    mat = MATRICES[f_mr]
    occ, icc, _, _, icb, ocb = (int(d) for d in kernel.shape)
    g = const_matrix(mat.G.astype("float32"), "winograd_G")
    ry = te.reduce_axis((0, mat.r), "ry")
    rx = te.reduce_axis((0, mat.r), "rx")
    return te.compute(
        (mat.a * mat.a, occ, icc, icb, ocb),
        lambda e, o, i, ib, ob: te.sum(g[e // mat.a][ry] * kernel[o, i, ry, rx, ib, ob] * g[e % mat.a][rx],
                                       axis=[ry, rx]),
        name="winograd_weight",
    )


def products(v: te.Tensor, u: te.Tensor, block_name: str) -> te.Tensor:
    """M[e, oc chunk, 0, t, oc block] = sum over input channels of V[e, t] U[e]: a blocked conv of
    batch a^2 and 1 x tiles pixels with a 1x1 kernel per batch entry (named ``block_name``, the
    conv block ``schedule_conv`` schedules)."""
    a, _, icc, tiles, icb = (int(d) for d in v.shape)
    _, occ, _, _, ocb = (int(d) for d in u.shape)
    rc = te.reduce_axis((0, icc), "rc")
    ry = te.reduce_axis((0, 1), "ry")
    rx = te.reduce_axis((0, 1), "rx")
    rb = te.reduce_axis((0, icb), "rb")
    return te.compute(
        (a * a, occ, 1, tiles, ocb),
        lambda e, c, y, x, cb: te.sum(v[e // a, e % a, rc, x + y + ry + rx, rb] * u[e, c, rc, rb, cb],
                                      axis=[rc, ry, rx, rb]),
        name=block_name,
    )


def output_transform(mm: te.Tensor, f_mr: tuple[int, int], out_hw: tuple[int, int]) -> te.Tensor:
    """Y[0, c, y, x, k] = (A^T M_t A)[y mod m, x mod m] for the tile t holding (y, x): M_t A first
    (``COLUMNS``), then A^T times that."""
    mat = MATRICES[f_mr]
    m = mat.m
    _, occ, _, tiles, ocb = (int(d) for d in mm.shape)
    h, w = out_hw
    _, tw = tile_grid(h, w, m)
    at = const_matrix(mat.AT.T.astype("float32"), "winograd_A")
    rb = te.reduce_axis((0, mat.a), "rb")
    columns = te.compute(
        (mat.a, occ, tiles, m, ocb),
        lambda i, c, t, xi, k: te.sum(mm[i * mat.a + rb, c, 0, t, k] * at[rb][xi], axis=rb),
        name=COLUMNS,
    )
    ra = te.reduce_axis((0, mat.a), "ra")

    def y(n, c, yy, xx, k):
        return te.sum(columns[ra, c, (yy // m) * tw + xx // m, xx % m, k] * at[ra][yy % m], axis=ra)

    return te.compute((1, occ, h, w, ocb), y, name=OUTPUT_BLOCK)


def schedule_transform(func: tirx.PrimFunc) -> tirx.PrimFunc | None:
    """The schedule of a ``winograd_input`` kernel (its padding and any elementwise producers
    inlined) or a ``winograd_output`` kernel (its epilogue computed per tile); None for others.
    Each: the tiles run in parallel, each tile's first half (``ROWS``, ``COLUMNS``) computed in
    it, the transforms' small loops unrolled (the matrices' entries become constants), the
    channel block vectorized."""
    sch = s_tir.Schedule(func)
    blocks = sch.get_child_blocks(sch.get_sblock("root"))
    names = [sch.get(b).name_hint for b in blocks]
    kind = next((n for n in (INPUT_BLOCK, OUTPUT_BLOCK) if n in names), None)
    if kind is None or (kind == INPUT_BLOCK and names[-1] != INPUT_BLOCK):
        return None
    at = names.index(kind)
    half = blocks[names.index(ROWS if kind == INPUT_BLOCK else COLUMNS)]
    main, epilogue = blocks[at], blocks[at + 1:]
    for b in blocks[:at] + epilogue[:-1]:  # the matrices, producers, all but the last epilogue block
        if b != half:
            sch.compute_inline(b)
    if kind == INPUT_BLOCK:
        e1, e2, c, t, k, rj = sch.get_loops(main)
        sch.reorder(c, t, e1, e2, rj, k)
        tile = sch.fuse(c, t)
        sch.parallel(tile)
        unrolled = (e1, e2, rj)
    else:
        m = _tile_of(sch, half)
        n, c, yy, xx, k, ra = sch.get_loops(main)
        yo, yi = sch.split(yy, [None, m])
        tile, xi = sch.split(xx, [None, m])
        sch.reorder(n, c, yo, tile, yi, xi, ra, k)
        sch.parallel(sch.fuse(n, c, yo))
        unrolled = (yi, xi, ra)
    for loop in unrolled:
        sch.unroll(loop)
    sch.vectorize(k)
    sch.compute_at(half, tile)
    *small, lane, inner = sch.get_loops(half)[-4:]
    sch.reorder(*small, inner, lane)
    for loop in (*small, inner):
        sch.unroll(loop)
    sch.vectorize(lane)
    if epilogue:
        sch.reverse_compute_at(epilogue[-1], tile)
        sch.vectorize(sch.get_loops(epilogue[-1])[-1])
    return sch.mod["main"]


def _tile_of(sch: s_tir.Schedule, columns) -> int:
    """m of a ``winograd_output`` kernel: its ``COLUMNS`` block's column count."""
    return int(sch.get(sch.get_loops(columns)[3]).extent)

