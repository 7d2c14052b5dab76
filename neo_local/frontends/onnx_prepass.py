"""ONNX graph pre-pass run before TVM's Relax importer.

TVM's converters read many operands as compile-time constants (axes, shape, pads, sizes/scales,
split, k, starts/ends, ...) and fail with "Only constant ..." when a model computes them from
constants inside the graph, or writes them as ``Constant`` nodes in a form the importer does not
read. The pre-pass rewrites the graph without changing its inputs, outputs or numerics:

* function operators the importer has no converter for (Swish, Celu, the opset-23 Attention,
  ...) are replaced by their ONNX function bodies (``onnx_functions``), before the steps below
  so that the bodies' constants fold too.
* ``Constant`` nodes (any of value / value_float(s) / value_int(s) / value_string(s)) become
  initializers; a Constant that is itself a graph output stays a node, normalised to ``value=``.
  Constants inside subgraphs (If/Loop bodies) are normalised to ``value=`` in place.
* constant folding: a top-level node whose inputs are all constants (initializers that are not
  graph inputs, or earlier folded values) is evaluated with ``onnx.reference`` and replaced by
  initializers. ``Shape``/``Size`` of a tensor whose shape is fully static (after onnx shape
  inference with the input shapes the compiled artifact is fixed to) fold as well: they read the
  shape, never the values; shape inference runs again after a fold that leaves such a read, as
  folded operands (a Pad's pads, a Reshape's shape) make more shapes static. Nothing that reads
  a graph input's *values* is folded; random, training-mode, sequence/optional and
  subgraph-carrying nodes are never folded.
* values a Scan or Loop body reads from the enclosing graph become extra state inputs of the
  node (passed through the body unchanged): the converters that unroll these bodies
  (``onnx_converters/control_flow.py``) see only their node's inputs.
* an If whose condition is constant after folding is replaced by the branch it takes.
* ``Sum`` with more than two inputs becomes a chain of ``Add`` (TVM's Sum converter mishandles it).
* onnx shape inference runs first (the inferred value_info is kept); when it fails the pre-pass
  goes on without it.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Mapping, Sequence

import numpy as np

from neo_local.frontends.onnx_functions import Converts, default_opset, inline_function_ops

log = logging.getLogger(__name__)

#: never evaluated at compile time: results vary per run, or depend on mode/state
_NO_FOLD = {
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
    "Bernoulli", "Dropout", "If", "Loop", "Scan", "SequenceConstruct", "SequenceEmpty",
    "SequenceInsert", "SequenceErase", "SequenceAt", "SequenceLength", "SplitToSequence",
    "ConcatFromSequence", "SequenceMap", "Optional", "OptionalGetElement", "OptionalHasElement",
    "Constant",
}
#: folded results larger than this stay computed at run time (keeps the model small)
MAX_FOLDED_ELEMENTS = 1 << 20
#: shape inference and folding alternate at most this often
MAX_FOLD_ROUNDS = 4


def prepass(
    model: Any, input_shapes: Mapping[str, Sequence[int]] | None = None, converts: Converts | None = None
) -> Any:
    """A rewritten copy of ``model`` (the argument is not modified).

    ``input_shapes``: the static shapes the graph inputs are compiled for (optional); they let
    ``Shape``/``Size`` of static tensors fold. ``converts``: which nodes the importer converts
    (default: TVM's converters and neo-local's, ``onnx_converters.importer_converts``); function
    operators it does not convert are inlined.
    """
    import onnx

    if converts is None:
        from neo_local.frontends.onnx_converters import importer_converts as converts
    out = onnx.ModelProto()
    out.CopyFrom(inline_function_ops(model, converts))
    _normalise_constants_in_subgraphs(out.graph)
    _sum_to_add_chain(out.graph)
    static = _static_shapes(out, input_shapes)
    _thread_outer_values(out.graph, default_opset(out))
    for _ in range(MAX_FOLD_ROUNDS):
        if not _fold(out, static) or not _unread_shapes(out.graph, static):
            break
        # folded operands (e.g. a Pad's pads) can make more shapes static: infer them again
        static = _static_shapes(out, input_shapes)
    return out


# --------------------------------------------------------------------------- Constant nodes


def _constant_tensor(node: Any) -> Any | None:
    """The TensorProto a Constant node produces, or None (sparse_value: left to the importer)."""
    from onnx import helper, numpy_helper

    for attr in node.attribute:
        name = attr.name
        if name == "value":
            tensor = type(attr.t)()
            tensor.CopyFrom(attr.t)
        elif name == "value_float":
            tensor = numpy_helper.from_array(np.array(attr.f, dtype=np.float32))
        elif name == "value_floats":
            tensor = numpy_helper.from_array(np.array(list(attr.floats), dtype=np.float32))
        elif name == "value_int":
            tensor = numpy_helper.from_array(np.array(attr.i, dtype=np.int64))
        elif name == "value_ints":
            tensor = numpy_helper.from_array(np.array(list(attr.ints), dtype=np.int64))
        elif name == "value_string":
            tensor = helper.make_tensor("", 8, [], [attr.s])
        elif name == "value_strings":
            tensor = helper.make_tensor("", 8, [len(attr.strings)], list(attr.strings))
        else:
            continue
        tensor.name = node.output[0]
        return tensor
    return None


def _as_value_constant(node: Any, tensor: Any) -> Any:
    from onnx import helper

    return helper.make_node("Constant", [], [node.output[0]], name=node.name, value=tensor)


def _normalise_constants_in_subgraphs(graph: Any) -> None:
    """Constant nodes inside subgraphs: rewritten to the ``value=`` form the importer reads."""
    for node in graph.node:
        for attr in node.attribute:
            subgraphs = ([attr.g] if attr.HasField("g") else []) + list(attr.graphs)
            for sub in subgraphs:
                for i, inner in enumerate(sub.node):
                    if inner.op_type == "Constant" and inner.domain in ("", "ai.onnx"):
                        tensor = _constant_tensor(inner)
                        if tensor is not None:
                            sub.node[i].CopyFrom(_as_value_constant(inner, tensor))
                _normalise_constants_in_subgraphs(sub)


# --------------------------------------------------------------------------- Sum


def _sum_to_add_chain(graph: Any) -> None:
    from onnx import helper

    nodes = []
    changed = False
    for node in graph.node:
        inputs = list(node.input)
        if node.op_type == "Sum" and node.domain in ("", "ai.onnx") and len(inputs) > 2:
            changed = True
            acc = inputs[0]
            for i, operand in enumerate(inputs[1:], start=1):
                last = i == len(inputs) - 1
                result = node.output[0] if last else f"{node.output[0]}__sum_partial{i}"
                nodes.append(helper.make_node("Add", [acc, operand], [result], name=f"{node.name}__add{i}"))
                acc = result
        else:
            nodes.append(node)
    if changed:
        del graph.node[:]
        graph.node.extend(nodes)


# --------------------------------------------------------------------------- Scan/Loop bodies


def _body(node: Any) -> Any | None:
    """The body of a default-domain Scan or Loop node, else None."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in ("Scan", "Loop"):
        return None
    return next((a.g for a in node.attribute if a.name == "body"), None)


