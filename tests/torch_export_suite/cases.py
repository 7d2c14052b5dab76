"""The torch.export suite's catalogue: one small torch module per aten operator or operator family.

Each case is data (a frozen ``Case``): how to build the module (a layer, or a function wrapped
in ``Fn``), the inputs it takes and the tolerance it is compared with. Modules are built after
``torch.manual_seed(0)`` and inputs come from a generator seeded with the case's name, so every
run sees the same weights and values. Workers look cases up by name, so nothing here is pickled.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

RTOL, ATOL = 1e-3, 1e-5


@dataclass(frozen=True)
class Input:
    """One input tensor: float inputs are standard normal unless ``low``/``high`` bound them
    (uniform); integer and bool inputs are uniform in [low, high)."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Case:
    """One module exported, imported, compiled and compared with torch's eager output."""

    name: str
    family: str
    domain: str  # vision, nlp, audio or common
    make: Callable[[], nn.Module]
    inputs: tuple[Input, ...]
    rtol: float = RTOL
    atol: float = ATOL
    why: str = ""  # the reason for a tolerance other than RTOL/ATOL


class Fn(nn.Module):
    """A module whose forward is one function of its inputs (for functional aten operators)."""

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(*xs)


def build(case: Case) -> nn.Module:
    """The case's module in eval mode, with seeded parameters and buffers."""
    torch.manual_seed(0)
    module = case.make().eval()
    with torch.no_grad():
        for name, buf in module.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape) * 0.1)
            elif name.endswith("running_var"):
                buf.copy_(torch.rand(buf.shape) + 0.5)
    return module


def make_inputs(case: Case) -> tuple[torch.Tensor, ...]:
    """The case's inputs from a generator seeded with its name."""
    g = torch.Generator().manual_seed(zlib.crc32(case.name.encode()))
    out = []
    for spec in case.inputs:
        dtype = getattr(torch, spec.dtype)
        if dtype.is_floating_point and spec.low is None:
            out.append(torch.randn(spec.shape, generator=g, dtype=dtype))
        elif dtype.is_floating_point:
            out.append(torch.rand(spec.shape, generator=g, dtype=dtype) * (spec.high - spec.low) + spec.low)
        else:
            low, high = int(spec.low or 0), int(spec.high if spec.high is not None else 2)
            out.append(torch.randint(low, high, spec.shape, generator=g).to(dtype))
    return tuple(out)


def f32(*shape: int) -> Input:
    return Input(shape)


def pos(*shape: int) -> Input:
    """Strictly positive floats, for log, sqrt, rsqrt and pow."""
    return Input(shape, low=0.1, high=2.0)


def i64(*shape: int, high: int) -> Input:
    return Input(shape, "int64", 0, high)


def boolean(*shape: int) -> Input:
    return Input(shape, "bool")


IMG, SEQ = f32(1, 4, 8, 8), f32(2, 6, 16)  # a small image batch; (batch, tokens, features)


class Block(nn.Sequential):
    """A residual block: x + body(x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


class SqueezeExcite(nn.Module):
    """The SE pattern: global average pool, two 1x1 convs, sigmoid gate."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c // 2, 1), nn.ReLU(), nn.Conv2d(c // 2, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc(x))


