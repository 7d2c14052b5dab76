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
    "mobilenet_v3_like",
    "efficientnet_like",
    "densenet_like",
    "inception_like",
    "squeezenet_like",
    "shufflenet_v2_like",
    "vgg_like",
    "audio_cnn_like",
    "vit_like",
    "resnext_like",
    "lstm_like",
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
    """ResNet's bottleneck; with ``groups``, ResNeXt's: its 3x3 conv grouped, ``width`` channels
    wide (``mid`` by default)."""

    expansion = 4

    def __init__(self, cin: int, mid: int, stride: int, groups: int = 1, width: int = 0) -> None:
        super().__init__()
        cout, width = mid * self.expansion, width or mid
        self.conv1, self.bn1 = _conv_bn(cin, width, 1)
        self.conv2, self.bn2 = _conv_bn(width, width, 3, stride, groups)  # stride on the 3x3 (ResNet v1.5)
        self.conv3, self.bn3 = _conv_bn(width, cout, 1)
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
    """ResNet-50's layout; with ``groups``, ResNeXt-50's (``groups`` x ``group_width`` channels in the
    first stage's 3x3 convs, doubling with each stage)."""

    def __init__(self, blocks: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 1000, groups: int = 1,
                 group_width: int = 64) -> None:
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
                layers.append(Bottleneck(cin, mid, 2 if (i > 0 and j == 0) else 1, groups,
                                         groups * group_width * 2**i))
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


def resnext_like(seed: int = 0, size: int = 224) -> nn.Module:
    """ResNeXt-50 32x4d: ResNet-50's layout with 3x3 convs of 32 groups, 4 channels a group in the
    first stage (128 channels) to 32 in the last (1024). Input [1,3,size,size]. About 25.0M parameters."""
    torch.manual_seed(seed)
    return _finish(ResNet50Like(groups=32, group_width=4), (3, size, size), batch=2)


# --------------------------------------------------------------------------- BERT-style encoder


