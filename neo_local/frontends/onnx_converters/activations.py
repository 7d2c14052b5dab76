"""The activation functions ONNX's RNN, GRU and LSTM name, and Elu (whose TVM converter builds
float32 constants whatever the input type, so float16/float64 Elu fails to import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant, dtype_of


def op(name: str) -> Callable[..., Any]:
    """``relax.op.<name>`` (dotted names reach sub-modules, e.g. ``nn.relu``)."""
    from tvm import relax

    target: Any = relax.op
    for part in name.split("."):
        target = getattr(target, part)
    return target


def _hard_sigmoid(x: Any, alpha: Any, beta: Any) -> Any:
    return op("clip")(op("add")(op("multiply")(x, alpha), beta), 0.0, 1.0)


def _thresholded_relu(x: Any, alpha: Any, beta: Any) -> Any:
    return op("where")(op("greater")(x, alpha), x, op("zeros_like")(x))


def _elu(x: Any, alpha: Any, beta: Any) -> Any:
    negative = op("multiply")(alpha, op("subtract")(op("exp")(x), op("ones_like")(x)))
    return op("where")(op("greater")(x, op("zeros_like")(x)), x, negative)


def _softsign(x: Any, alpha: Any, beta: Any) -> Any:
    return op("divide")(x, op("add")(op("abs")(x), op("ones_like")(x)))


#: ONNX activation name (lower case) -> (function of x, alpha, beta; default alpha; default beta)
ACTIVATIONS: dict[str, tuple[Callable[[Any, Any, Any], Any], float | None, float | None]] = {
    "sigmoid": (lambda x, a, b: op("sigmoid")(x), None, None),
    "tanh": (lambda x, a, b: op("tanh")(x), None, None),
    "relu": (lambda x, a, b: op("nn.relu")(x), None, None),
    "affine": (lambda x, a, b: op("add")(op("multiply")(x, a), b), 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: op("where")(op("greater")(x, op("zeros_like")(x)), x, op("multiply")(x, a)), 0.01, None),
    "thresholdedrelu": (_thresholded_relu, 1.0, None),
    "scaledtanh": (lambda x, a, b: op("multiply")(a, op("tanh")(op("multiply")(b, x))), 1.0, 1.0),
    "hardsigmoid": (_hard_sigmoid, 0.2, 0.5),
    "elu": (_elu, 1.0, None),
    "softsign": (_softsign, None, None),
    "softplus": (lambda x, a, b: op("log")(op("add")(op("exp")(x), op("ones_like")(x))), None, None),
}


@dataclass(frozen=True)
class Activation:
    name: str
    alpha: float | None
    beta: float | None

    def apply(self, x: Any, dtype: str) -> Any:
        fn = ACTIVATIONS[self.name.lower()][0]
        alpha = None if self.alpha is None else constant(self.alpha, dtype)
        beta = None if self.beta is None else constant(self.beta, dtype)
        return fn(x, alpha, beta)


@register("Elu", 1)
def elu(bb: Any, node: OnnxNode) -> Any:
    """x for x > 0, alpha · (eˣ − 1) otherwise, with constants in x's dtype."""
    return Activation("Elu", float(node.attr("alpha", 1.0)), None).apply(node.input(0), dtype_of(bb, node.input(0)))
