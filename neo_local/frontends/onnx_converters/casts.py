"""Cast and CastLike between types whose conversion TVM 0.27 gets wrong: refused, not miscomputed.

TVM's casts to and from float8 (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ) and to bfloat16 and E8M0
neither round nor saturate as ONNX defines (the node suite's cases give other values), and its
2- and 4-bit integer and 4-bit float types do not build or run. A model that needs one of
these conversions fails at import with the operator and the types named; every other cast is
TVM's own converter; reading bfloat16 and E8M0 (widening) is exact and passes through.
"""

from __future__ import annotations

from typing import Any

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import dtype_of
from neo_local.frontends.onnx_converters.semantics import tvm_converter

#: relax dtypes (prefixes) whose conversion to or from any other type is refused
_NEVER = ("float8_e4m3", "float8_e5m2", "float4")
_SUB_BYTE_INTS = ("int2", "uint2", "int4", "uint4")
#: relax dtypes refused as the target of a conversion (reading them is exact)
_NOT_TO = ("bfloat16", "float8_e8m0")


def _refused(source: str, target: str) -> bool:
    if source == target:
        return False
    either = (source, target)
    return (any(d.startswith(_NEVER) or d in _SUB_BYTE_INTS for d in either)
            or target.startswith(_NOT_TO))


def _checked(bb: Any, node: OnnxNode, target: str) -> Any:
    source = dtype_of(bb, node.input(0))
    if _refused(source, target):
        raise ValueError(
            f"{node.op_type} from {source} to {target} is not supported: TVM's conversion does not round and "
            "saturate as ONNX defines (or does not build, for 2- and 4-bit types)"
        )
    return tvm_converter(bb, node)


@register("Cast", 1)
def cast(bb: Any, node: OnnxNode) -> Any:
    from tvm import relax
    from tvm.relax.frontend.onnx.onnx_frontend import get_type

    if not isinstance(node.input(0), relax.Expr) or isinstance(node.input(0), relax.ShapeExpr):
        return tvm_converter(bb, node)  # shapes and prim values: integer casts of known values
    return _checked(bb, node, str(get_type(node.attrs["to"])))


@register("CastLike", 15)
def cast_like(bb: Any, node: OnnxNode) -> Any:
    from tvm import relax

    if isinstance(node.input(1), relax.ShapeExpr) or isinstance(node.input(0), relax.ShapeExpr):
        return tvm_converter(bb, node)
    return _checked(bb, node, dtype_of(bb, node.input(1)))
