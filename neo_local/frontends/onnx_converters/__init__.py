"""neo-local's own ONNX operator converters, for operators TVM's Relax importer lacks.

Each converter is one small function registered for the ONNX operator (default domain) and the
range of opsets it implements. ``tvm_hook.our_converters()`` plugs the registry into TVM's
``from_onnx`` for one import; ``importer_converts`` answers, for the pre-pass and for the
"operators the compiler does not support" check, whether the importer (TVM plus ours) can
convert a node, so that both agree with what the import will do.

Operators that ONNX defines as functions (Swish, Celu, the opset-23 Attention, ...) need no
converter here: the pre-pass inlines their function bodies when the importer lacks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

ONNX_DOMAINS = ("", "ai.onnx")
#: operators TVM's importer converts itself, outside its converter map (If: both branches
#: imported, a relax.If picks one at run time)
IMPORTER_BUILTINS = ("If",)


@dataclass(frozen=True)
class OnnxNode:
    """What a converter sees of one ONNX node: TVM's converted inputs (None where an optional
    input is absent), the attributes as TVM parsed them (strings as bytes; ``attr`` decodes) and
    the model's default-domain opset."""

    op_type: str
    inputs: tuple[Any, ...]
    attrs: Mapping[str, Any]
    opset: int
    num_outputs: int

    def input(self, index: int) -> Any:
        """The input at ``index``, or None when absent (ONNX allows trailing inputs to be left out)."""
        return self.inputs[index] if index < len(self.inputs) else None

    def attr(self, name: str, default: Any = None) -> Any:
        value = self.attrs.get(name, default)
        return value.decode() if isinstance(value, bytes) else value


ConvertFn = Callable[[Any, OnnxNode], Any]  # (relax.BlockBuilder, node) -> relax.Expr or relax.Tuple


@dataclass(frozen=True)
class Converter:
    """``convert`` implements ``op_type`` for default-domain opsets first_opset..last_opset;
    ``domain`` names another operator domain (e.g. ai.onnx.ml; its converters take every opset)."""

    op_type: str
    first_opset: int
    last_opset: int | None
    convert: ConvertFn
    domain: str = ""

    def covers(self, opset: int) -> bool:
        return self.first_opset <= opset and (self.last_opset is None or opset <= self.last_opset)


_REGISTRY: dict[str, list[Converter]] = {}


def register(
    op_type: str, first_opset: int, last_opset: int | None = None, domain: str = ""
) -> Callable[[ConvertFn], ConvertFn]:
    """Register the decorated function as the converter of ``op_type`` for those opsets."""

    def add(fn: ConvertFn) -> ConvertFn:
        entry = Converter(op_type, first_opset, last_opset, fn, domain)
        for other in _REGISTRY.get(op_type, []):
            if other.covers(first_opset) or entry.covers(other.first_opset):
                raise ValueError(f"{op_type}: opsets of {fn.__name__} overlap those of {other.convert.__name__}")
        _REGISTRY.setdefault(op_type, []).append(entry)
        return fn

    return add


def find(op_type: str, opset: int) -> Converter | None:
    """Our converter of ``op_type`` at (default-domain) ``opset``, if any."""
    _load_converters()
    return next((c for c in _REGISTRY.get(op_type, []) if c.covers(opset)), None)


def registered() -> Mapping[str, tuple[Converter, ...]]:
    """Every registered converter by operator (for docs and tests)."""
    _load_converters()
    return {op: tuple(entries) for op, entries in sorted(_REGISTRY.items())}


def importer_converts(domain: str, op_type: str, opset: int) -> bool:
    """Whether the import (TVM's converters plus ours) converts this node."""
    from neo_local.frontends.onnx_converters.tvm_hook import tvm_converts

    if domain in ONNX_DOMAINS and op_type in IMPORTER_BUILTINS:
        return True
    ours = find(op_type, opset)
    if ours is not None and (domain == ours.domain or (domain in ONNX_DOMAINS and not ours.domain)):
        return True
    return tvm_converts(domain, op_type)


def _load_converters() -> None:
    """Import the converter modules (they register themselves); cheap after the first call."""
    from neo_local.frontends.onnx_converters import (  # noqa: F401
        activations, casts, columns, control_flow, cumulative, deformable, detection, ml, normalization, quantized,
        pooling, recurrent, refused, resize, semantics, sequence, shaped, spectral, tensor_ops, typed,
    )