class EncoderLayer(nn.Module):
    """Transformer layer: self-attention written out in matmuls, so the export does not depend on
    torch's fused attention paths, then a GELU feed-forward; post-LN (BERT) or, with
    ``pre_norm``, pre-LN (ViT)."""

    def __init__(self, dim: int, heads: int, ffn: int, pre_norm: bool = False) -> None:
        super().__init__()
        self.heads, self.pre_norm = heads, pre_norm
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))
        self.norm2 = nn.LayerNorm(dim)

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1)
        return self.out((scores @ v).transpose(1, 2).reshape(b, s, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            x = x + self._attention(self.norm1(x))
            return x + self.ffn(self.norm2(x))
        x = self.norm1(x + self._attention(x))
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


class VitLike(nn.Module):
    """Vision transformer: 16x16 patches embedded by a strided conv, a class token, learned
    positions, pre-LN encoder layers, the class token's final norm -> linear head."""

    def __init__(self, size: int = 224, patch: int = 16, dim: int = 192, heads: int = 3, layers: int = 4,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.patches = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.positions = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, dim) * 0.02)
        self.layers = nn.Sequential(*(EncoderLayer(dim, heads, 4 * dim, pre_norm=True) for _ in range(layers)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patches(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.positions
        return self.head(self.norm(self.layers(x))[:, 0])


def vit_like(seed: int = 0, size: int = 224) -> nn.Module:
    """ViT-Tiny/16 layout (hidden 192, 3 heads, GELU MLP 768) with 4 of its 12 layers: at 224,
    197 tokens, a prime number of rows for every matmul."""
    torch.manual_seed(seed)
    return _finish(VitLike(size))


def audio_cnn_like(seed: int = 0, samples: int = 16000) -> nn.Module:
    """M5 keyword spotting (Dai et al. 2017) on one second of 16 kHz audio: 1-D convs over the raw
    samples (an 80-tap stride-4 stem, then 3-tap convs to 128, 256, 512 channels), each with
    batch norm, ReLU and a 4x max pool; the mean over time -> 35 classes (Speech Commands)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    cin = 1
    for cout, k, stride in ((128, 80, 4), (128, 3, 1), (256, 3, 1), (512, 3, 1)):
        layers += [nn.Conv1d(cin, cout, k, stride), nn.BatchNorm1d(cout), nn.ReLU(), nn.MaxPool1d(4)]
        cin = cout
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(cin, 35))
    return _finish(model, (1, samples))


class LstmLike(nn.Module):
    """A sequence classifier: a stacked LSTM over feature frames, the last step's hidden state ->
    linear."""

    def __init__(self, features: int = 64, hidden: int = 128, layers: int = 2, num_classes: int = 10) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1])


def lstm_like(seed: int = 0) -> nn.Module:
    """2-layer LSTM (64 features, hidden 128) over 50 frames -> 10 classes: 100 dependent steps,
    each a product of the hidden state with a 512 x 128 matrix and the gates."""
    torch.manual_seed(seed)
    return _finish(LstmLike())


# --------------------------------------------------------------------------- issue #6 CNN families
# One faithful-but-small network per family, 1000 classes. Each builder takes ``size`` (the
# square input side used to calibrate batch norm; the registry's input is 224) so that tests can
# build them at a tiny input.


def _make_divisible(v: float, divisor: int = 8) -> int:
    """Round channel counts to multiples of 8 (as the MobileNet/EfficientNet reference code does)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class SqueezeExcite(nn.Module):
    """Spatial mean -> 1x1 conv -> activation -> 1x1 conv -> gate -> channel-wise multiply."""

    def __init__(self, channels: int, squeezed: int, act: type[nn.Module], gate: type[nn.Module]) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeezed, 1), act(), nn.Conv2d(squeezed, channels, 1), gate()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.body(x)


class MBConv(nn.Module):
    """Inverted residual with optional squeeze-excite (MobileNetV3 / EfficientNet blocks)."""

    def __init__(self, cin: int, hidden: int, cout: int, k: int, stride: int, se: int,
                 act: type[nn.Module], gate: type[nn.Module]) -> None:
        super().__init__()
        layers: list[nn.Module] = [*_conv_bn(cin, hidden, 1), act()] if hidden != cin else []
        layers += [*_conv_bn(hidden, hidden, k, stride, groups=hidden), act()]
        if se:
            layers.append(SqueezeExcite(hidden, se, nn.ReLU if gate is nn.Hardsigmoid else act, gate))
        layers += _conv_bn(hidden, cout, 1)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class _Classified(nn.Module):
    """features -> global average pool -> flatten -> classifier."""

    def __init__(self, features: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.features, self.pool, self.classifier = features, nn.AdaptiveAvgPool2d(1), classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


# MobileNetV3-Small: (kernel, expanded, out, squeeze-excite, hardswish, stride)
_V3_SMALL = (
    (3, 16, 16, True, False, 2), (3, 72, 24, False, False, 2), (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2), (5, 240, 40, True, True, 1), (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1), (5, 144, 48, True, True, 1), (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1), (5, 576, 96, True, True, 1),
)


def mobilenet_v3_like(seed: int = 0, size: int = 224) -> nn.Module:
    """MobileNetV3-Small layout: hardswish, squeeze-excite (ReLU, hardsigmoid), depthwise 3x3/5x5,
    1x1 conv 576 -> pool -> 1024 hardswish -> 1000 classes."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [*_conv_bn(3, 16, 3, stride=2), nn.Hardswish()]
    cin = 16
    for k, hidden, cout, se, hs, stride in _V3_SMALL:
        act = nn.Hardswish if hs else nn.ReLU
        layers.append(MBConv(cin, hidden, cout, k, stride, _make_divisible(hidden / 4) if se else 0, act, nn.Hardsigmoid))
        cin = cout
    layers += [*_conv_bn(cin, 576, 1), nn.Hardswish()]
    head = nn.Sequential(nn.Linear(576, 1024), nn.Hardswish(), nn.Linear(1024, 1000))
    return _finish(_Classified(nn.Sequential(*layers), head), (3, size, size))


# EfficientNet-B0 stages: (expand, kernel, stride, out, repeats)
_B0 = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
       (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))


def efficientnet_like(seed: int = 0, size: int = 224) -> nn.Module:
    """EfficientNet-B0 layout: MBConv with squeeze-excite (SiLU, sigmoid, squeeze to 1/4 of the
    block's input), stem 32, head 1x1 conv 1280 -> 1000 classes."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [*_conv_bn(3, 32, 3, stride=2), nn.SiLU()]
    cin = 32
    for expand, k, stride, cout, repeats in _B0:
        for i in range(repeats):
            layers.append(MBConv(cin, cin * expand, cout, k, stride if i == 0 else 1, max(1, cin // 4),
                                 nn.SiLU, nn.Sigmoid))
            cin = cout
    layers += [*_conv_bn(cin, 1280, 1), nn.SiLU()]
    return _finish(_Classified(nn.Sequential(*layers), nn.Linear(1280, 1000)), (3, size, size))


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (to 4 x growth) -> BN-ReLU-conv3x3 (growth) on the concat of all earlier maps."""

    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth), nn.ReLU(), nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.body(torch.cat(features, 1))


class DenseBlock(nn.Module):
    def __init__(self, cin: int, layers: int, growth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(cin + i * growth, growth) for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(features))
        return torch.cat(features, 1)


def densenet_like(seed: int = 0, size: int = 224, blocks: tuple[int, ...] = (4, 8, 12, 8)) -> nn.Module:
    """DenseNet-121 layout (7x7 stem 64, growth 32, bottleneck 4x, transitions BN-ReLU-1x1-avgpool
    halving channels) with dense blocks of 4, 8, 12, 8 layers instead of 6, 12, 24, 16."""
    torch.manual_seed(seed)
    growth, c = 32, 64
    layers: list[nn.Module] = [nn.Conv2d(3, c, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                               nn.MaxPool2d(3, stride=2, padding=1)]
    for i, n in enumerate(blocks):
        layers.append(DenseBlock(c, n, growth))
        c += n * growth
        if i < len(blocks) - 1:
            layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2, 2)]
            c //= 2
    layers += [nn.BatchNorm2d(c), nn.ReLU()]
    return _finish(_Classified(nn.Sequential(*layers), nn.Linear(c, 1000)), (3, size, size))


def _basic(cin: int, cout: int, k, stride: int = 1, padding=0) -> nn.Sequential:
    """Inception's conv (no bias) -> BN -> ReLU, with explicit (possibly 1x7 / 7x1) padding."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())


class _Branches(nn.Module):
    """Runs every branch on the same input and concatenates the results along channels."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], 1)


def _inception_a(cin: int, pool: int) -> _Branches:  # 1x1, 5x5, double 3x3, avgpool + 1x1
    return _Branches(
        _basic(cin, 64, 1),
        nn.Sequential(_basic(cin, 48, 1), _basic(48, 64, 5, padding=2)),
        nn.Sequential(_basic(cin, 64, 1), _basic(64, 96, 3, padding=1), _basic(96, 96, 3, padding=1)),
        nn.Sequential(nn.AvgPool2d(3, 1, 1), _basic(cin, pool, 1)),
    )


def _inception_b(cin: int) -> _Branches:  # grid reduction: 3x3 s2, double 3x3 s2, maxpool s2
    return _Branches(
        _basic(cin, 384, 3, stride=2),
        nn.Sequential(_basic(cin, 64, 1), _basic(64, 96, 3, padding=1), _basic(96, 96, 3, stride=2)),
        nn.MaxPool2d(3, 2),
    )


def _inception_c(cin: int, c7: int) -> _Branches:  # factorised 7x7: 1x7 / 7x1
    def f7(a: int, b: int, horizontal: bool) -> nn.Sequential:
        return _basic(a, b, (1, 7) if horizontal else (7, 1), padding=(0, 3) if horizontal else (3, 0))

    return _Branches(
        _basic(cin, 192, 1),
        nn.Sequential(_basic(cin, c7, 1), f7(c7, c7, True), f7(c7, 192, False)),
        nn.Sequential(_basic(cin, c7, 1), f7(c7, c7, False), f7(c7, c7, True), f7(c7, c7, False), f7(c7, 192, True)),
        nn.Sequential(nn.AvgPool2d(3, 1, 1), _basic(cin, 192, 1)),
    )


def inception_like(seed: int = 0, size: int = 224) -> nn.Module:
    """Inception-v3 layout, shortened: its stem, InceptionA x2 (1x1 / 5x5 / double 3x3 / avgpool
    branches), InceptionB (reduction with maxpool), InceptionC x1 (1x7 / 7x1), 1000 classes."""
    torch.manual_seed(seed)
    features = nn.Sequential(
        _basic(3, 32, 3, stride=2), _basic(32, 32, 3), _basic(32, 64, 3, padding=1), nn.MaxPool2d(3, 2),
        _basic(64, 80, 1), _basic(80, 192, 3), nn.MaxPool2d(3, 2),
        _inception_a(192, 32), _inception_a(256, 64), _inception_b(288), _inception_c(768, 128),
    )
    return _finish(_Classified(features, nn.Linear(768, 1000)), (3, size, size))


class Fire(nn.Module):
    """SqueezeNet's fire module: 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""

    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.expand = _Branches(nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU()),
                                nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.squeeze(x))


def squeezenet_like(seed: int = 0, size: int = 224) -> nn.Module:
    """SqueezeNet 1.1 as published: 3x3 s2 stem, fire modules, ceil-mode maxpools, 1x1 conv to
    1000 classes, ReLU, global average pool (1.2M parameters, no batch norm)."""
    torch.manual_seed(seed)

    def pool() -> nn.Module:
        return nn.MaxPool2d(3, 2, ceil_mode=True)

    model = nn.Sequential(
        nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(), pool(), Fire(64, 16, 64), Fire(128, 16, 64), pool(),
        Fire(128, 32, 128), Fire(256, 32, 128), pool(), Fire(256, 48, 192), Fire(384, 48, 192),
        Fire(384, 64, 256), Fire(512, 64, 256), nn.Conv2d(512, 1000, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return _finish(_he_init(model), (3, size, size))


def _he_init(module: nn.Module) -> nn.Module:
    """He-normal weights and small random biases for networks without batch norm, so that the
    activations keep their scale through the ReLUs (torch's default init shrinks them until the
    output hardly depends on the input)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.normal_(m.bias, std=0.05)
    return module


def _channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit: stride 1 splits the channels and transforms one half; stride 2 transforms
    both (the left with a depthwise 3x3 s2 + 1x1); then concat and channel shuffle."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        half = cout // 2
        self.stride = stride
        self.left = (nn.Sequential(*_conv_bn(cin, cin, 3, stride, groups=cin), *_conv_bn(cin, half, 1), nn.ReLU())
                     if stride > 1 else nn.Identity())
        cin_right = cin if stride > 1 else half
        self.right = nn.Sequential(*_conv_bn(cin_right, half, 1), nn.ReLU(), *_conv_bn(half, half, 3, stride, half),
                                   *_conv_bn(half, half, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat([a, self.right(b)], 1)
        else:
            out = torch.cat([self.left(x), self.right(x)], 1)
        return _channel_shuffle(out)


def shufflenet_v2_like(seed: int = 0, size: int = 224) -> nn.Module:
    """ShuffleNetV2 x0.5 as published: stem 24 + maxpool, stages of 4, 8, 4 units (48, 96, 192
    channels), channel split / concat / shuffle, 1x1 conv 1024, 1000 classes."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [*_conv_bn(3, 24, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 24
    for cout, repeats in ((48, 4), (96, 8), (192, 4)):
        for i in range(repeats):
            layers.append(ShuffleUnit(cin, cout, 2 if i == 0 else 1))
            cin = cout
    layers += [*_conv_bn(cin, 1024, 1), nn.ReLU()]
    return _finish(_Classified(nn.Sequential(*layers), nn.Linear(1024, 1000)), (3, size, size))


def vgg_like(seed: int = 0, size: int = 224) -> nn.Module:
    """VGG-11's convolutions (3x3 + bias + ReLU, maxpools: 64, M, 128, M, 256 x2, M, 512 x2, M,
    512 x2, M) with a reduced classifier (7x7x512 -> 256 -> 256 -> 1000, ~16M parameters; VGG's
    adaptive 7x7 pool is left out: an identity at 224, and not exportable at smaller sizes)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    cin = 3
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
            cin = v
    model = nn.Sequential(
        *layers, nn.Flatten(), nn.Linear(512 * (size // 32) ** 2, 256), nn.ReLU(), nn.Linear(256, 256),
        nn.ReLU(), nn.Linear(256, 1000),
    )
    return _finish(_he_init(model), (3, size, size))
