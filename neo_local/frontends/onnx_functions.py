"""Inline ONNX function operators the importer cannot convert (a step of the pre-pass).

ONNX defines many operators as functions of primitive operators (Swish, Celu, SwiGLU, the
opset-23 Attention, RotaryEmbedding, SoftmaxCrossEntropyLoss, NegativeLogLikelihoodLoss,
CenterCropPad, ...); the schema carries the body, for some built per node from its attributes
and input types ("context-dependent"). onnx's own C++ inliner expands them
(``onnx.inliner.inline_selected_functions(..., inline_schema_functions=True)``), renaming the
body's values and substituting attribute references; bodies that call other function operators
are expanded in the next round. Model-local functions (``ModelProto.functions``, which TVM's
importer ignores) are inlined as well.

Only operators the importer lacks are expanded: a converter, where one exists, imports the
operator as one op (e.g. LayerNormalization), which compiles better than its body.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)

#: (domain, op_type, default-domain opset) -> whether the importer converts that node
Converts = Callable[[str, str, int], bool]

#: bodies may call function operators themselves (SwiGLU -> Swish); a bound against cycles
MAX_ROUNDS = 8


def inline_function_ops(model: Any, converts: Converts) -> Any:
    """``model`` with function operators the importer lacks replaced by their bodies (a new
    ModelProto; the argument is not modified). Operators whose body onnx cannot build for a node
    stay as they are, so the importer's error names them."""
    import onnx.inliner

    if len(model.functions):
        model = onnx.inliner.inline_local_functions(model)
    opset = default_opset(model)
    failed: set[tuple[str, str]] = set()
    for _ in range(MAX_ROUNDS):
        wanted = sorted({(n.domain, n.op_type) for n in all_nodes(model.graph) if _expandable(n, opset, converts)} - failed)
        if not wanted:
            break
        for function_id in wanted:
            try:
                model = _inline(model, function_id, opset)
            except Exception as exc:  # noqa: BLE001 (onnx cannot build the body: the importer reports the op)
                log.debug("not inlining %s: %s", function_id[1], exc)
                failed.add(function_id)
    return model


def _inline(model: Any, function_id: tuple[str, str], opset: int) -> Any:
    """One operator's nodes replaced by their schema function bodies."""
    import onnx
    import onnx.inliner

    typed = onnx.ModelProto()
    typed.CopyFrom(model)
    _add_default_attributes(typed.graph, function_id, opset)
    # context-dependent bodies are built from the input types: give the inliner every value's type
    declared = {v.name for v in [*typed.graph.input, *typed.graph.value_info]}
    typed.graph.value_info.extend(
        onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
        for t in typed.graph.initializer if t.name not in declared
    )
    # onnx 1.23's inliner asks for the type of an absent optional input ("") while building a
    # context-dependent body (Attention with nonpad_kv_seqlen but no past_key): give it one; the
    # body builders only use types of inputs that are present (upstream-worthy in onnx)
    typed.graph.value_info.append(onnx.helper.make_tensor_value_info("", onnx.TensorProto.FLOAT, None))
    try:
        typed = onnx.shape_inference.infer_shapes(typed, strict_mode=False)
    except Exception as exc:  # noqa: BLE001 (static bodies need no types; context-dependent ones fail below)
        log.debug("shape inference before inlining %s failed: %s", function_id[1], exc)
    expanded = onnx.inliner.inline_selected_functions(typed, [function_id], inline_schema_functions=True)
    del expanded.graph.value_info[:]  # only the types the model itself declared stay
    expanded.graph.value_info.extend(model.graph.value_info)
    return expanded


def _add_default_attributes(graph: Any, function_id: tuple[str, str], opset: int) -> None:
    """Nodes of the operator get the schema's defaults for attributes they leave out: bodies
    refer to attributes (``ref_attr_name``), and the inliner drops a reference it cannot fill."""
    import onnx.defs

    schema = onnx.defs.get_schema(function_id[1], opset, function_id[0])
    for node in all_nodes(graph):
        if (node.domain, node.op_type) != function_id:
            continue
        present = {a.name for a in node.attribute}
        node.attribute.extend(
            a.default_value for name, a in schema.attributes.items()
            if name not in present and a.default_value.name
        )


def _expandable(node: Any, opset: int, converts: Converts) -> bool:
    import onnx.defs

    if node.domain not in ("", "ai.onnx") or converts(node.domain, node.op_type, opset):
        return False
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
    except onnx.defs.SchemaError:
        return False
    versions = [*schema.function_opset_versions, *schema.context_dependent_function_opset_versions]
    return any(v <= opset for v in versions)


def default_opset(model: Any) -> int:
    """The model's default-domain (ai.onnx) opset version."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def all_nodes(graph: Any) -> Iterable[Any]:
    """The graph's nodes and those of its subgraphs (If/Loop/Scan bodies), depth first."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from all_nodes(attr.g)
            for sub in attr.graphs:
                yield from all_nodes(sub)