def _outer_reads(body: Any) -> list[str]:
    """Names ``body`` (its nested subgraphs included) reads but does not define."""
    from neo_local.frontends.onnx_functions import all_nodes

    nodes = list(all_nodes(body))
    defined = {v.name for v in body.input} | {t.name for t in body.initializer}
    defined |= {o for n in nodes for o in n.output}
    subgraphs = [g for n in nodes for a in n.attribute for g in [a.g, *a.graphs]]
    defined |= {v.name for g in subgraphs for v in [*g.input, *g.initializer]}
    return sorted({i for n in nodes for i in n.input if i and i not in defined})


def _thread_outer_values(graph: Any, opset: int) -> None:
    """Each outer value a Scan/Loop body reads becomes a state the node carries: a new node input,
    a body input the body reads instead, and an Identity passing it to the matching body output."""
    from onnx import TypeProto, helper

    from neo_local.frontends.onnx_functions import all_nodes

    for node in graph.node:
        body = _body(node)
        if body is None or (node.op_type == "Scan" and opset < 9):  # Scan-8 (batched) is not converted
            continue
        for outer in _outer_reads(body):
            inner = f"{outer}__in_{node.output[0]}"
            for inner_node in all_nodes(body):
                inner_node.input[:] = [inner if i == outer else i for i in inner_node.input]
            node_in, body_in, body_out, node_out = _state_positions(node)
            node.input.insert(node_in, outer)
            _insert(body.input, body_in, helper.make_value_info(inner, TypeProto()))
            body.node.append(helper.make_node("Identity", [inner], [f"{inner}__out"]))
            _insert(body.output, body_out, helper.make_value_info(f"{inner}__out", TypeProto()))
            node.output.insert(node_out, f"{inner}__final")
        _thread_outer_values(body, opset)


