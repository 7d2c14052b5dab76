"""An LSTM direction as one kernel: the whole time loop in one PrimFunc.

The ONNX import unrolls an LSTM into its steps, each a product of the hidden state with R and
two small gate kernels (``frontends.onnx_converters.recurrent``). Built that way a step cost
about 7 us on Zen 3 (2 threads), most of it the VM's calls and allocations around three kernels
of a few microseconds each, against onnxruntime's fused LSTM at 4.3-4.9 us: a 2-layer LSTM of
50 steps ran at 1.4-1.65x onnxruntime's time. The importer emits each plain LSTM direction as a
private function (``RECURRENCE_ATTR`` "lstm"); here every call of one with float32, static
shapes becomes a call of ``lstm_kernel``, which keeps h and c in buffers of its own and runs all
steps in one call, and the functions left are inlined.

Each step: the gates ``x_t W^T + b + h R^T`` for the 4H gate rows, ``W_BLOCKS`` vectors of rows
at a time with their accumulators in registers (R repacked at compile time to
[row blocks, H, block width], so each h element is one broadcast and a few contiguous loads),
then the cell's elementwise update in vectors. The hidden size is padded to whole vectors
inside the kernel (zero rows of R and zero inputs: a padded unit's c and h stay 0). The
activations are ``fast_math.exp_poly``'s: sigmoid 1 / (1 + e^-x), tanh 2 / (1 + e^-2x) - 1.
A step's row blocks are shared out over the threads (one parallel loop a step) from
``PARALLEL_MACS`` multiply-adds a step on. Measured a step on Zen 3, 2 threads, one thread
against all: H = 128 3.15 / 3.33 us (R, 256 KB, in the core's L2 cache), 160 4.7 / 4.3,
192 8.2 / 5.5, 256 14.8 / 11.4, 512 78 / 36; H = 128 at batch 4 11.6 / 7.8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tvm
from tvm import relax, tirx
from tvm.script import tirx as T

from neo_local.backends.cpu_schedule.fast_math import exp_poly, f32
from neo_local.backends.cpu_schedule.rewriting import rewrite_functions
from neo_local.frontends.base import RECURRENCE_ATTR, REVERSE_ATTR

#: vectors of gate rows whose accumulators a step keeps in registers at once
W_BLOCKS = 4
#: a step's multiply-adds (4H x H x batch) from which its gate rows are computed on all threads
PARALLEL_MACS = 96 * 1024
#: TVM's kOpaque: FuseOps fuses nothing into the kernel
_OPAQUE = 8
#: the kernel's kind, for the schedule stats ("lstm")
KERNEL_ATTR = "neo_local.kernel"


@dataclass(frozen=True)
class LstmShape:
    """One LSTM direction's sizes: steps, batch, hidden, the vector width, backwards in time or not."""

    steps: int
    batch: int
    hidden: int
    lanes: int
    reverse: bool

    @property
    def padded(self) -> int:
        """The hidden size in whole vectors."""
        return math.ceil(self.hidden / self.lanes) * self.lanes

    @property
    def block(self) -> int:
        """Gate rows computed together (``W_BLOCKS`` vectors)."""
        return W_BLOCKS * self.lanes

    @property
    def row_blocks(self) -> int:
        return 4 * self.padded // self.block

    @property
    def parallel(self) -> bool:
        return 4 * self.hidden * self.hidden * self.batch >= PARALLEL_MACS


def _sigmoid(x: tirx.PrimExpr) -> tirx.PrimExpr:
    return f32(1.0) / (f32(1.0) + exp_poly(-x))


def _tanh(x: tirx.PrimExpr) -> tirx.PrimExpr:
    return f32(2.0) / (f32(1.0) + exp_poly(f32(-2.0) * x)) - f32(1.0)


