"""Example models, built in code with seeded weights, for the README, tests and benchmarks.

    from models import EXAMPLES, example_inputs
    ex = EXAMPLES["resnet_like"]
    module = ex.build(seed=0)                  # torch.nn.Module in eval mode
    feeds = example_inputs(ex, seed=0)         # {"input0": np.ndarray[1,3,64,64] float32}

``python -m models.build NAME --format onnx|torchscript --out DIR`` writes the archive a user
would upload (see models/build.py). torch is imported only when a model is built or exported.
"""

from __future__ import annotations

import importlib
from typing import Any

from models.registry import EXAMPLES, ExampleModel, InputSpec, get

_LAZY = {
    "models.zoo": ("int64_input_net", "mobilenet_like", "resnet50_like", "resnet_like", "two_input_net"),
    "models.export": ("example_inputs", "make_archive", "reference_outputs", "to_onnx", "to_torchscript"),
    "models.build": ("build_example", "BuildResult"),
}
_WHERE = {attr: mod for mod, attrs in _LAZY.items() for attr in attrs}

__all__ = ["EXAMPLES", "ExampleModel", "InputSpec", "get", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