def _state_positions(node: Any) -> tuple[int, int, int, int]:
    """Where a new state goes: node input, body input, body output, node output index. Scan:
    states come first everywhere; Loop: after (M, cond) / (iteration, cond) / cond."""
    if node.op_type == "Scan":
        states = len(node.input) - next(a.i for a in node.attribute if a.name == "num_scan_inputs")
        return states, states, states, states
    carried = len(node.input) - 2
    return carried + 2, carried + 2, carried + 1, carried


def _insert(values: Any, position: int, value: Any) -> None:
    """Insert into a repeated message field (protobuf has no insert for those)."""
    items = list(values)
    items.insert(position, value)
    del values[:]
    values.extend(items)


# --------------------------------------------------------------------------- shapes


def _static_shapes(model: Any, input_shapes: Mapping[str, Sequence[int]] | None) -> dict[str, tuple[int, ...]]:
    """Fully static shapes of tensors, from onnx shape inference (kept in model.graph.value_info)."""
    import onnx

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for value in probe.graph.input:  # specialise dims to the compiled shapes (in the probe only)
        shape = (input_shapes or {}).get(value.name)
        if shape is None or not value.type.HasField("tensor_type"):
            continue
        dims = value.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            continue
        for dim, size in zip(dims, shape):
            dim.Clear()
            dim.dim_value = int(size)
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, strict_mode=False, data_prop=True)
    except Exception as exc:  # noqa: BLE001 (inference is best effort)
        log.debug("onnx shape inference failed: %s", exc)
        return _declared_shapes(probe.graph)
    if input_shapes is None:  # the inferred value_info is valid for the model as given
        del model.graph.value_info[:]
        model.graph.value_info.extend(inferred.graph.value_info)
    return _declared_shapes(inferred.graph)


def _declared_shapes(graph: Any) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
            continue
        dims = value.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(int(d.dim_value) for d in dims)
    return shapes


# --------------------------------------------------------------------------- folding


def _unread_shapes(graph: Any, static: Mapping[str, tuple[int, ...]]) -> bool:
    """Whether a Shape/Size node still reads a tensor whose shape is not known to be static."""
    return any(n.op_type in ("Shape", "Size") and n.input and n.input[0] not in static for n in graph.node)


def _fold(model: Any, static: Mapping[str, tuple[int, ...]]) -> bool:
    """Fold what can be folded; whether anything was."""
    from onnx import helper

    graph = model.graph
    graph_inputs = {v.name for v in graph.input}
    graph_outputs = {v.name for v in graph.output}
    known: dict[str, Any] = {
        t.name: t for t in graph.initializer if t.name not in graph_inputs  # overridable: not constant
    }
    opsets = {o.domain or "": o.version for o in model.opset_import}
    new_nodes = []
    new_initializers = []
    changed = False
    pending = deque(graph.node)
    while pending:
        node = pending.popleft()
        branch = _constant_if_branch(node, known)
        if branch is not None:  # its nodes are folded in turn (nested Ifs included)
            pending.extendleft(reversed(branch))
            changed = True
            continue
        tensors = _fold_node(node, known, static, opsets)
        if tensors is None:
            new_nodes.append(node)
            continue
        changed = True
        for tensor in tensors:
            known[tensor.name] = tensor
            if tensor.name in graph_outputs:  # an output stays a node (importers look outputs up there)
                new_nodes.append(helper.make_node("Constant", [], [tensor.name], value=tensor))
            else:
                new_initializers.append(tensor)
    if not changed:
        return False
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_initializers)
    # value_info for names that are now initializers is harmless; drop it to keep the graph tidy
    folded = {t.name for t in new_initializers}
    keep = [v for v in graph.value_info if v.name not in folded]
    del graph.value_info[:]
    graph.value_info.extend(keep)
    return True


