"""What the CPU pipeline's Relax rewrites share: applying a mutator to a module, static shapes,
the op families that act on each channel alone, and the convs the rewrites may change."""

from __future__ import annotations

import tvm
from tvm import relax

#: elementwise binary ops with numpy broadcasting
BINARY = {"relax.add", "relax.subtract", "relax.multiply", "relax.divide", "relax.maximum", "relax.minimum"}
#: elementwise unary ops
UNARY = {"relax.nn.relu", "relax.sigmoid", "relax.tanh", "relax.clip", "relax.nn.silu", "relax.negative", "relax.exp",
         "relax.round", "relax.astype"}
#: spatial pools, each channel on its own
POOLS = {"relax.nn.max_pool2d", "relax.nn.avg_pool2d"}
#: reductions that global pools are written as (over H and W: each channel on its own)
SPATIAL_REDUCTIONS = {"relax.mean": relax.op.mean, "relax.max": relax.op.max}


def rewrite_functions(rewriter: relax.PyExprMutator, mod: tvm.IRModule) -> tvm.IRModule:
    """``mod`` with every Relax function visited by ``rewriter`` (built on ``mod``)."""
    for gv, func in mod.functions_items():
        if isinstance(func, relax.Function):
            rewriter.builder_.update_func(gv, rewriter.visit_expr(func))
    return rewriter.builder_.get()


def relax_calls(mod: tvm.IRModule) -> list[relax.Call]:
    """Every call in every Relax function of ``mod``, in post order."""
    calls: list[relax.Call] = []

    def visit(expr: relax.Expr) -> None:
        if isinstance(expr, relax.Call):
            calls.append(expr)

    for _, func in mod.functions_items():
        if isinstance(func, relax.Function):
            relax.analysis.post_order_visit(func, visit)
    return calls


def rebind(mutator: relax.PyExprMutator, var: relax.Var, value: relax.Expr) -> relax.Var:
    """Emit ``value`` in place of ``var``'s binding (a dataflow var, a dataflow block's output or
    a var outside any dataflow block, as ``var`` was), and remap ``var``'s uses to it; returns
    the new var."""
    if isinstance(var, relax.DataflowVar) or not mutator.builder_.current_block_is_dataflow():
        new = mutator.builder_.emit(value, var.name)
    else:
        new = mutator.builder_.emit_output(value, var.name)
    mutator.set_var_remap(var, new)
    return new


def bound_call(mutator: relax.PyExprMutator, expr: relax.Expr, op: str) -> relax.Call | None:
    """The call of ``op`` that ``expr`` is (or a var ``mutator`` has bound to), None otherwise."""
    value = mutator.lookup_binding(expr) if isinstance(expr, relax.Var) else expr
    return value if isinstance(value, relax.Call) and value.op == tvm.ir.Op.get(op) else None


def is_call_tir(value: relax.Expr) -> bool:
    """Whether ``value`` is a kernel call ``call_tir(kernel, (args...))`` with no symbolic-shape
    arguments."""
    return (isinstance(value, relax.Call) and value.op == tvm.ir.Op.get("relax.call_tir") and len(value.args) == 2
            and isinstance(value.args[1], relax.Tuple))


def static_shape(expr: relax.Expr) -> list[int] | None:
    """The static shape of a tensor-typed expression; None where a dimension is symbolic."""
    sinfo = expr.ty
    if not isinstance(sinfo, relax.TensorType) or sinfo.shape is None:
        return None
    try:
        return [int(d) for d in sinfo.shape.values]
    except (TypeError, AttributeError):
        return None


def broadcasts_to(shape: list[int] | None, out: list[int]) -> bool:
    """Whether an NCHW ``shape`` broadcasts to ``out`` with the same channels (a squeeze-excite
    gate [N, C, 1, 1] against [N, C, H, W]): then their blocked or padded forms broadcast alike."""
    return (shape is not None and len(shape) == 4 and shape[:2] == out[:2]
            and shape[2] in (1, out[2]) and shape[3] in (1, out[3]))


def plain_float_conv(call: relax.Call) -> tuple[list[int], list[int]] | None:
    """(data shape, weight shape) of a groups=1 NCHW/OIHW float32 conv2d with constant weights
    and a static input: the convs the stem and channel-padding rewrites may change; None otherwise."""
    return _plain_conv(call, "float32")


def plain_int8_conv(call: relax.Call) -> tuple[list[int], list[int]] | None:
    """``plain_float_conv`` for a uint8 x int8 -> int32 conv (``quantized``'s int8 kernels)."""
    shapes = _plain_conv(call, "uint8")
    return shapes if shapes is not None and call.ty.dtype == "int32" else None


def _plain_conv(call: relax.Call, dtype: str) -> tuple[list[int], list[int]] | None:
    if call.op != tvm.ir.Op.get("relax.nn.conv2d") or int(call.attrs.groups) != 1:
        return None
    if (call.attrs.data_layout, call.attrs.kernel_layout, call.attrs.out_layout) != ("NCHW", "OIHW", "NCHW"):
        return None
    if not isinstance(call.args[1], tvm.ir.expr.Constant) or call.args[0].ty.dtype != dtype:
        return None
    xs, ws = static_shape(call.args[0]), static_shape(call.args[1])
    return None if xs is None or ws is None else (xs, ws)


def plain_dense(call: relax.Call) -> tuple[list[int], list[int]] | None:
    """(input shape, weight shape) of a float32 dense layer ``matmul(x[..., K], C[K, N])`` with
    a constant ``C`` and a static input: the matmuls the one-row and bfloat16 rewrites may change;
    None otherwise."""
    if call.op != tvm.ir.Op.get("relax.matmul") or not isinstance(call.args[1], tvm.ir.expr.Constant):
        return None
    if any(e.ty.dtype != "float32" for e in (call, *call.args)):
        return None
    xs, ws = static_shape(call.args[0]), static_shape(call.args[1])
    if xs is None or ws is None or len(xs) < 2 or len(ws) != 2 or xs[-1] != ws[0]:
        return None
    return xs, ws


def plain_nchw_conv(call: relax.Call) -> tuple[list[int], list[int]] | None:
    """(data shape, weight shape) of an NCHW/OIHW float32 conv2d, any groups, with constant
    weights and static 4-D shapes: the grouped convs the blocked rewrites may change; None
    otherwise."""
    if call.op != tvm.ir.Op.get("relax.nn.conv2d"):
        return None
    attrs = call.attrs
    if (attrs.data_layout, attrs.kernel_layout, attrs.out_layout) != ("NCHW", "OIHW", "NCHW"):
        return None
    if not isinstance(call.args[1], tvm.ir.expr.Constant):
        return None
    xs, ws = static_shape(call.args[0]), static_shape(call.args[1])
    if xs is None or ws is None or len(xs) != 4 or len(ws) != 4:
        return None
    if call.args[0].ty.dtype != "float32" or call.args[1].ty.dtype != "float32":
        return None
    return xs, ws


def plain_depthwise(call: relax.Call) -> int | None:
    """The channel count of a ``plain_nchw_conv`` that is depthwise (multiplier 1), None for any
    other call."""
    shapes = plain_nchw_conv(call)
    if shapes is None:
        return None
    xs, ws = shapes
    c = xs[1]
    return c if int(call.attrs.groups) == c and ws[0] == c and ws[1] == 1 else None
