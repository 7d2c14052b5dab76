"""ONNX Scan and Loop, unrolled at import time.

Relax graphs are static: a Scan over a sequence whose length the input shapes fix, or a Loop
whose trip count and condition are constants, becomes its body imported once per iteration with
the state threaded through (as ``recurrent.py`` does for RNNs). A Loop that would need a value
computed at run time to know how often it runs is refused with that reason.

Bodies read only their own inputs and initializers here: the pre-pass
(``onnx_prepass._thread_outer_values``) turns values a body reads from the enclosing graph into
extra state inputs, because a converter sees only its node's inputs, not the enclosing scope.
"""

from __future__ import annotations

from typing import Any, Sequence

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant, constant_value, index, static_shape

#: a Loop unrolled further than this is refused (the graph would grow without bound)
MAX_LOOP_ITERATIONS = 1024


def import_body(bb: Any, body: Any, opset: int, values: Sequence[Any], what: str) -> list[Any]:
    """The outputs of the GraphProto ``body`` with its inputs bound to ``values``, its nodes
    emitted into ``bb`` by TVM's own importer (so every converter, ours included, applies)."""
    from tvm.relax.frontend.onnx.onnx_frontend import ONNXGraphImporter

    importer = ONNXGraphImporter({}, {})
    importer.bb, importer.opset = bb, opset
    importer._nodes.update({value.name: expr for value, expr in zip(body.input, values)})
    importer._parse_graph_initializers(body)
    try:
        importer._construct_nodes(body)
    except KeyError as exc:
        raise ValueError(f"{what}: the body reads {exc} from the enclosing graph") from None
    return [importer._nodes[output.name] for output in body.output]


def _result(outputs: list[Any]) -> Any:
    """One output as itself, several as a tuple (TVM's importer binds a tuple to one name as is)."""
    from tvm import relax

    return outputs[0] if len(outputs) == 1 else relax.Tuple(outputs)


def _stacked(bb: Any, items: list[Any], axis: int, what: str) -> Any:
    from tvm import relax

    if not items:
        raise ValueError(f"{what}: a scan output of zero iterations has no shape to build")
    rank = len(static_shape(bb, items[0], what)) + 1
    return bb.emit(relax.op.stack(items, axis=axis % rank))


def _unroll_scan(bb: Any, node: OnnxNode, states: list[Any], sequences: Sequence[Any], axes: Sequence[int],
                 reverse: Sequence[int]) -> tuple[list[Any], list[list[Any]]]:
    """The body run once per element of the sequences (along ``axes``, backwards where
    ``reverse``): the final states and each scan output's per-iteration values."""
    body = node.attr("body")
    length = static_shape(bb, sequences[0], "Scan input")[axes[0]]
    collected: list[list[Any]] = [[] for _ in range(len(body.output) - len(states))]
    for t in range(length):
        elements = [index(bb, x, length - 1 - t if rev else t, axis) for x, axis, rev in zip(sequences, axes, reverse)]
        outputs = import_body(bb, body, node.opset, states + elements, "Scan")
        states = outputs[: len(states)]
        for items, value in zip(collected, outputs[len(states):]):
            items.append(value)
    return states, collected


@register("Scan", 9)
def scan(bb: Any, node: OnnxNode) -> Any:
    """ONNX Scan (opset 9..): the body runs once per element along each scan input's axis
    (forwards or backwards); scan outputs are stacked along their axes, states threaded."""
    scans = int(node.attr("num_scan_inputs"))
    states = list(node.inputs[: len(node.inputs) - scans])
    sequences = node.inputs[len(states):]
    ranks = [len(static_shape(bb, x, "Scan input")) for x in sequences]
    axes = [axis % rank for axis, rank in zip(node.attr("scan_input_axes", (0,) * scans), ranks)]
    reverse = node.attr("scan_input_directions", (0,) * scans)
    states, collected = _unroll_scan(bb, node, states, sequences, axes, reverse)
    out_axes = node.attr("scan_output_axes", (0,) * len(collected))
    out_reverse = node.attr("scan_output_directions", (0,) * len(collected))
    stacked = [_stacked(bb, items[::-1] if rev else items, axis, "Scan output")
               for items, axis, rev in zip(collected, out_axes, out_reverse)]
    return _result(states + stacked)


@register("Scan", 8, 8)
def scan_batched(bb: Any, node: OnnxNode) -> Any:
    """ONNX Scan-8: a batch axis first on states and sequences, the sequence axis second; each
    batch entry is scanned on its own (``sequence_lens`` only when every entry is full length)."""
    scans = int(node.attr("num_scan_inputs"))
    states, sequences = list(node.inputs[1: len(node.inputs) - scans]), node.inputs[len(node.inputs) - scans:]
    batch, length = static_shape(bb, sequences[0], "Scan input")[:2]
    lens = node.input(0)
    if lens is not None and (constant_value(lens) is None or (constant_value(lens) != length).any()):
        raise ValueError("Scan-8 with sequence_lens shorter than the sequences is not supported")
    finals, outputs = [], []
    for b in range(batch):
        entry_states, collected = _unroll_scan(bb, node, [index(bb, s, b) for s in states],
                                               [index(bb, x, b) for x in sequences], [0] * scans,
                                               node.attr("directions", (0,) * scans))
        finals.append(entry_states)
        outputs.append([_stacked(bb, items, 0, "Scan output") for items in collected])
    per_entry = [list(values) for values in zip(*finals)] + [list(values) for values in zip(*outputs)]
    return _result([_stacked(bb, values, 0, "Scan output") for values in per_entry])


def _known(expr: Any, what: str) -> Any:
    value = constant_value(expr)
    if value is None:
        raise ValueError(f"Loop with {what} computed at run time is not supported (unrolled at compile time)")
    return value.reshape(-1)[0]


@register("Loop", 1)
def loop(bb: Any, node: OnnxNode) -> Any:
    """ONNX Loop with a constant trip count and/or a condition that stays constant: unrolled;
    scan outputs are the per-iteration values stacked along a new first axis."""
    body = node.attr("body")
    trips = None if node.input(0) is None else int(_known(node.input(0), "a trip count"))
    running = True if node.input(1) is None else bool(_known(node.input(1), "a condition"))
    carried = list(node.inputs[2:])
    collected: list[list[Any]] = [[] for _ in range(len(body.output) - 1 - len(carried))]
    iteration = 0
    while running and (trips is None or iteration < trips):
        if iteration == MAX_LOOP_ITERATIONS:
            raise ValueError(f"Loop with more than {MAX_LOOP_ITERATIONS} iterations is not supported (unrolled)")
        bound = [constant(iteration, "int64"), constant(running, "bool"), *carried]
        outputs = import_body(bb, body, node.opset, bound, "Loop")
        running = bool(_known(outputs[0], "a condition"))
        carried = outputs[1: 1 + len(carried)]
        for items, value in zip(collected, outputs[1 + len(carried):]):
            items.append(value)
        iteration += 1
    return _result(carried + [_stacked(bb, items, 0, "Loop scan output") for items in collected])