def _constant_if_branch(node: Any, known: Mapping[str, Any]) -> list | None:
    """The nodes that replace an If whose condition is a known constant: the chosen branch's
    initializers (as Constant nodes), its nodes, and Identity nodes naming its outputs as the If's."""
    from onnx import helper, numpy_helper

    if node.op_type != "If" or node.domain not in ("", "ai.onnx") or node.input[0] not in known:
        return None
    chosen = "then_branch" if numpy_helper.to_array(known[node.input[0]]).reshape(-1)[0] else "else_branch"
    branch = next(a.g for a in node.attribute if a.name == chosen)
    constants = [helper.make_node("Constant", [], [t.name], value=t) for t in branch.initializer]
    outputs = [helper.make_node("Identity", [b.name], [o]) for b, o in zip(branch.output, node.output) if o]
    return [*constants, *branch.node, *outputs]


def _fold_node(node: Any, known: Mapping[str, Any], static: Mapping[str, tuple[int, ...]], opsets) -> list | None:
    from onnx import numpy_helper

    if node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type == "Constant":
        tensor = _constant_tensor(node)
        return None if tensor is None or tensor.data_type == 8 else [tensor]  # strings stay nodes
    if node.op_type in ("Shape", "Size") and node.input and node.input[0] in static:
        shape = np.array(static[node.input[0]], dtype=np.int64)
        if node.op_type == "Size":
            value = np.array(int(np.prod(shape)), dtype=np.int64)
        else:
            attrs = {a.name: a.i for a in node.attribute}
            rank = len(shape)
            start, end = attrs.get("start", 0), attrs.get("end", rank)
            value = shape[slice(*_clamp_slice(start, end, rank))]
        return [numpy_helper.from_array(value, node.output[0])]
    if node.op_type in _NO_FOLD or any(a.HasField("g") or len(a.graphs) for a in node.attribute):
        return None
    present = [name for name in node.input if name]
    if not present or not all(name in known for name in present):
        return None
    return _evaluate(node, known, opsets)


def _clamp_slice(start: int, end: int, rank: int) -> tuple[int, int]:
    start = start + rank if start < 0 else start
    end = end + rank if end < 0 else end
    return max(0, min(start, rank)), max(0, min(end, rank))


def _evaluate(node: Any, known: Mapping[str, Any], opsets) -> list | None:
    """Run one node on constant inputs with onnx.reference; None when it cannot or should not."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    inputs = [name for name in node.input if name]
    feeds = {name: numpy_helper.to_array(known[name]) for name in inputs}
    if any(v.dtype == object for v in feeds.values()):
        return None
    graph = helper.make_graph(
        [node],
        "fold",
        [helper.make_tensor_value_info(n, known[n].data_type, list(known[n].dims)) for n in dict.fromkeys(inputs)],
        [helper.make_value_info(o, helper.TypeProto()) for o in node.output if o],
    )
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    try:
        results = ReferenceEvaluator(probe).run(None, feeds)
    except Exception as exc:  # noqa: BLE001 (anything the evaluator cannot do stays a node)
        log.debug("not folding %s (%s): %s", node.name or node.op_type, node.op_type, exc)
        return None
    tensors = []
    for name, value in zip([o for o in node.output if o], results):
        if not isinstance(value, np.ndarray) or value.dtype == object or value.size > MAX_FOLDED_ELEMENTS:
            return None
        tensors.append(numpy_helper.from_array(value, name))
    return tensors
