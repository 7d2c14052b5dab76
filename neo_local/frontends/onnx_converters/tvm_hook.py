"""The one place where neo-local's converters enter TVM's Relax ONNX importer.

TVM 0.27's ``relax.frontend.onnx.from_onnx`` takes no converters from its caller: the importer
calls the module-level function ``onnx_frontend._get_convert_map()`` (op_type -> a class whose
``get_converter(opset)`` returns ``f(bb, inputs, attrs, params)``) for its unsupported-operator
check and for every node. ``our_converters()`` replaces that function, for the duration of one
import and under a lock, with one that returns TVM's map plus an entry per operator in our
registry. The map is keyed by op_type alone (TVM ignores node domains), which is why ONNX's
opset-23 ``Attention`` reaches TVM's com.microsoft ``Attention`` converter (see
``TVM_CONVERTERS_OF_OTHER_DOMAINS``).

Upstream-worthy: a ``custom_convert_map`` argument to ``from_onnx`` (the Relay importer had
one) and a (domain, op_type) key would make this module unnecessary.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from neo_local.frontends.onnx_converters import ONNX_DOMAINS, OnnxNode, find, registered

#: TVM versions whose importer was read and tested with this hook
TESTED_TVM_VERSIONS = ("0.27",)

#: TVM converters registered under an op_type that the default ONNX domain also defines, but
#: written for another domain's operator: a default-domain node of that type is not converted
TVM_CONVERTERS_OF_OTHER_DOMAINS = {"Attention": "com.microsoft"}

_LOCK = threading.RLock()


def _frontend_module() -> Any:
    import tvm
    from tvm.relax.frontend.onnx import onnx_frontend

    if not callable(getattr(onnx_frontend, "_get_convert_map", None)):
        raise RuntimeError(
            f"TVM {tvm.__version__}: relax.frontend.onnx has no _get_convert_map; neo-local's converter hook "
            f"was written for TVM {', '.join(TESTED_TVM_VERSIONS)} (neo_local/frontends/onnx_converters/tvm_hook.py)"
        )
    return onnx_frontend


def tvm_convert_map() -> dict[str, Any]:
    """TVM's own converter map, never ours (also while ``our_converters`` is active)."""
    module = _frontend_module()
    original = getattr(module._get_convert_map, "neo_local_original", module._get_convert_map)
    return original()


def tvm_converts(domain: str, op_type: str) -> bool:
    """Whether TVM's own map has a converter meant for this node."""
    if op_type not in tvm_convert_map():
        return False
    return not (domain in ONNX_DOMAINS and op_type in TVM_CONVERTERS_OF_OTHER_DOMAINS)


@dataclass(frozen=True)
class _MapEntry:
    """Stands in TVM's map for an operator we convert; TVM's own converter (if any) serves the
    opsets ours do not cover."""

    op_type: str
    fallback: Any

    def get_converter(self, opset: int) -> Callable[..., Any]:
        ours = find(self.op_type, opset)
        if ours is None:
            if self.fallback is None:
                raise NotImplementedError(f"{self.op_type} at opset {opset} is not implemented")
            return self.fallback.get_converter(opset)

        def convert(bb: Any, inputs: Any, attrs: dict[str, Any], params: Any) -> Any:
            custom = attrs.get("tvm_custom", {})
            node = OnnxNode(
                op_type=self.op_type,
                inputs=tuple(inputs),
                attrs={k: v for k, v in attrs.items() if k != "tvm_custom"},
                opset=opset,
                num_outputs=int(custom.get("num_outputs", 1)),
            )
            return ours.convert(bb, node)

        return convert


class NodeImportError(Exception):
    """A converter's failure, with the ONNX node it failed on (TVM's own messages rarely say)."""

    def __init__(self, op_type: str, node_name: str, cause: BaseException) -> None:
        from neo_local.api.errors import exception_line

        where = f"{op_type} node {node_name!r}" if node_name else f"{op_type} node"
        super().__init__(f"{where}: {exception_line(cause)}")


@dataclass(frozen=True)
class _Named:
    """A convert-map entry whose converters name the node when they fail (the innermost node of a
    Scan/Loop/If body, where bodies are imported inside their operator's converter)."""

    op_type: str
    entry: Any

    def get_converter(self, opset: int) -> Callable[..., Any]:
        convert = self.entry.get_converter(opset)

        def named(bb: Any, inputs: Any, attrs: dict[str, Any], params: Any) -> Any:
            try:
                return convert(bb, inputs, attrs, params)
            except NodeImportError:
                raise
            except Exception as exc:  # noqa: BLE001 (every converter failure gets the node's name)
                raise NodeImportError(self.op_type, attrs.get("tvm_custom", {}).get("name", ""), exc) from exc

        return named


def call_tvm_converter(bb: Any, op_type: str, inputs: list[Any], node: OnnxNode) -> Any:
    """TVM's own converter of ``op_type`` applied to ``inputs`` with ``node``'s attributes (for
    converters that reduce their operator to one TVM already imports, e.g. an int32 Conv)."""
    convert = tvm_convert_map()[op_type].get_converter(node.opset)
    return convert(bb, inputs, dict(node.attrs), None)


@contextmanager
def our_converters() -> Iterator[None]:
    """TVM's importer sees our converters inside the ``with`` block."""
    module = _frontend_module()
    with _LOCK:
        original = module._get_convert_map
        base = tvm_convert_map()
        merged = dict(base)
        for op_type in registered():
            merged[op_type] = _MapEntry(op_type, base.get(op_type))
        merged = {op_type: _Named(op_type, entry) for op_type, entry in merged.items()}

        def convert_map() -> dict[str, Any]:
            return merged

        convert_map.neo_local_original = getattr(original, "neo_local_original", original)  # type: ignore[attr-defined]
        module._get_convert_map = convert_map
        try:
            yield
        finally:
            module._get_convert_map = original
