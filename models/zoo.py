"""Example networks built in code with seeded weights (no torchvision, no downloads).

Every builder calls ``torch.manual_seed(seed)`` before constructing the module, then gives each
BatchNorm layer random running statistics and affine parameters (so that batch norm is not an
identity that a compiler could get wrong unnoticed), and returns the module in ``eval()`` mode.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "resnet_like",
    "mobilenet_like",
    "two_input_net",
    "int64_input_net",
    "resnet50_like",
    "bert_like",
]


def _finish(module: nn.Module, *input_shapes: tuple[int, ...], batch: int = 4) -> nn.Module:
    """Give every BatchNorm random affine parameters and realistic running statistics, and every
    LayerNorm random affine parameters; freeze the parameters; eval().

    Uses the global RNG, which the builder has seeded. The affine parameters are drawn at random;
    the running statistics are then measured on a batch of random inputs (as training would), so
    that activations keep a healthy scale through deep networks and the output depends on the
    input, and finally perturbed so that no layer normalises exactly.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for m in bns:
            n = m.num_features
            m.weight.copy_(torch.rand(n) * 0.5 + 0.75)
            m.bias.copy_(torch.randn(n) * 0.1)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
        if bns and input_shapes:
            module.train()
            module(*(torch.randn(batch, *shape) for shape in input_shapes))
        for m in bns:
            n = m.num_features
            m.running_mean.add_(torch.randn(n) * 0.05)
            m.running_var.mul_(torch.rand(n) * 0.4 + 0.8)
            m.momentum = 0.1
        for m in module.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.bias.shape) * 0.1)
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]


