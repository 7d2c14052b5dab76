"""LSTM and GRU directions as one kernel each: the whole time loop in one PrimFunc.

The ONNX import unrolls a recurrence into its steps (``frontends.onnx_converters.recurrent``),
each a product of the hidden state with R and a few small elementwise kernels. Built that way an
LSTM step cost about 7 us on Zen 3 (2 threads), most of it the VM's calls and allocations around
three kernels of a few microseconds each, against onnxruntime's fused LSTM at 4.3-4.9 us: a
2-layer LSTM of 50 steps ran at 1.4-1.65x onnxruntime's time. The importer emits each plain LSTM
or GRU direction as a private function (``RECURRENCE_ATTR``); here every call of one with
float32, static shapes becomes a call of ``recurrence_kernel``, which keeps the states in buffers
of its own and runs all steps in one call, and the functions left are inlined.

Each step: the products ``h R^T`` for all gate rows, ``W_BLOCKS`` vectors of rows at a time with
their accumulators in registers (R repacked at compile time to [row blocks, H, block width], so
each h element is one broadcast and a few contiguous loads), then the cell's update in vectors,
which adds the projected input and the biases. The hidden size is padded to whole vectors inside
the kernel (zero rows of R, zero inputs and biases: a padded unit's states stay 0). The
activations are ``fast_math.exp_poly``'s: sigmoid 1 / (1 + e^-x), tanh 2 / (1 + e^-2x) - 1.

A step's row blocks are shared out over the threads (one parallel loop a step) from
``PARALLEL_MACS`` multiply-adds a step on. Measured (an LSTM step on Zen 3, 2 threads, one thread
against all): H = 128 3.15 / 3.33 us (R, 256 KB, in the core's L2 cache), 160 4.7 / 4.3,
192 8.2 / 5.5, 256 14.8 / 11.4, 512 78 / 36; H = 128 at batch 4 11.6 / 7.8. One parallel region
for all steps, with a barrier after each step's products and after its update, took 3.7 us a step
at H = 128 and 11.3 at 256: no better.
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
#: a step's multiply-adds (gate rows x H x batch) from which its gate rows are computed on all threads
PARALLEL_MACS = 96 * 1024
#: TVM's kOpaque: FuseOps fuses nothing into the kernel
_OPAQUE = 8
#: the kernel's kind, for the schedule stats ("lstm", "gru")
KERNEL_ATTR = "neo_local.kernel"
#: the gates of each cell the kernel runs
GATES = {"lstm": 4, "gru": 3}


@dataclass(frozen=True)
class RecurrenceShape:
    """One direction's cell and sizes: steps, batch, hidden, the vector width, backwards or not."""

    cell: str
    steps: int
    batch: int
    hidden: int
    lanes: int
    reverse: bool

    @property
    def gates(self) -> int:
        return GATES[self.cell]

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
        return math.ceil(self.gates * self.padded / self.block)

    @property
    def parallel(self) -> bool:
        return self.gates * self.hidden * self.hidden * self.batch >= PARALLEL_MACS


def _sigmoid(x: tirx.PrimExpr) -> tirx.PrimExpr:
    return f32(1.0) / (f32(1.0) + exp_poly(-x))


def _tanh(x: tirx.PrimExpr) -> tirx.PrimExpr:
    return f32(2.0) / (f32(1.0) + exp_poly(f32(-2.0) * x)) - f32(1.0)