def lstm_kernel(shape: LstmShape) -> tirx.PrimFunc:
    """The PrimFunc (already scheduled) of one LSTM direction: (projected inputs padded to
    [T, B, 4 * padded], R repacked by ``repacked_r``, h0 [B, H], c0 [B, H]) -> (Y [T, B, H],
    h_T [B, H], c_T [B, H])."""
    steps, batch, hidden, lanes = shape.steps, shape.batch, shape.hidden, shape.lanes
    padded, block, blocks = shape.padded, shape.block, shape.row_blocks
    rev = int(shape.reverse)
    rows = T.parallel if shape.parallel else T.serial

    @T.prim_func(private=True)
    def kernel(xp: T.Buffer((steps, batch, 4 * padded), "float32"), rp: T.Buffer((blocks, hidden, block), "float32"),
               h0: T.Buffer((batch, hidden), "float32"), c0: T.Buffer((batch, hidden), "float32"),
               y: T.Buffer((steps, batch, hidden), "float32"), h_out: T.Buffer((batch, hidden), "float32"),
               c_out: T.Buffer((batch, hidden), "float32")):
        T.func_attr({"tirx.noalias": True})
        h = T.alloc_buffer((batch, padded), "float32")
        c = T.alloc_buffer((batch, padded), "float32")
        gates = T.alloc_buffer((batch, 4 * padded), "float32")
        for b in range(batch):
            for j in T.vectorized(padded):
                h[b, j] = f32(0.0)
                c[b, j] = f32(0.0)
            for j in range(hidden):
                h[b, j] = h0[b, j]
                c[b, j] = c0[b, j]
        for s in range(steps):
            for jb in rows(blocks):
                for b in range(batch):
                    acc = T.alloc_buffer((block,), "float32", scope="local")
                    for v in T.vectorized(block):
                        acc[v] = xp[s + rev * (steps - 1 - 2 * s), b, jb * block + v]
                    for k in range(hidden):
                        for v in T.vectorized(block):
                            acc[v] = acc[v] + h[b, k] * rp[jb, k, v]
                    for v in T.vectorized(block):
                        gates[b, jb * block + v] = acc[v]
            for b in range(batch):
                for jo in range(padded // lanes):
                    for ji in T.vectorized(lanes):
                        c[b, jo * lanes + ji] = (
                            _sigmoid(gates[b, 2 * padded + jo * lanes + ji]) * c[b, jo * lanes + ji]
                            + _sigmoid(gates[b, jo * lanes + ji]) * _tanh(gates[b, 3 * padded + jo * lanes + ji]))
                        h[b, jo * lanes + ji] = (
                            _sigmoid(gates[b, padded + jo * lanes + ji]) * _tanh(c[b, jo * lanes + ji]))
                for j in range(hidden):
                    y[s + rev * (steps - 1 - 2 * s), b, j] = h[b, j]
        for b in range(batch):
            for j in range(hidden):
                h_out[b, j] = h[b, j]
                c_out[b, j] = c[b, j]

    return kernel.with_attrs({"tirx.is_scheduled": True, "op_pattern": _OPAQUE, KERNEL_ATTR: "lstm"})


def _gate_padded(x: relax.Expr, shape: LstmShape, axis: int) -> relax.Expr:
    """``x`` with its 4H gate rows along ``axis`` as 4 groups of ``padded`` (zero rows added)."""
    extra = shape.padded - shape.hidden
    if not extra:
        return x
    dims = [int(d) for d in x.ty.shape.values]
    split = relax.op.reshape(x, dims[:axis] + [4, shape.hidden] + dims[axis + 1:])
    widths = [0, 0] * (len(dims) + 1)
    widths[2 * (axis + 1) + 1] = extra
    padded = relax.op.nn.pad(split, widths)
    return relax.op.reshape(padded, dims[:axis] + [4 * shape.padded] + dims[axis + 1:])


def repacked_r(r: relax.Expr, shape: LstmShape) -> relax.Expr:
    """R [4H, H] as [row blocks, H, block]: a block's rows for one h element contiguous."""
    rows = relax.op.reshape(_gate_padded(r, shape, 0), [shape.row_blocks, shape.block, shape.hidden])
    return relax.op.permute_dims(rows, [0, 2, 1])


def lstm_shape(call: relax.Call, func: relax.Function, lanes: int) -> LstmShape | None:
    """The sizes of a call of an "lstm" recurrence function, None unless float32 and static."""
    if func.attrs is None or func.attrs.get(RECURRENCE_ATTR) != "lstm":
        return None
    types = [arg.ty for arg in call.args]
    if any(not hasattr(t, "dtype") or t.dtype != "float32" or t.shape is None for t in types):
        return None
    dims = [t.shape.values for t in types]
    if not all(isinstance(d, tirx.IntImm) for ds in dims for d in ds):
        return None
    steps, batch, _ = (int(d) for d in dims[0])
    return LstmShape(steps, batch, int(dims[2][1]), lanes, bool(int(func.attrs.get(REVERSE_ATTR, 0))))


@relax.expr_functor.mutator
class _LstmCalls(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule, lanes: int):
        super().__init__(mod)
        self.mod_ = mod
        self.lanes = lanes
        self.kernels: dict[LstmShape, tvm.ir.GlobalVar] = {}

    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802 (TVM's naming)
        call = super().visit_call_(call)
        if not isinstance(call.op, tvm.ir.GlobalVar) or not isinstance(self.mod_[call.op], relax.Function):
            return call
        shape = lstm_shape(call, self.mod_[call.op], self.lanes)
        if shape is None:
            return call
        if shape not in self.kernels:
            self.kernels[shape] = self.builder_.add_func(lstm_kernel(shape), "lstm_steps")
        projected, r, h0, c0 = call.args
        args = [self.builder_.emit(_gate_padded(projected, shape, 2)), self.builder_.emit(repacked_r(r, shape)), h0, c0]
        state = relax.TensorType((shape.batch, shape.hidden), "float32")
        outputs = [relax.TensorType((shape.steps, shape.batch, shape.hidden), "float32"), state, state]
        return relax.call_tir(self.kernels[shape], args, outputs)


def lstm_kernels(mod: tvm.IRModule, lanes: int) -> tvm.IRModule:
    """Calls of "lstm" recurrence functions as ``lstm_kernel`` calls; every private function left
    (other recurrences, LSTMs this cannot take) inlined."""
    if not any(isinstance(f, relax.Function) and f.attrs is not None and RECURRENCE_ATTR in f.attrs
               for _, f in mod.functions_items()):
        return mod
    mod = rewrite_functions(_LstmCalls(mod, lanes), mod)
    return relax.transform.DeadCodeElimination()(relax.transform.InlinePrivateFunctions()(mod))
