"""Matmuls in shapes the matmul schedule tiles (neo_local.backends.cpu_schedule.matmul_shapes and
dot_matmul.computed_rows): one-row products in a batch loop flattened, ragged columns padded,
prime row counts computed a few rows deeper; outputs against torch."""

from __future__ import annotations

import re

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
torch = pytest.importorskip("torch")

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule.dot_matmul import computed_rows  # noqa: E402
from test_cpu_schedule import AVX2, _after_vectorizing, _onnx_module, _rel, _run, needs_avx2  # noqa: E402


def _encoder_block(tokens: int):
    """An ``_EncoderBlock`` of 2 heads of 16 and its ONNX export at ``tokens`` tokens."""
    torch.manual_seed(0)
    model = _EncoderBlock(32, 2).eval()
    torch.backends.mha.set_fastpath_enabled(False)  # its fused op has no ONNX export
    try:
        return model, _onnx_module(model, (1, tokens, 32))
    finally:
        torch.backends.mha.set_fastpath_enabled(True)


def test_rows_without_a_divisor_for_a_deep_tile_are_computed_deeper():
    assert computed_rows(197, 72, 12) == 198  # a ViT's tokens: 3 x 4 tiles instead of 1 x 4
    assert computed_rows(197, 25, 12) > 197
    assert computed_rows(13, 2, 12) > 13
    assert computed_rows(64, 16, 12) == 64  # BERT-style's 64 tokens tile as they are
    assert computed_rows(50, 24, 12) == 50
    assert computed_rows(1, 16, 12) == 1  # one row: a GEMV, not padded into a GEMM


class _EncoderBlock(torch.nn.Module):
    """A ViT block on torch's MultiheadAttention (exported as [L, 1, E] @ [E, 3E] projections and
    per-head products of L x L scores): pre-norm attention and a GELU MLP."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        nn = torch.nn
        self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.att = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        y = self.n1(x)
        x = x + self.att(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.n2(x))


@needs_avx2
@pytest.mark.parametrize("tokens", [13, 16])
def test_attention_block_products_take_the_matmul_schedule(tokens):
    """Every product (the QKV projection, the scores, their weighted sum, the output projection
    and the MLP's two layers; at 16 tokens the two attention products are one kernel) runs on
    the matmul schedule, with 13 tokens (a prime; 13 score columns, padded to 16) as with 16."""
    model, mod = _encoder_block(tokens)
    opt, stats = cpu_schedule.optimize(mod, AVX2)
    products = [gv.name_hint for gv, f in opt.functions_items()
                if isinstance(f, tvm.tirx.PrimFunc) and "matmul" in gv.name_hint]
    assert len(products) == (6 if tokens == 13 else 5), products
    assert stats["matmul"] == len(products) and stats["unscheduled"] == 0, stats
    x = np.random.default_rng(0).standard_normal((1, tokens, 32)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = _run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x)
    assert got.shape == want.shape and _rel(got, want) < 1e-5


def test_ragged_score_columns_are_written_in_whole_vectors():
    """13 tokens: the scores' 13 columns are computed as 16 (``matmul_shapes``) and sliced in
    the epilogue. Written per column tile, the epilogue's vector loop held the slice's guard, and
    TVM's VectorizeLoop scalarized it in every tile (a ViT's 3 x 197 x 197 scores 88.5 -> 79 us
    once not). Here the scores (the kernel that slices) store one whole vector and a scalar
    tail of 5 per row; ``test_attention_block_products_take_the_matmul_schedule[13]`` checks the
    numbers."""
    _, mod = _encoder_block(13)
    opt, _ = cpu_schedule.optimize(mod, AVX2)
    name = next(gv.name_hint for gv in opt.functions if "matmul" in gv.name_hint and "strided_slice" in gv.name_hint)
    stores = re.findall(r"\bT_strided_slice\w*\[([^\]=]*)\] =", _after_vectorizing(opt, name))
    assert {":" in index for index in stores} == {True, False}, stores
