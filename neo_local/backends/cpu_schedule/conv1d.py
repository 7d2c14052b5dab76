"""One-dimensional convs and pools as two-dimensional ones of height 1, so that the blocked conv2d
steps (layout, schedules, depthwise, fusion) take them.

TVM legalizes ``nn.conv1d`` to a plain TE loop nest that only dlight schedules: an audio CNN of
four strided conv1d layers over 16000 samples ran 56x slower than onnxruntime. Here an NCW conv1d
over ``x`` becomes a conv2d over ``x`` as [N, C, 1, W] (its weights [O, I, 1, KW], strides,
padding and dilation 1 along the new axis), and the 4-D result is the value's *twin*: the
elementwise ops after it (bias, activations, residual adds), max/avg pool1d and a mean or max over
the samples are rewritten on the twins too, so that a chain of layers stays 4-D and the next conv
takes its input without a reshape. Every other use reads the 3-D value, the twin squeezed (dead
code where nothing reads it). torch's frontend writes 1-D pools and means itself as 2-D ones
between ``expand_dims`` and ``squeeze``: a squeeze of a height-1 value makes that value the
twin, and giving the 3-D value its height back reads the twin, so those pairs vanish too (with
them left in, TVM's ConvertLayout failed with std::bad_alloc on an M5 net from torch.export,
which then fell back to the plain build). Convs in another layout (TensorFlow's Conv1D arrives
as a conv2d already) and ones whose shapes are not static are left to TVM.
"""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax

from neo_local.backends.cpu_schedule.rewriting import (
    BINARY, SPATIAL_REDUCTIONS, UNARY, rebind, rewrite_functions, static_shape,
)

_POOLS = {"relax.nn.max_pool1d": relax.op.nn.max_pool2d, "relax.nn.avg_pool1d": relax.op.nn.avg_pool2d}


def _plain_conv1d(call: relax.Call) -> bool:
    """An NCW/OIW conv1d with static shapes, the ones this rewrite takes."""
    a = call.attrs
    return ((a.data_layout, a.kernel_layout, a.out_layout) == ("NCW", "OIW", "NCW")
            and static_shape(call.args[0]) is not None and static_shape(call.args[1]) is not None)


def _with_height(expr: relax.Expr) -> relax.Expr:
    """[..., W] as [..., 1, W]: a constant's data reshaped (so that it stays a constant), else an
    ``expand_dims``."""
    if isinstance(expr, tvm.ir.expr.Constant):
        data = expr.value.numpy()
        return relax.const(data.reshape(*data.shape[:-1], 1, data.shape[-1]), str(data.dtype))
    return relax.op.expand_dims(expr, len(static_shape(expr)) - 1)


