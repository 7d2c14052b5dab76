"""The example models by name, with the inputs each one takes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when a model is built, not when the registry is read
    from torch import nn

InputSpec = tuple[str, tuple[int, ...], str]  # (name, shape, dtype)


@dataclass(frozen=True)
class ExampleModel:
    """One example network: how to build it and what it takes.

    ``inputs`` are in the order the module's ``forward`` takes them; the names are the ones the
    exporters give the graph inputs (``input0..N``, the names Neo gives list-form inputs).
    Integer inputs are drawn from ``[0, int_high)``.
    """

    name: str
    builder: Callable[..., "nn.Module"]
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...] = ("output0",)
    int_high: int = 100
    description: str = ""

    def build(self, seed: int = 0) -> "nn.Module":
        return self.builder(seed=seed)

    @property
    def input_names(self) -> list[str]:
        return [n for n, _, _ in self.inputs]

    def data_input_config(self) -> str:
        """The DataInputConfig string for a compilation request, e.g. '{"input0": [1,3,64,64]}'."""
        return json.dumps({n: list(s) for n, s, _ in self.inputs})

    @property
    def dtypes(self) -> set[str]:
        return {d for _, _, d in self.inputs}


def _zoo(name: str) -> Callable[..., "nn.Module"]:
    """``models.zoo.<name>``, imported (with torch) on first call."""

    def build(seed: int = 0, **kwargs):
        from models import zoo

        return getattr(zoo, name)(seed=seed, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"Build models.zoo.{name}(seed, **kwargs)."
    return build


EXAMPLES: dict[str, ExampleModel] = {
    m.name: m
    for m in (
        ExampleModel(
            "resnet_like",
            _zoo("resnet_like"),
            (("input0", (1, 3, 64, 64), "float32"),),
            description="small ResNet (basic blocks 1,1,1, width 16), 10 classes",
        ),
        ExampleModel(
            "mobilenet_like",
            _zoo("mobilenet_like"),
            (("input0", (1, 3, 64, 64), "float32"),),
            description="MobileNetV2-style inverted residuals, ReLU6, 10 classes",
        ),
        ExampleModel(
            "two_input_net",
            _zoo("two_input_net"),
            (("input0", (1, 3, 32, 32), "float32"), ("input1", (1, 3, 32, 32), "float32")),
            description="two image inputs, conv per branch, add + concat, conv head",
        ),
        ExampleModel(
            "int64_input_net",
            _zoo("int64_input_net"),
            (("input0", (1, 16), "int64"),),
            int_high=100,
            description="int64 token ids -> Embedding(100, 32) -> mean -> linear -> [1,4]",
        ),
        ExampleModel(
            "resnet50_like",
            _zoo("resnet50_like"),
            (("input0", (1, 3, 224, 224), "float32"),),
            description="ResNet-50 shape (bottlenecks 3,4,6,3), 1000 classes, for benchmarks",
        ),
        ExampleModel(
            "bert_like",
            _zoo("bert_like"),
            (("input0", (1, 64), "int64"),),
            int_high=1000,
            description="BERT-style encoder: 2 post-LN layers, hidden 128, 4 heads, GELU, 64 tokens -> [1,8]",
        ),
        ExampleModel(
            "lstm_like",
            _zoo("lstm_like"),
            (("input0", (1, 50, 64), "float32"),),
            description="2-layer LSTM (hidden 128) over 50 frames of 64 features, last step -> 10 classes",
        ),
        ExampleModel(
            "audio_cnn_like",
            _zoo("audio_cnn_like"),
            (("input0", (1, 1, 16000), "float32"),),
            description="M5 keyword spotting: 1-D convs over 16000 raw samples, batch norm, max pools, 35 classes",
        ),
        *(
            ExampleModel(name, _zoo(name), (("input0", (1, 3, 224, 224), "float32"),), description=text)
            for name, text in (
                ("mobilenet_v3_like", "MobileNetV3-Small: hardswish, squeeze-excite with hardsigmoid, depthwise 3x3/5x5"),
                ("efficientnet_like", "EfficientNet-B0 layout: MBConv + squeeze-excite, SiLU, depthwise 3x3/5x5"),
                ("densenet_like", "DenseNet-121 layout (growth 32, BN-ReLU-conv, concat, avgpool transitions), "
                                  "dense blocks 4,8,12,8 instead of 6,12,24,16"),
                ("inception_like", "Inception-v3 layout, shortened: stem, 2x A (1x1/5x5/3x3dbl/avgpool), B (reduction, "
                                   "maxpool), 1x C (1x7/7x1), at 224 instead of 299"),
                ("squeezenet_like", "SqueezeNet 1.1: fire modules (concat), ceil-mode maxpools, no batch norm"),
                ("shufflenet_v2_like", "ShuffleNetV2 x0.5: channel split, concat, channel shuffle, depthwise 3x3"),
                ("resnext_like", "ResNeXt-50 32x4d: ResNet-50's layout, 3x3 convs in 32 groups (4 channels a "
                                 "group at 56x56 to 32 at 7x7)"),
                ("vgg_like", "VGG-11 convolutions, classifier reduced to 25088 -> 256 -> 256 -> 1000"),
                ("vit_like", "ViT-Tiny/16 layout (197 tokens, hidden 192, 3 heads, GELU MLP 768), 4 of its 12 "
                             "pre-LN layers"),
            )
        ),
    )
}


def get(name: str) -> ExampleModel:
    try:
        return EXAMPLES[name]
    except KeyError:
        raise KeyError(f"unknown example model {name!r}; known: {', '.join(EXAMPLES)}") from None