def recurrence_kernel(shape: RecurrenceShape) -> tirx.PrimFunc:
    """The PrimFunc (already scheduled) of one direction: (projected inputs [T, B, gates x
    padded], R as ``repacked_r``, R's bias [gates x padded], the initial states [B, H] each) ->
    (Y [T, B, H], the final states [B, H] each); inputs and bias padded by ``gate_padded``."""
    steps, batch, hidden, lanes = shape.steps, shape.batch, shape.hidden, shape.lanes
    padded, block, blocks = shape.padded, shape.block, shape.row_blocks
    rows = T.parallel if shape.parallel else T.serial

    def at(s: tirx.PrimExpr) -> tirx.PrimExpr:
        """Step ``s``'s time index."""
        return steps - 1 - s if shape.reverse else s

    @T.macro
    def start(state, given):
        for b in range(batch):
            for j in T.vectorized(padded):
                state[b, j] = f32(0.0)
            for j in range(hidden):
                state[b, j] = given[b, j]

    @T.macro
    def products(h, rp, gates):
        for jb in rows(blocks):
            for b in range(batch):
                acc = T.alloc_buffer((block,), "float32", scope="local")
                for v in T.vectorized(block):
                    acc[v] = f32(0.0)
                for k in range(hidden):
                    for v in T.vectorized(block):
                        acc[v] = acc[v] + h[b, k] * rp[jb, k, v]
                for v in T.vectorized(block):
                    gates[b, jb * block + v] = acc[v]

    @T.macro
    def finish(state, out):
        for b in range(batch):
            for j in range(hidden):
                out[b, j] = state[b, j]

    def pre(xp, gates, rb, s, b, q, j):
        """Gate ``q``'s input for unit ``j``: projected input + h R^T + R's bias."""
        return xp[at(s), b, q * padded + j] + gates[b, q * padded + j] + rb[q * padded + j]

    @T.macro
    def run(xp, rp, rb, gates, y, h, c, update):
        """Every step: the products, ``update`` (the cell's) of each vector of units, the output."""
        for s in range(steps):
            products(h, rp, gates)
            for b in range(batch):
                for jo in range(padded // lanes):
                    for ji in T.vectorized(lanes):
                        update(xp, gates, rb, h, c, s, b, jo * lanes + ji)
                for j in range(hidden):
                    y[at(s), b, j] = h[b, j]

    if shape.cell == "lstm":  # only the cell's own function is parsed (about 0.18 s each)
        @T.macro
        def lstm_update(xp, gates, rb, h, c, s, b, j):
            c[b, j] = (_sigmoid(pre(xp, gates, rb, s, b, 2, j)) * c[b, j]
                       + _sigmoid(pre(xp, gates, rb, s, b, 0, j)) * _tanh(pre(xp, gates, rb, s, b, 3, j)))
            h[b, j] = _sigmoid(pre(xp, gates, rb, s, b, 1, j)) * _tanh(c[b, j])

        @T.prim_func(private=True)
        def kernel(xp: T.Buffer((steps, batch, 4 * padded), "float32"),
                   rp: T.Buffer((blocks, hidden, block), "float32"), rb: T.Buffer((4 * padded,), "float32"),
                   h0: T.Buffer((batch, hidden), "float32"), c0: T.Buffer((batch, hidden), "float32"),
                   y: T.Buffer((steps, batch, hidden), "float32"), h_out: T.Buffer((batch, hidden), "float32"),
                   c_out: T.Buffer((batch, hidden), "float32")):
            T.func_attr({"tirx.noalias": True})
            h = T.alloc_buffer((batch, padded), "float32")
            c = T.alloc_buffer((batch, padded), "float32")
            gates = T.alloc_buffer((batch, blocks * block), "float32")
            start(h, h0)
            start(c, c0)
            run(xp, rp, rb, gates, y, h, c, lstm_update)
            finish(h, h_out)
            finish(c, c_out)
    else:
        @T.macro
        def gru_update(xp, gates, rb, h, c, s, b, j):
            # n = tanh(x_n + r (h R_n^T + Rb_n)) (linear_before_reset); h = (1 - z) n + z h
            h[b, j] = _gru_state(_sigmoid(pre(xp, gates, rb, s, b, 0, j)), _sigmoid(pre(xp, gates, rb, s, b, 1, j)),
                                 xp[at(s), b, 2 * padded + j], gates[b, 2 * padded + j] + rb[2 * padded + j], h[b, j])

        @T.prim_func(private=True)
        def kernel(xp: T.Buffer((steps, batch, 3 * padded), "float32"),
                   rp: T.Buffer((blocks, hidden, block), "float32"), rb: T.Buffer((3 * padded,), "float32"),
                   h0: T.Buffer((batch, hidden), "float32"), y: T.Buffer((steps, batch, hidden), "float32"),
                   h_out: T.Buffer((batch, hidden), "float32")):
            T.func_attr({"tirx.noalias": True})
            h = T.alloc_buffer((batch, padded), "float32")
            gates = T.alloc_buffer((batch, blocks * block), "float32")
            start(h, h0)
            run(xp, rp, rb, gates, y, h, None, gru_update)
            finish(h, h_out)

    return kernel.with_attrs({"tirx.is_scheduled": True, "op_pattern": _OPAQUE, KERNEL_ATTR: shape.cell})


def _gru_state(z: tirx.PrimExpr, r: tirx.PrimExpr, x_n: tirx.PrimExpr, h_n: tirx.PrimExpr,
               h: tirx.PrimExpr) -> tirx.PrimExpr:
    """``(1 - z) n + z h`` with ``n = tanh(x_n + r h_n)``."""
    return (f32(1.0) - z) * _tanh(x_n + r * h_n) + z * h


def gate_padded(x: relax.Expr, shape: RecurrenceShape, axis: int) -> relax.Expr:
    """``x`` with its gate rows along ``axis`` as groups of ``padded`` (zero rows added)."""
    extra = shape.padded - shape.hidden
    if not extra:
        return x
    dims = [int(d) for d in x.ty.shape.values]
    split = relax.op.reshape(x, dims[:axis] + [shape.gates, shape.hidden] + dims[axis + 1:])
    widths = [0, 0] * (len(dims) + 1)
    widths[2 * (axis + 1) + 1] = extra
    return relax.op.reshape(relax.op.nn.pad(split, widths), dims[:axis] + [shape.gates * shape.padded] + dims[axis + 1:])


def repacked_r(r: relax.Expr, shape: RecurrenceShape) -> relax.Expr:
    """R [gates x H, H] as [row blocks, H, block]: a block's rows for one h element contiguous
    (the last block's rows past the gates zero)."""
    rows = gate_padded(r, shape, 0)
    extra = shape.row_blocks * shape.block - shape.gates * shape.padded
    if extra:
        rows = relax.op.nn.pad(rows, [0, extra, 0, 0])
    return relax.op.permute_dims(relax.op.reshape(rows, [shape.row_blocks, shape.block, shape.hidden]), [0, 2, 1])


def recurrence_shape(call: relax.Call, func: relax.Function, lanes: int) -> RecurrenceShape | None:
    """The cell and sizes of a call of a recurrence function, None unless float32 and static."""
    cell = func.attrs.get(RECURRENCE_ATTR) if func.attrs is not None else None
    if cell not in GATES:
        return None
    types = [arg.ty for arg in call.args]
    if any(not hasattr(t, "dtype") or t.dtype != "float32" or t.shape is None for t in types):
        return None
    dims = [t.shape.values for t in types]
    if not all(isinstance(d, tirx.IntImm) for ds in dims for d in ds):
        return None
    steps, batch, _ = (int(d) for d in dims[0])
    return RecurrenceShape(str(cell), steps, batch, int(dims[3][1]), lanes, bool(int(func.attrs.get(REVERSE_ATTR, 0))))


@relax.expr_functor.mutator
class _RecurrenceCalls(relax.PyExprMutator):
    def __init__(self, mod: tvm.IRModule, lanes: int):
        super().__init__(mod)
        self.mod_ = mod
        self.lanes = lanes
        self.kernels: dict[RecurrenceShape, tvm.ir.GlobalVar] = {}

    def visit_call_(self, call: relax.Call) -> relax.Expr:  # noqa: N802 (TVM's naming)
        call = super().visit_call_(call)
        if not isinstance(call.op, tvm.ir.GlobalVar) or not isinstance(self.mod_[call.op], relax.Function):
            return call
        shape = recurrence_shape(call, self.mod_[call.op], self.lanes)
        if shape is None:
            return call
        if shape not in self.kernels:
            self.kernels[shape] = self.builder_.add_func(recurrence_kernel(shape), f"{shape.cell}_steps")
        projected, r, rb, *states = call.args
        emit = self.builder_.emit
        args = [emit(gate_padded(projected, shape, 2)), emit(repacked_r(r, shape)), emit(gate_padded(rb, shape, 0)),
                *states]
        state = relax.TensorType((shape.batch, shape.hidden), "float32")
        outputs = [relax.TensorType((shape.steps, shape.batch, shape.hidden), "float32")] + [state] * len(states)
        return relax.call_tir(self.kernels[shape], args, outputs)


def recurrence_kernels(mod: tvm.IRModule, lanes: int) -> tvm.IRModule:
    """Calls of recurrence functions as ``recurrence_kernel`` calls; every private function left
    (recurrences this cannot take) inlined."""
    if not any(isinstance(f, relax.Function) and f.attrs is not None and RECURRENCE_ATTR in f.attrs
               for _, f in mod.functions_items()):
        return mod
    mod = rewrite_functions(_RecurrenceCalls(mod, lanes), mod)
    return relax.transform.DeadCodeElimination()(relax.transform.InlinePrivateFunctions()(mod))
