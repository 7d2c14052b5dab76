"""ONNX RNN, GRU and LSTM, unrolled over the (static) sequence length.

Relax has no loop over tensors that the default pipeline compiles well, and the models that use
these operators have a fixed sequence length once DataInputConfig fixes the input shape, so each
time step becomes a few matmuls and elementwise ops. The input projection ``X·Wᵀ + Wb`` is one
matmul over all time steps; only the recurrent part is per step.

All three share the parts that differ only in the cell: directions (forward, reverse,
bidirectional), ``layout`` 0/1, initial states, activations with their alpha/beta, ``clip``, and
``sequence_lens`` (steps at or past a batch entry's length keep its state and output zeros, which
is also what makes the reverse direction start at each entry's own last step).

Each direction of a plain LSTM, or of a GRU with ``linear_before_reset`` (torch's), is emitted as
a private function marked ``RECURRENCE_ATTR`` and called once: the scheduled CPU pipeline runs it
as one kernel of all its steps (``backends.cpu_schedule.recurrence``), other builds inline it.
Sequence lengths, clips, peepholes and other activations keep the steps inline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from neo_local.frontends.base import RECURRENCE_ATTR, REVERSE_ATTR
from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.activations import ACTIVATIONS, Activation, op as _op
from neo_local.frontends.onnx_converters.relax_util import (
    chunks, constant, constant_value, dtype_of, index, static_shape,
)

# --------------------------------------------------------------------------- activations


def activations(node: OnnxNode, defaults: Sequence[str], directions: int) -> tuple[tuple[Activation, ...], ...]:
    """The node's activations per direction; alpha/beta values are consumed in order by the
    activations that take them (ONNX's rule), the others get the function's default."""
    names = list(node.attr("activations", ())) or list(defaults) * directions
    if len(names) != len(defaults) * directions:
        raise ValueError(f"{node.op_type}: {len(names)} activations given, {len(defaults) * directions} expected")
    alphas, betas = list(node.attr("activation_alpha", ())), list(node.attr("activation_beta", ()))
    parsed = []
    for name in names:
        name = name.decode() if isinstance(name, bytes) else name
        if name.lower() not in ACTIVATIONS:
            raise ValueError(f"{node.op_type}: activation {name} is not implemented")
        _, default_alpha, default_beta = ACTIVATIONS[name.lower()]
        alpha = (alphas.pop(0) if alphas else default_alpha) if default_alpha is not None else None
        beta = (betas.pop(0) if betas else default_beta) if default_beta is not None else None
        parsed.append(Activation(name, alpha, beta))
    per = len(defaults)
    return tuple(tuple(parsed[d * per:(d + 1) * per]) for d in range(directions))


# --------------------------------------------------------------------------- the shared unrolling


@dataclass(frozen=True)
class Direction:
    """One direction's weights (W: [gates*H, I], R: [gates*H, H], biases [gates*H] or None),
    its activations and whether it runs backwards in time."""

    reverse: bool
    w: Any
    r: Any
    wb: Any
    rb: Any
    peephole: Any
    acts: tuple[Activation, ...]


@dataclass(frozen=True)
class Recurrence:
    """What RNN, GRU and LSTM share: the node's layout, sizes and per-direction parameters."""

    node: OnnxNode
    dtype: str
    seq_len: int
    batch: int
    hidden: int
    layout: int
    clip: float | None
    directions: tuple[Direction, ...]

    def activate(self, bb: Any, act: Activation, x: Any) -> Any:
        """``act(x)``, with ``clip`` applied to the activation's input as ONNX says."""
        if self.clip is not None:
            x = _op("clip")(x, -self.clip, self.clip)
        return bb.emit(act.apply(x, self.dtype))

    def initial(self, bb: Any, index_: int, direction: int) -> Any:
        """The initial state given as input ``index_`` for one direction, or zeros."""
        given = self.node.input(index_)
        if given is None:
            return bb.emit(_op("zeros")((self.batch, self.hidden), self.dtype))
        if self.layout == 1:
            given = _op("permute_dims")(given, [1, 0, 2])
        return index(bb, given, direction)


def recurrence(bb: Any, node: OnnxNode, gates: int, default_acts: Sequence[str]) -> Recurrence:
    x = node.input(0)
    direction = node.attr("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ValueError(f"{node.op_type}: direction {direction!r} is not implemented")
    reverse_flags = {"forward": (False,), "reverse": (True,), "bidirectional": (False, True)}[direction]
    layout = int(node.attr("layout", 0))
    shape = static_shape(bb, x, f"{node.op_type} input X")
    seq_len, batch = (shape[1], shape[0]) if layout == 1 else (shape[0], shape[1])
    w_shape = static_shape(bb, node.input(1), f"{node.op_type} input W")
    hidden = int(node.attr("hidden_size", w_shape[1] // gates))
    acts = activations(node, default_acts, len(reverse_flags))
    bias = node.input(3)
    peepholes = node.input(7) if node.op_type == "LSTM" else None
    parts = []
    for d, reverse in enumerate(reverse_flags):
        wb = rb = None
        if bias is not None:
            wb, rb = chunks(bb, index(bb, bias, d), 2, axis=0)
        peephole = None if peepholes is None else index(bb, peepholes, d)
        parts.append(Direction(reverse, index(bb, node.input(1), d), index(bb, node.input(2), d), wb, rb, peephole, acts[d]))
    clip = node.attr("clip")
    return Recurrence(node, dtype_of(bb, x), seq_len, batch, hidden, layout,
                      None if clip is None else float(clip), tuple(parts))


def _step_masks(bb: Any, rec: Recurrence) -> list[Any] | None:
    """Per time step, a [batch, 1] bool mask of the batch entries still inside their sequence;
    None when sequence_lens is absent or a constant equal to the full length everywhere."""
    lens = rec.node.input(4)
    if lens is None:
        return None
    known = constant_value(lens)
    if known is not None and np.all(known == rec.seq_len):
        return None
    lens = bb.emit(_op("expand_dims")(_op("astype")(lens, "int64"), -1))
    return [bb.emit(_op("less")(constant(t, "int64"), lens)) for t in range(rec.seq_len)]


Cell = Callable[[Any, Recurrence, Direction, Any, tuple[Any, ...]], tuple[Any, ...]]
"""(bb, rec, direction, x_t projected [batch, gates*H], states) -> new states; states[0] is H."""


def unroll(bb: Any, rec: Recurrence, cell: Cell, num_states: int, kernel: str | None = None) -> Any:
    """Run ``cell`` over the sequence in every direction; the ONNX outputs (Y, Y_h[, Y_c]).
    ``kernel`` (a ``RECURRENCE_ATTR`` value) emits each direction as a function a backend may
    run as one kernel, unless ``sequence_lens`` masks steps."""
    from tvm import relax

    x = rec.node.input(0)
    if rec.layout == 1:
        x = bb.emit(_op("permute_dims")(x, [1, 0, 2]))
    masks = _step_masks(bb, rec)
    ys, finals = [], [[] for _ in range(num_states)]
    for d, direction in enumerate(rec.directions):
        projected = _op("matmul")(x, _op("permute_dims")(direction.w, [1, 0]))
        if direction.wb is not None:
            projected = _op("add")(projected, direction.wb)
        projected = bb.emit(projected)
        states = tuple(rec.initial(bb, 5 + s, d) for s in range(num_states))
        if kernel is not None and masks is None:
            y, states = _as_function(bb, rec, direction, cell, kernel, projected, states)
        else:
            y, states = _steps(bb, rec, direction, cell, projected, states, masks)
        ys.append(y)
        for s in range(num_states):
            finals[s].append(states[s])
    y = bb.emit(_op("stack")(ys, axis=1))  # [T, directions, B, H]
    final = [bb.emit(_op("stack")(f, axis=0)) for f in finals]  # [directions, B, H]
    if rec.layout == 1:
        y = bb.emit(_op("permute_dims")(y, [2, 0, 1, 3]))
        final = [bb.emit(_op("permute_dims")(f, [1, 0, 2])) for f in final]
    return relax.Tuple([y, *final])


def _steps(bb: Any, rec: Recurrence, direction: Direction, cell: Cell, projected: Any,
           states: tuple[Any, ...], masks: list[Any] | None) -> tuple[Any, tuple[Any, ...]]:
    """One direction's steps: its outputs stacked [T, B, H] and its final states."""
    outputs: list[Any] = [None] * rec.seq_len
    steps = range(rec.seq_len - 1, -1, -1) if direction.reverse else range(rec.seq_len)
    for t in steps:
        new = cell(bb, rec, direction, index(bb, projected, t), states)
        if masks is None:
            states, outputs[t] = new, new[0]
        else:
            states = tuple(bb.emit(_op("where")(masks[t], n, s)) for n, s in zip(new, states))
            outputs[t] = bb.emit(_op("where")(masks[t], new[0], _op("zeros_like")(new[0])))
    return bb.emit(_op("stack")(outputs, axis=0)), states


def _as_function(bb: Any, rec: Recurrence, direction: Direction, cell: Cell, kernel: str, projected: Any,
                 states: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
    """One direction's steps as a call of a private function (``RECURRENCE_ATTR``: ``kernel``) of
    the projected inputs, R, the recurrent bias (zeros where the node has none) and the initial
    states."""
    from tvm import relax

    rb = direction.rb if direction.rb is not None else _op("zeros")((int(bb.normalize(direction.r).ty.shape[0]),),
                                                                     rec.dtype)
    args = (projected, direction.r, bb.emit(rb), *states)
    names = ("projected", "r", "rb", "h0", "c0")
    params = [relax.Var(name, bb.normalize(arg).ty) for name, arg in zip(names, args)]
    inner = replace(direction, r=params[1], rb=params[2])
    body = relax.BlockBuilder()
    with body.function(kernel, params, attrs={RECURRENCE_ATTR: kernel, REVERSE_ATTR: int(direction.reverse)},
                       private=True):
        with body.dataflow():
            y, final = _steps(body, rec, inner, cell, params[0], tuple(params[3:]), None)
            out = body.emit_output(relax.Tuple([y, *final]))
        body.emit_func_output(out)
    result = bb.emit(relax.Call(bb.add_func(body.get()[kernel], kernel), list(args)))
    parts = [bb.emit(relax.TupleGetItem(result, i)) for i in range(1 + len(states))]
    return parts[0], tuple(parts[1:])


def _linear(bb: Any, h: Any, weights: Any, bias: Any) -> Any:
    """``h·weightsᵀ (+ bias)``."""
    term = _op("matmul")(h, _op("permute_dims")(weights, [1, 0]))
    return bb.emit(term if bias is None else _op("add")(term, bias))


# --------------------------------------------------------------------------- the cells


def _rnn_cell(bb: Any, rec: Recurrence, direction: Direction, xt: Any, states: tuple[Any, ...]) -> tuple[Any, ...]:
    pre = _op("add")(xt, _linear(bb, states[0], direction.r, direction.rb))
    return (rec.activate(bb, direction.acts[0], pre),)


def _gru_cell(bb: Any, rec: Recurrence, direction: Direction, xt: Any, states: tuple[Any, ...]) -> tuple[Any, ...]:
    (h,) = states
    f, g = direction.acts
    xz, xr, xh = chunks(bb, xt, 3, axis=1)
    r_zr, r_h = _gate_split(bb, direction.r, rec.hidden)
    b_zr, b_h = (None, None) if direction.rb is None else _gate_split(bb, direction.rb, rec.hidden)
    rz, rr = chunks(bb, _linear(bb, h, r_zr, b_zr), 2, axis=1)
    z = rec.activate(bb, f, _op("add")(xz, rz))
    r = rec.activate(bb, f, _op("add")(xr, rr))
    if int(rec.node.attr("linear_before_reset", 0)):  # r ⊙ (h·Rhᵀ + Rbh)
        candidate_in = _op("add")(xh, _op("multiply")(r, _linear(bb, h, r_h, b_h)))
    else:  # (r ⊙ h)·Rhᵀ + Rbh
        candidate_in = _op("add")(xh, _linear(bb, bb.emit(_op("multiply")(r, h)), r_h, b_h))
    candidate = rec.activate(bb, g, candidate_in)
    one_minus_z = _op("subtract")(_op("ones_like")(z), z)
    return (bb.emit(_op("add")(_op("multiply")(one_minus_z, candidate), _op("multiply")(z, h))),)


def _gate_split(bb: Any, x: Any, hidden: int) -> tuple[Any, Any]:
    """GRU weights or biases split into the z and r gates' rows and the h gate's rows."""
    from tvm import relax

    parts = bb.emit(_op("split")(x, [2 * hidden], axis=0))
    return bb.emit(relax.TupleGetItem(parts, 0)), bb.emit(relax.TupleGetItem(parts, 1))


def _lstm_cell(bb: Any, rec: Recurrence, direction: Direction, xt: Any, states: tuple[Any, ...]) -> tuple[Any, ...]:
    h, c = states
    f, g, act_h = direction.acts
    xi, xo, xf, xc = chunks(bb, _op("add")(xt, _linear(bb, h, direction.r, direction.rb)), 4, axis=1)
    pi = po = pf = None
    if direction.peephole is not None:
        pi, po, pf = chunks(bb, direction.peephole, 3, axis=0)
    i = rec.activate(bb, f, xi if pi is None else _op("add")(xi, _op("multiply")(pi, c)))
    if int(rec.node.attr("input_forget", 0)):
        forget = bb.emit(_op("subtract")(_op("ones_like")(i), i))
    else:
        forget = rec.activate(bb, f, xf if pf is None else _op("add")(xf, _op("multiply")(pf, c)))
    cell_in = rec.activate(bb, g, xc)
    c_new = bb.emit(_op("add")(_op("multiply")(forget, c), _op("multiply")(i, cell_in)))
    o = rec.activate(bb, f, xo if po is None else _op("add")(xo, _op("multiply")(po, c_new)))
    h_new = bb.emit(_op("multiply")(o, rec.activate(bb, act_h, c_new)))
    return h_new, c_new


# --------------------------------------------------------------------------- the operators


_LSTM_ACTIVATIONS = ("Sigmoid", "Tanh", "Tanh")
_GRU_ACTIVATIONS = ("Sigmoid", "Tanh")


def _default_activations(rec: Recurrence, defaults: Sequence[str]) -> bool:
    """Whether ``rec`` runs the plain equations ``RECURRENCE_ATTR`` names: the default activations,
    no clip, no peepholes (with ``input_forget`` for an LSTM and ``linear_before_reset`` for a
    GRU, which the callers check)."""
    names = tuple(a.lower() for a in defaults)
    return rec.clip is None and all(d.peephole is None and tuple(a.name.lower() for a in d.acts) == names
                                    for d in rec.directions)


@register("RNN", 7)
def rnn(bb: Any, node: OnnxNode) -> Any:
    """ONNX RNN (opset 7..): Hₜ = f(Xₜ·Wᵀ + Hₜ₋₁·Rᵀ + Wb + Rb)."""
    return unroll(bb, recurrence(bb, node, 1, ("Tanh",)), _rnn_cell, 1)


@register("GRU", 7)
def gru(bb: Any, node: OnnxNode) -> Any:
    """ONNX GRU (opset 7..), gates z, r, h; ``linear_before_reset`` both ways."""
    rec = recurrence(bb, node, 3, _GRU_ACTIVATIONS)
    plain = int(node.attr("linear_before_reset", 0)) and _default_activations(rec, _GRU_ACTIVATIONS)
    return unroll(bb, rec, _gru_cell, 1, "gru" if plain else None)


@register("LSTM", 7)
def lstm(bb: Any, node: OnnxNode) -> Any:
    """ONNX LSTM (opset 7..), gates i, o, f, c; peepholes and ``input_forget`` included."""
    rec = recurrence(bb, node, 4, _LSTM_ACTIVATIONS)
    plain = not int(node.attr("input_forget", 0)) and _default_activations(rec, _LSTM_ACTIVATIONS)
    return unroll(bb, rec, _lstm_cell, 2, "lstm" if plain else None)