@relax.expr_functor.mutator
class _TwoD(relax.PyExprMutator):
    """See the module docstring. ``self.twins`` maps a (new) 3-D var to its [N, C, 1, W] twin."""

    def __init__(self, mod: tvm.IRModule):
        super().__init__(mod)
        self.twins: dict = {}

    def _twin(self, expr: relax.Expr) -> relax.Expr | None:
        """``expr``'s twin, None where it has none."""
        return self.twins.get(expr) if isinstance(expr, relax.Var) else None

    def _twin_of(self, expr: relax.Expr) -> relax.Expr:
        """``expr``'s twin, or ``expr`` given a height of 1."""
        twin = self._twin(expr)
        return twin if twin is not None else self.builder_.emit(_with_height(expr))

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:  # noqa: N802 (TVM's naming)
        value = self.visit_expr(binding.value)
        given = self._given_height(value)
        if given is not None and isinstance(binding.var, relax.DataflowVar):
            self.set_var_remap(binding.var, given)
            return
        twin = self._rewrite(value) if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) else None
        shape = static_shape(binding.var)
        if twin is not None:  # the value itself: the twin squeezed (a mean's [N, C]: reshaped)
            value = relax.op.squeeze(twin, [2]) if len(shape) == 3 else relax.op.reshape(twin, shape)
        new = rebind(self, binding.var, value)
        if twin is not None and len(shape) == 3:
            self.twins[new] = twin

    def _given_height(self, value: relax.Expr) -> relax.Expr | None:
        """The twin of a value that ``value`` gives a height of 1 again (torch's frontend writes a
        1-D pool as ``expand_dims`` -> 2-D pool -> ``squeeze``), None for any other value."""
        if not (isinstance(value, relax.Call) and value.op == tvm.ir.Op.get("relax.expand_dims")):
            return None
        if [int(a) % 4 for a in value.attrs.axis] != [2]:
            return None
        return self._twin(value.args[0])

    def _rewrite(self, call: relax.Call) -> relax.Expr | None:
        """The 4-D twin of ``call``'s value, or None where the call stays as it is."""
        name = call.op.name
        if name == "relax.nn.conv1d":
            return self._conv(call) if _plain_conv1d(call) else None
        if name in _POOLS:
            return self._pool(call)
        if name in SPATIAL_REDUCTIONS:
            return self._reduction(call)
        if name in BINARY or name in UNARY:
            return self._elementwise(call)
        if name == "relax.squeeze":
            return self._squeezed(call)
        return None

    def _squeezed(self, call: relax.Call) -> relax.Expr | None:
        """A 4-D value of height 1 squeezed to three dimensions: the twin is the 4-D value."""
        x = call.args[0]
        shape = static_shape(x)
        axes = call.attrs.axis
        if shape is None or len(shape) != 4 or shape[2] != 1 or axes is None or [int(a) % 4 for a in axes] != [2]:
            return None
        return x

    def _conv(self, call: relax.Call) -> relax.Expr:
        a = call.attrs
        (left, right), (stride,), (dilation,) = a.padding, a.strides, a.dilation
        return self.builder_.emit(relax.op.nn.conv2d(
            self._twin_of(call.args[0]), _with_height(call.args[1]), strides=(1, stride), padding=(0, left, 0, right),
            dilation=(1, dilation), groups=int(a.groups), out_dtype=str(call.ty.dtype)))

    def _pool(self, call: relax.Call) -> relax.Expr | None:
        a, twin = call.attrs, self._twin(call.args[0])
        if twin is None or a.layout != "NCW" or a.out_layout != "NCW":
            return None
        (left, right), (size,), (stride,), (dilation,) = a.padding, a.pool_size, a.strides, a.dilation
        return self.builder_.emit(_POOLS[call.op.name](
            twin, pool_size=(1, size), strides=(1, stride), padding=(0, left, 0, right),
            dilation=(1, dilation), ceil_mode=bool(a.ceil_mode), count_include_pad=bool(a.count_include_pad)))

    def _reduction(self, call: relax.Call) -> relax.Expr | None:
        """A mean or max over the samples (a global average or max pool: a PointNet's over its
        points) as one over H and W, which the blocked layout keeps; its result is [N, C, 1, 1],
        reshaped back for the 3-D value."""
        twin, axes = self._twin(call.args[0]), call.attrs.axis
        if twin is None or axes is None or [int(v) % 3 for v in axes] != [2]:
            return None
        return self.builder_.emit(SPATIAL_REDUCTIONS[call.op.name](twin, axis=[2, 3], keepdims=True))

    def _elementwise(self, call: relax.Call) -> relax.Expr | None:
        """The op on the twins, the other tensor operands (constants, biases [C, 1]) given a height."""
        out = static_shape(call)
        tensors = [x for x in call.args if isinstance(x.ty, relax.TensorType)]
        if (out is None or len(out) != 3 or any(static_shape(x) is None for x in tensors)
                or all(self._twin(x) is None for x in tensors)):
            return None
        args = [self._twin_of(x) if isinstance(x.ty, relax.TensorType) and static_shape(x) else x for x in call.args]
        return self.builder_.emit(relax.Call(call.op, args, call.attrs, call.ty_args))


def conv1d_as_conv2d(mod: tvm.IRModule) -> tvm.IRModule:
    """``mod`` with its conv1d chains as conv2d ones of height 1 (module docstring)."""
    return relax.transform.DeadCodeElimination()(rewrite_functions(_TwoD(mod), mod))