# --------------------------------------------------------------------------- ResNet (basic)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(cin, cout, 3, stride)
        self.relu = nn.ReLU(inplace=False)
        self.conv2, self.bn2 = _conv_bn(cout, cout, 3)
        self.shortcut: nn.Module
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(*_conv_bn(cin, cout, 1, stride))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class ResNetLike(nn.Module):
    def __init__(self, width: int, blocks: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            *_conv_bn(3, width, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1)
        )
        layers: list[nn.Module] = []
        cin = width
        for i, n in enumerate(blocks):
            cout = width * (2**i)
            for j in range(n):
                layers.append(BasicBlock(cin, cout, stride=2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.layers(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


def resnet_like(seed: int = 0, width: int = 16, blocks: tuple[int, ...] = (1, 1, 1)) -> nn.Module:
    """Small ResNet: stem conv/bn/relu/maxpool, basic blocks (stride-2 + 1x1 projection between
    stages), global average pool, fc -> 10 classes. Input [1,3,64,64]."""
    torch.manual_seed(seed)
    return _finish(ResNetLike(width, tuple(blocks), num_classes=10), (3, 64, 64))


# --------------------------------------------------------------------------- MobileNetV2-style


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [*_conv_bn(cin, hidden, 1), nn.ReLU6()]
        layers += [*_conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6()]
        layers += _conv_bn(hidden, cout, 1)  # linear bottleneck: no activation
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetLike(nn.Module):
    # (expand ratio, output channels, repeats, first stride), MobileNetV2's table, scaled down
    CONFIG = ((1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 3, 2), (4, 64, 2, 2), (4, 96, 1, 1))

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [*_conv_bn(3, 16, 3, stride=2), nn.ReLU6()]
        cin = 16
        for t, c, n, s in self.CONFIG:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers += [*_conv_bn(cin, 256, 1), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(256, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_like(seed: int = 0) -> nn.Module:
    """MobileNetV2-style: inverted residuals (1x1 expand, 3x3 depthwise, 1x1 project, ReLU6,
    residual when stride 1 and shapes agree). Input [1,3,64,64], 10 classes."""
    torch.manual_seed(seed)
    return _finish(MobileNetLike(), (3, 64, 64))


# --------------------------------------------------------------------------- two inputs


class TwoInputNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.branch_a = nn.Sequential(*_conv_bn(3, 8, 3), nn.ReLU())
        self.branch_b = nn.Sequential(*_conv_bn(3, 8, 3), nn.ReLU())
        self.mix = nn.Sequential(*_conv_bn(16, 16, 3, stride=2), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa, fb = self.branch_a(a), self.branch_b(b)
        # both an elementwise combination and a concat, so swapped inputs change the result
        x = torch.cat([fa + fb, fa * 0.5 - fb], dim=1)
        x = self.pool(self.mix(x))
        return self.fc(torch.flatten(x, 1))


def two_input_net(seed: int = 0) -> nn.Module:
    """Two image inputs [1,3,32,32] each: a conv branch per input, add + concat, conv head."""
    torch.manual_seed(seed)
    return _finish(TwoInputNet(), (3, 32, 32), (3, 32, 32))


# --------------------------------------------------------------------------- int64 input


class Int64InputNet(nn.Module):
    def __init__(self, vocab: int = 100, dim: int = 32, num_classes: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.proj = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids).mean(dim=1)
        return self.head(torch.tanh(self.proj(x)))


def int64_input_net(seed: int = 0) -> nn.Module:
    """int64 token ids [1,16] in 0..99 -> Embedding(100, 32) -> mean -> linear/tanh -> [1,4]."""
    torch.manual_seed(seed)
    return _finish(Int64InputNet())


# --------------------------------------------------------------------------- ResNet-50 shape


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, mid: int, stride: int) -> None:
        super().__init__()
        cout = mid * self.expansion
        self.conv1, self.bn1 = _conv_bn(cin, mid, 1)
        self.conv2, self.bn2 = _conv_bn(mid, mid, 3, stride)  # stride on the 3x3 (ResNet v1.5)
        self.conv3, self.bn3 = _conv_bn(mid, cout, 1)
        self.relu = nn.ReLU()
        self.downsample: nn.Module
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(*_conv_bn(cin, cout, 1, stride))
        else:
            self.downsample = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + self.downsample(x))


class ResNet50Like(nn.Module):
    def __init__(self, blocks: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        layers: list[nn.Module] = []
        cin = 64
        for i, n in enumerate(blocks):
            mid = 64 * (2**i)
            for j in range(n):
                layers.append(Bottleneck(cin, mid, stride=2 if (i > 0 and j == 0) else 1))
                cin = mid * Bottleneck.expansion
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)  # cin == 2048

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.layers(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


def resnet50_like(seed: int = 0) -> nn.Module:
    """ResNet-50 shape: 7x7 stem, bottleneck stages (3,4,6,3), widths 64..2048, 1000 classes.
    Input [1,3,224,224]. About 25.6M parameters."""
    torch.manual_seed(seed)
    return _finish(ResNet50Like(), (3, 224, 224), batch=2)


# --------------------------------------------------------------------------- BERT-style encoder


class EncoderLayer(nn.Module):
    """Post-LN transformer layer (BERT): self-attention written out in matmuls, so the export
    does not depend on torch's fused attention paths, then a GELU feed-forward."""

    def __init__(self, dim: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1)
        attended = (scores @ v).transpose(1, 2).reshape(b, s, d)
        x = self.norm1(x + self.out(attended))
        return self.norm2(x + self.ffn(x))


class BertLike(nn.Module):
    def __init__(self, vocab: int = 1000, seq: int = 64, dim: int = 128, heads: int = 4, layers: int = 2,
                 ffn: int = 512, num_classes: int = 8) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Parameter(torch.randn(1, seq, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)
        self.layers = nn.Sequential(*(EncoderLayer(dim, heads, ffn) for _ in range(layers)))
        self.pool = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.norm(self.tokens(ids) + self.positions))
        return self.head(torch.tanh(self.pool(x[:, 0])))


def bert_like(seed: int = 0) -> nn.Module:
    """BERT-style encoder: int64 token ids [1,64] in 0..999 -> embeddings + LayerNorm -> 2 post-LN
    layers (hidden 128, 4 heads, GELU FFN 512) -> tanh pooler on the first token -> [1,8]."""
    torch.manual_seed(seed)
    return _finish(BertLike())