class RMSNorm(nn.Module):
    """The LLaMA-style RMS norm written out (pow, mean, rsqrt, mul)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.rand(d) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class Positions(nn.Module):
    """Token plus learned position embeddings, positions from arange."""

    def __init__(self) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(50, 16), nn.Embedding(32, 16)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.tok(ids) + self.pos(torch.arange(ids.shape[1]))


class Rotary(nn.Module):
    """Rotary position embedding: cos/sin tables from arange, rotate-half, cat."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, d = x.shape[-2], x.shape[-1]
        inv = 1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        ang = torch.outer(torch.arange(t, dtype=torch.float32), inv)
        emb = torch.cat([ang, ang], dim=-1)
        x1, x2 = x[..., : d // 2], x[..., d // 2 :]
        return x * emb.cos() + torch.cat([-x2, x1], dim=-1) * emb.sin()


class Recurrent(nn.Module):
    """An nn.LSTM/GRU/RNN returning its output sequence and final hidden state."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, state = self.layer(x)
        return out, state[0] if isinstance(state, tuple) else state


class Attention(nn.Module):
    """nn.MultiheadAttention used as self-attention."""

    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


def _stft_magnitude(x: torch.Tensor) -> torch.Tensor:
    spec = torch.stft(x, n_fft=16, hop_length=4, window=torch.hann_window(16), return_complex=True)
    return spec.abs()


def _fn(name: str, family: str, domain: str, fn: Callable[..., torch.Tensor], *inputs: Input, **kw) -> Case:
    return Case(name, family, domain, lambda: Fn(fn), inputs, **kw)


def _layer(name: str, family: str, domain: str, make: Callable[[], nn.Module], *inputs: Input, **kw) -> Case:
    return Case(name, family, domain, make, inputs, **kw)


CASES: tuple[Case, ...] = (
    # ---- vision: convolutions
    _layer("conv1d", "conv", "vision", lambda: nn.Conv1d(4, 6, 3, padding=1), f32(2, 4, 16)),
    _layer("conv2d", "conv", "vision", lambda: nn.Conv2d(4, 6, 3, padding=1), IMG),
    _layer("conv2d_stride_dilation", "conv", "vision", lambda: nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2), IMG),
    _layer("conv2d_no_bias_rect", "conv", "vision", lambda: nn.Conv2d(4, 6, (1, 3), bias=False), IMG),
    _layer("conv2d_grouped", "conv", "vision", lambda: nn.Conv2d(4, 8, 3, padding=1, groups=2), IMG),
    _layer("conv2d_depthwise", "conv", "vision", lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4), IMG),
    _layer("conv3d", "conv", "vision", lambda: nn.Conv3d(2, 4, 3, padding=1), f32(1, 2, 4, 6, 6)),
    _layer("conv_transpose1d", "conv_transpose", "vision", lambda: nn.ConvTranspose1d(4, 3, 4, stride=2, padding=1), f32(1, 4, 8)),
    _layer("conv_transpose2d", "conv_transpose", "vision", lambda: nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), IMG),
    _layer("conv_transpose2d_grouped", "conv_transpose", "vision", lambda: nn.ConvTranspose2d(4, 4, 2, stride=2, groups=2), IMG),
    _layer("conv_transpose3d", "conv_transpose", "vision", lambda: nn.ConvTranspose3d(2, 2, 2, stride=2), f32(1, 2, 3, 3, 3)),
    # ---- vision: normalization
    _layer("batch_norm2d", "norm", "vision", lambda: nn.BatchNorm2d(4), IMG),
    _layer("batch_norm1d", "norm", "vision", lambda: nn.BatchNorm1d(6), f32(3, 6)),
    _layer("group_norm", "norm", "vision", lambda: nn.GroupNorm(2, 4), IMG),
    _layer("instance_norm2d", "norm", "vision", lambda: nn.InstanceNorm2d(4, affine=True), IMG),
    _layer("layer_norm_chw", "norm", "vision", lambda: nn.LayerNorm([4, 8, 8]), IMG),
    _layer("local_response_norm", "norm", "vision", lambda: nn.LocalResponseNorm(3), IMG),
    # ---- vision: pooling
    _fn("max_pool2d", "pool", "vision", lambda x: F.max_pool2d(x, 2), IMG),
    _fn("max_pool2d_pad_ceil", "pool", "vision", lambda x: F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True), IMG),
    _fn("avg_pool2d", "pool", "vision", lambda x: F.avg_pool2d(x, 2), IMG),
    _fn("avg_pool2d_pad_exclude", "pool", "vision", lambda x: F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False), IMG),
    _fn("max_pool1d", "pool", "vision", lambda x: F.max_pool1d(x, 3, 2), f32(2, 4, 16)),
    _fn("avg_pool1d", "pool", "vision", lambda x: F.avg_pool1d(x, 4), f32(2, 4, 16)),
    _fn("max_pool3d", "pool", "vision", lambda x: F.max_pool3d(x, 2), f32(1, 2, 4, 4, 4)),
    _fn("adaptive_avg_pool2d_1", "pool", "vision", lambda x: F.adaptive_avg_pool2d(x, 1), IMG),
    _fn("adaptive_avg_pool2d_3", "pool", "vision", lambda x: F.adaptive_avg_pool2d(x, 3), IMG),
    _fn("adaptive_max_pool2d", "pool", "vision", lambda x: F.adaptive_max_pool2d(x, 2), IMG),
    _fn("adaptive_avg_pool1d", "pool", "vision", lambda x: F.adaptive_avg_pool1d(x, 4), f32(2, 4, 16)),
    # ---- vision: resampling
    _fn("upsample_nearest", "resample", "vision", lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), IMG),
    _fn("upsample_nearest_size", "resample", "vision", lambda x: F.interpolate(x, size=(12, 5), mode="nearest"), IMG),
    _fn("upsample_bilinear", "resample", "vision", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), IMG),
    _fn("upsample_bilinear_align", "resample", "vision",
        lambda x: F.interpolate(x, size=(11, 13), mode="bilinear", align_corners=True), IMG),
    _fn("upsample_bicubic", "resample", "vision", lambda x: F.interpolate(x, scale_factor=2, mode="bicubic"), IMG),
    _fn("pixel_shuffle", "resample", "vision", lambda x: F.pixel_shuffle(x, 2), IMG),
    _fn("pixel_unshuffle", "resample", "vision", lambda x: F.pixel_unshuffle(x, 2), IMG),
    # ---- activations
    _fn("relu", "activation", "vision", torch.relu, IMG),
    _fn("relu6", "activation", "vision", F.relu6, IMG),
    _fn("hardswish", "activation", "vision", F.hardswish, IMG),
    _fn("hardsigmoid", "activation", "vision", F.hardsigmoid, IMG),
    _fn("hardtanh", "activation", "vision", lambda x: F.hardtanh(x, -0.5, 0.5), IMG),
    _fn("silu", "activation", "vision", F.silu, IMG),
    _fn("gelu", "activation", "vision", F.gelu, IMG),
    _fn("mish", "activation", "vision", F.mish, IMG),
    _fn("leaky_relu", "activation", "vision", lambda x: F.leaky_relu(x, 0.2), IMG),
    _fn("elu", "activation", "vision", F.elu, IMG),
    _fn("selu", "activation", "vision", F.selu, IMG),
    _layer("prelu", "activation", "vision", lambda: nn.PReLU(4, 0.1), IMG),
    _fn("sigmoid", "activation", "common", torch.sigmoid, IMG),
    _fn("tanh", "activation", "common", torch.tanh, IMG),
    _fn("softplus", "activation", "common", F.softplus, IMG),
    _fn("log_sigmoid", "activation", "common", F.logsigmoid, IMG),
    # ---- tensor layout
    _fn("cat", "layout", "common", lambda a, b: torch.cat([a, b], dim=1), IMG, IMG),
    _fn("stack", "layout", "common", lambda a, b: torch.stack([a, b], dim=2), SEQ, SEQ),
    _fn("split_sizes", "layout", "common", lambda x: torch.split(x, [1, 3], dim=1), IMG),
    _fn("chunk", "layout", "common", lambda x: x.chunk(2, dim=-1), SEQ),
    _fn("unbind", "layout", "common", lambda x: torch.unbind(x, dim=0), SEQ),
    _fn("flatten", "layout", "common", lambda x: torch.flatten(x, 1), IMG),
    _fn("reshape_view", "layout", "common", lambda x: x.view(2, 3, 2, 16).reshape(12, 16), SEQ),
    _fn("permute", "layout", "common", lambda x: x.permute(0, 2, 3, 1), IMG),
    _fn("transpose_contiguous", "layout", "common", lambda x: x.transpose(1, 2).contiguous(), SEQ),
    _fn("squeeze_unsqueeze", "layout", "common", lambda x: x.unsqueeze(1).squeeze(0), f32(1, 4, 5)),
    _fn("slice_step", "layout", "nlp", lambda x: x[:, 1:5:2, -4:], SEQ),
    _fn("select_index", "layout", "nlp", lambda x: x[:, 0], SEQ),
    _fn("expand", "layout", "nlp", lambda x: x.expand(3, 4, 5), f32(1, 4, 5)),
    _fn("repeat", "layout", "nlp", lambda x: x.repeat(2, 1, 3), f32(2, 4, 5)),
    _fn("flip", "layout", "common", lambda x: torch.flip(x, [-1]), SEQ),
    _fn("roll", "layout", "common", lambda x: torch.roll(x, 2, dims=-1), SEQ),
    # ---- padding
    _fn("pad_constant", "pad", "vision", lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), IMG),
    _fn("pad_reflect", "pad", "vision", lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"), IMG),
    _fn("pad_replicate", "pad", "vision", lambda x: F.pad(x, (2, 1, 1, 2), mode="replicate"), IMG),
    _fn("pad_circular", "pad", "vision", lambda x: F.pad(x, (2, 1, 1, 2), mode="circular"), IMG),
    # ---- selection and indexing
    _fn("clamp", "elementwise", "common", lambda x: torch.clamp(x, -0.5, 0.7), IMG),
    _fn("where", "select", "common", lambda x, y: torch.where(x > 0, x, y), SEQ, SEQ),
    _fn("topk", "select", "vision", lambda x: tuple(torch.topk(x, 3, dim=-1)), SEQ),
    _fn("sort", "select", "common", lambda x: tuple(torch.sort(x, dim=-1, descending=True)), SEQ),
    _fn("argmax", "reduce", "vision", lambda x: torch.argmax(x, dim=1), IMG),
    _fn("argmin_keepdim", "reduce", "common", lambda x: torch.argmin(x, dim=-1, keepdim=True), SEQ),
    _fn("masked_fill", "select", "nlp", lambda x, m: x.masked_fill(m, -1e4), SEQ, boolean(2, 6, 16)),
    _fn("tril_triu", "select", "nlp", lambda x: torch.tril(x) - torch.triu(x, 1), f32(2, 6, 6)),
    _fn("gather", "index", "nlp", lambda x, i: torch.gather(x, 2, i), SEQ, i64(2, 6, 3, high=16)),
    _fn("index_select", "index", "nlp", lambda x, i: torch.index_select(x, 1, i), SEQ, i64(4, high=6)),
    _fn("index_tensor", "index", "nlp", lambda x, i: x[i], f32(10, 4), i64(2, 3, high=10)),
    _fn("index_put", "index", "nlp", lambda x, i, v: x.index_put((i,), v), f32(10, 4), i64(3, high=10), f32(3, 4)),
    _fn("scatter", "index", "nlp", lambda x, i, v: x.scatter(1, i, v), f32(4, 8), i64(4, 2, high=8), f32(4, 2)),
    _fn("one_hot", "index", "nlp", lambda i: F.one_hot(i, 7), i64(2, 5, high=7)),
    # ---- softmax and reductions
    _fn("softmax", "softmax", "common", lambda x: torch.softmax(x, dim=-1), SEQ),
    _fn("log_softmax", "softmax", "common", lambda x: F.log_softmax(x, dim=1), IMG),
    _fn("mean_keepdim", "reduce", "common", lambda x: x.mean(dim=(2, 3), keepdim=True), IMG),
    _fn("sum", "reduce", "common", lambda x: x.sum(dim=1), SEQ),
    _fn("amax_amin", "reduce", "common", lambda x: torch.amax(x, dim=-1) - torch.amin(x, dim=1).sum(-1, keepdim=True), SEQ),
    _fn("max_dim", "reduce", "common", lambda x: tuple(torch.max(x, dim=1)), SEQ),
    _fn("var_std", "reduce", "common", lambda x: x.var(dim=-1) + x.std(dim=-1, unbiased=False), SEQ),
    _fn("prod", "reduce", "common", lambda x: x.prod(dim=-1), f32(3, 5)),
    _fn("logsumexp", "reduce", "common", lambda x: torch.logsumexp(x, dim=-1), SEQ),
    _fn("norm_l2", "reduce", "common", lambda x: torch.linalg.vector_norm(x, dim=-1), SEQ),
    _fn("cumsum", "reduce", "nlp", lambda x: torch.cumsum(x, dim=1), SEQ),
    _fn("any_all", "reduce", "nlp", lambda m: torch.stack([m.any(dim=-1), m.all(dim=-1)]), boolean(3, 5)),
    # ---- matrix products
    _fn("matmul", "matmul", "common", torch.matmul, f32(2, 3, 8), f32(8, 5)),
    _fn("matmul_batched_broadcast", "matmul", "common", torch.matmul, f32(2, 1, 3, 8), f32(4, 8, 5)),
    _fn("bmm", "matmul", "common", torch.bmm, f32(2, 3, 8), f32(2, 8, 5)),
    _fn("mv", "matmul", "common", torch.mv, f32(5, 8), f32(8)),
    _layer("linear", "matmul", "common", lambda: nn.Linear(16, 8), SEQ),
    _fn("addmm", "matmul", "common", lambda b, x, w: torch.addmm(b, x, w, beta=0.5, alpha=2.0), f32(5), f32(3, 8), f32(8, 5)),
    _fn("baddbmm", "matmul", "common", lambda b, x, w: torch.baddbmm(b, x, w), f32(2, 3, 5), f32(2, 3, 8), f32(2, 8, 5)),
    _fn("einsum_attention", "matmul", "nlp", lambda q, k: torch.einsum("bhqd,bhkd->bhqk", q, k), f32(1, 2, 5, 8), f32(1, 2, 6, 8)),
    _fn("einsum_outer_trace", "matmul", "common", lambda a, b: torch.einsum("i,j->ij", a, b).sum() + torch.einsum("ii", a.outer(b)[:, :4]), f32(4), f32(6)),
    # ---- NLP
    _layer("embedding", "embedding", "nlp", lambda: nn.Embedding(50, 16), i64(2, 7, high=50)),
    _layer("embedding_positions", "embedding", "nlp", Positions, i64(2, 7, high=50)),
    _fn("sdpa", "attention", "nlp", F.scaled_dot_product_attention, f32(1, 2, 6, 8), f32(1, 2, 6, 8), f32(1, 2, 6, 8)),
    _fn("sdpa_causal", "attention", "nlp", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        f32(1, 2, 6, 8), f32(1, 2, 6, 8), f32(1, 2, 6, 8)),
    _fn("sdpa_bool_mask", "attention", "nlp", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
        f32(1, 2, 6, 8), f32(1, 2, 7, 8), f32(1, 2, 7, 8), Input((1, 1, 6, 7), "bool", 1, 2)),
    _fn("sdpa_float_mask", "attention", "nlp", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
        f32(1, 2, 6, 8), f32(1, 2, 6, 8), f32(1, 2, 6, 8), f32(1, 1, 6, 6)),
    _layer("multihead_attention", "attention", "nlp", Attention, SEQ),
    _layer("transformer_encoder_layer", "attention", "nlp",
           lambda: nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True), SEQ),
    _layer("layer_norm", "norm", "nlp", lambda: nn.LayerNorm(16), SEQ),
    _layer("rms_norm_pattern", "norm", "nlp", lambda: RMSNorm(16), SEQ),
    _layer("rms_norm_module", "norm", "nlp", lambda: nn.RMSNorm(16), SEQ),
    _fn("gelu_tanh", "activation", "nlp", lambda x: F.gelu(x, approximate="tanh"), SEQ),
    _layer("rotary_embedding", "attention", "nlp", Rotary, f32(1, 2, 6, 8)),
    _fn("rsqrt_sqrt", "elementwise", "nlp", lambda x: torch.rsqrt(x) + torch.sqrt(x), pos(3, 5)),
    _fn("pow_exp_log", "elementwise", "nlp", lambda x: x.pow(1.5) + torch.exp(-x) + torch.log(x), pos(3, 5)),
    _fn("erf_reciprocal", "elementwise", "common", lambda x: torch.erf(x) + torch.reciprocal(x + 3.0), f32(3, 5)),
    _fn("sin_cos_abs_neg", "elementwise", "common", lambda x: torch.sin(x) * torch.cos(x) - torch.abs(x).neg(), f32(3, 5)),
    _fn("floor_ceil_round", "elementwise", "common", lambda x: torch.floor(x * 3) + torch.ceil(x) + torch.round(x * 5), f32(3, 5)),
    _fn("div_modes", "elementwise", "common", lambda a, b: torch.div(a, b, rounding_mode="floor") + torch.div(a, b, rounding_mode="trunc") + a / b,
        f32(3, 5), pos(3, 5)),
    _fn("remainder_int", "elementwise", "nlp", lambda a: torch.remainder(a, 5) + a // 3, i64(3, 5, high=40)),
    _fn("compare_int", "compare", "nlp", lambda a, b: torch.stack([a == b, a < b, a >= b, a != b, a > 1]),
        i64(3, 5, high=3), i64(3, 5, high=3)),
    _fn("compare_float", "compare", "common", lambda a, b: torch.stack([a < b, a >= 0.5, a == a.round()]), f32(3, 5), f32(3, 5)),
    _fn("isclose", "compare", "common", lambda a, b: torch.isclose(a, a + b * 1e-7), f32(3, 5), f32(3, 5)),
    _fn("logical", "compare", "nlp", lambda a, b: torch.logical_and(a, b) | torch.logical_not(a) ^ b, boolean(3, 5), boolean(3, 5)),
    _fn("cast_bool_float", "cast", "nlp", lambda m, x: m.float() * x + m.long().sum(-1, keepdim=True), boolean(3, 5), f32(3, 5)),
    _fn("cast_float_int", "cast", "nlp", lambda x: (x * 10).to(torch.int32) + (x * 3).long(), f32(3, 5)),
    _fn("cast_half_roundtrip", "cast", "nlp", lambda x: x.half().float() * 2, f32(3, 5)),
    _fn("int_arith", "elementwise", "nlp", lambda a, b: a * b - a + torch.maximum(a, b), i64(3, 5, high=9), i64(3, 5, high=9)),
    _fn("full_like_zeros_ones", "creation", "nlp", lambda x: torch.full_like(x, 2.0) + torch.zeros_like(x) - torch.ones(x.shape[-1]), SEQ),
    _fn("arange_positions", "creation", "nlp", lambda x: x + torch.arange(x.shape[1]).unsqueeze(-1).float() * 0.1, SEQ),
    _fn("causal_mask_build", "creation", "nlp",
        lambda x: x.masked_fill(torch.ones(6, 6, dtype=torch.bool).triu(1), float("-inf")).softmax(-1), f32(2, 6, 6)),
    # ---- audio
    _layer("conv1d_stack", "conv", "audio",
           lambda: nn.Sequential(nn.Conv1d(1, 8, 9, stride=2, padding=4), nn.BatchNorm1d(8), nn.ReLU(),
                                 nn.Conv1d(8, 8, 5, padding=2), nn.GELU(), nn.Conv1d(8, 4, 3, dilation=2)), f32(2, 1, 64)),
    _fn("glu", "activation", "audio", lambda x: F.glu(x, dim=1), f32(2, 8, 16)),
    _layer("lstm", "recurrent", "audio", lambda: Recurrent(nn.LSTM(8, 12, batch_first=True)), f32(2, 5, 8)),
    _layer("lstm_2layer_bidirectional", "recurrent", "audio",
           lambda: Recurrent(nn.LSTM(8, 6, num_layers=2, bidirectional=True, batch_first=True)), f32(2, 5, 8)),
    _layer("lstm_seq_first", "recurrent", "audio", lambda: Recurrent(nn.LSTM(8, 6)), f32(5, 2, 8)),
    _layer("gru", "recurrent", "audio", lambda: Recurrent(nn.GRU(8, 12, batch_first=True)), f32(2, 5, 8)),
    _layer("gru_bidirectional", "recurrent", "audio", lambda: Recurrent(nn.GRU(8, 6, bidirectional=True, batch_first=True)), f32(2, 5, 8)),
    _layer("rnn_tanh", "recurrent", "audio", lambda: Recurrent(nn.RNN(8, 6, batch_first=True)), f32(2, 5, 8)),
    _fn("stft_magnitude", "spectral", "audio", _stft_magnitude, f32(1, 64)),
    _fn("log_mel_pattern", "spectral", "audio", lambda s, m: torch.log(torch.clamp(m @ s, min=1e-5)), pos(1, 9, 20), pos(6, 9)),
    # ---- composite blocks
    _layer("resnet_basic_block", "block", "vision",
           lambda: Block(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)), IMG),
    _layer("mobilenet_inverted_residual", "block", "vision",
           lambda: Block(nn.Conv2d(4, 16, 1), nn.BatchNorm2d(16), nn.ReLU6(), nn.Conv2d(16, 16, 3, padding=1, groups=16),
                         nn.BatchNorm2d(16), nn.Hardswish(), nn.Conv2d(16, 4, 1)), IMG),
    _layer("squeeze_excite", "block", "vision", lambda: SqueezeExcite(4), IMG),
    _layer("classifier_head", "block", "vision",
           lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(4, 10), nn.Softmax(-1)), IMG),
)

BY_NAME: dict[str, Case] = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"
