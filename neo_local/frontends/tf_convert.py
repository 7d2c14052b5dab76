"""What the TENSORFLOW, KERAS and TFLITE frontends share: a quiet TensorFlow import, the
TensorFlow -> ONNX conversion (tf2onnx) and its hand-over to ``onnx_import.import_onnx``.

There is no TensorFlow frontend in TVM's Relax (see notes/toolchain.md), so TensorFlow graphs
go TF -> ONNX (tf2onnx, ``from_function`` / ``from_graph_def``) -> Relax. tf2onnx leaves a
TensorFlow op it cannot convert in the graph under its own name; ``import_onnx`` then lists it
with the operators TVM lacks, so the user sees every operator that stands in the way at once.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from neo_local.api.errors import client_error, exception_line
from neo_local.frontends.base import TensorSpec
from neo_local.frontends.onnx_functions import all_nodes
from neo_local.frontends.onnx_import import import_onnx

#: the ONNX opset tf2onnx writes; TVM's Relax ONNX importer covers it
OPSET = 17

_TF_LOGGERS = ("tensorflow", "tf2onnx", "absl", "h5py")


def import_tensorflow() -> Any:
    """``tensorflow``, imported with its C++ and Python logs quiet (set before the first import)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # same numbers on every CPU, no notice
    import tensorflow as tf

    for name in _TF_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with tensorflow; never fatal
        pass
    return tf


def tf_dtype_name(dtype: Any) -> str:
    """'float32', 'int32', ... for a tf.DType, numpy dtype or string."""
    name = getattr(dtype, "name", None) or str(dtype)
    return str(np.dtype(name)) if name not in ("string", "resource", "variant") else name


def function_to_onnx(fn: Any, signature: Sequence[Any], source: str) -> Any:
    """ONNX model of a tf.function called with ``signature`` (a list of tf.TensorSpec)."""
    import tf2onnx

    _quiet_tf2onnx()
    try:
        model, _ = tf2onnx.convert.from_function(fn, input_signature=list(signature), opset=OPSET)
    except Exception as exc:  # tf2onnx raises whatever TensorFlow or its handlers raise
        raise client_error(
            "InputConfiguration", f"{source} could not be converted from TensorFlow: {exception_line(exc, last=False)}"
        ) from exc
    expand_leftovers(model)
    return fold_constants(model)


def graph_def_to_onnx(graph_def: Any, input_names: Sequence[str], output_names: Sequence[str], source: str) -> Any:
    """ONNX model of a frozen GraphDef between the given tensor names (``name:0``)."""
    import tf2onnx

    _quiet_tf2onnx()
    try:
        model, _ = tf2onnx.convert.from_graph_def(
            graph_def, input_names=list(input_names), output_names=list(output_names), opset=OPSET
        )
    except Exception as exc:
        raise client_error(
            "InputConfiguration", f"{source} could not be converted from TensorFlow: {exception_line(exc, last=False)}"
        ) from exc
    expand_leftovers(model)
    return fold_constants(model)


def _quiet_tf2onnx() -> None:
    # tf2onnx logs each op it cannot convert at ERROR level; those ops reach the user through
    # import_onnx's list of unsupported operators instead
    logging.getLogger("tf2onnx").setLevel(logging.CRITICAL)


def fold_constants(model: Any) -> Any:
    """The model after onnxruntime's basic (semantics-preserving) graph optimizations.

    tf2onnx writes shape arithmetic (Shape -> Gather -> ReduceProd -> Concat -> Reshape, e.g.
    for every Keras EinsumDense in MultiHeadAttention) that TVM's importer cannot evaluate; with
    the inputs' shapes fixed, onnxruntime folds it to constants. A graph onnxruntime cannot load
    (an operator tf2onnx left unconverted) is returned as it is: ``import_onnx`` names the
    operators then.
    """
    import tempfile

    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 4
    with tempfile.TemporaryDirectory(prefix="neo-local-fold-") as tmp:
        options.optimized_model_filepath = os.path.join(tmp, "folded.onnx")
        try:
            ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        except Exception:  # unknown operators, or shapes onnxruntime rejects: leave it to import_onnx
            return model
        folded = onnx.load(options.optimized_model_filepath)
    used = {n.domain for n in all_nodes(folded.graph)} | {""}
    kept = [o for o in folded.opset_import if o.domain in used or o.domain == "ai.onnx"]
    del folded.opset_import[:]
    folded.opset_import.extend(kept)
    return folded


def expand_leftovers(model: Any) -> None:
    """Rewrite TensorFlow ops that tf2onnx leaves unconverted but ONNX can express, in place.

    Erfc: Keras' exact GELU is ``0.5 * x * erfc(-x / sqrt(2))``, so every BERT-like Keras model
    has it; ONNX has only Erf, hence ``erfc(x) = 1 - erf(x)`` (CastLike keeps x's dtype).
    """
    from onnx import TensorProto, helper

    def graph(g: Any) -> None:
        nodes = []
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    graph(attr.g)
                for sub in attr.graphs:
                    graph(sub)
            if node.op_type == "Erfc" and node.domain in ("", "ai.onnx") and len(node.input) == 1:
                x, y, base = node.input[0], node.output[0], f"{node.name or node.output[0]}__erfc"
                nodes += [
                    helper.make_node("Erf", [x], [f"{base}_erf"], name=f"{base}_erf"),
                    helper.make_node(
                        "Constant", [], [f"{base}_one"], name=f"{base}_one",
                        value=helper.make_tensor(f"{base}_one", TensorProto.FLOAT, [], [1.0]),
                    ),
                    helper.make_node("CastLike", [f"{base}_one", x], [f"{base}_one_like"], name=f"{base}_one_like"),
                    helper.make_node("Sub", [f"{base}_one_like", f"{base}_erf"], [y], name=base),
                ]
            else:
                nodes.append(node)
        del g.node[:]
        g.node.extend(nodes)

    graph(model.graph)


def rename_values(model: Any, mapping: Mapping[str, str]) -> None:
    """Rename graph values (inputs, outputs, node inputs/outputs, subgraphs) in place."""
    if not mapping:
        return

    def graph(g: Any) -> None:
        for value in list(g.input) + list(g.output) + list(g.value_info):
            value.name = mapping.get(value.name, value.name)
        for node in g.node:
            for i, name in enumerate(node.input):
                node.input[i] = mapping.get(name, name)
            for i, name in enumerate(node.output):
                node.output[i] = mapping.get(name, name)
            for attr in node.attribute:
                if attr.HasField("g"):
                    graph(attr.g)
                for sub in attr.graphs:
                    graph(sub)

    graph(model.graph)


def onnx_to_relax(
    model: Any,
    inputs: Sequence[TensorSpec],
    output_names: Sequence[str],
    source: str,
    graph_names: Sequence[str] | None = None,
) -> tuple[Any, tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Give the ONNX graph's inputs and outputs the interface's names, then import.

    ``graph_names`` are the graph's names for ``inputs`` (by default: the graph's inputs in
    order, as tf2onnx's ``from_function`` keeps the signature's order). Returns the module, the
    input specs in the graph's order (the compiled model's order) and the output specs.
    """
    initializers = {t.name for t in model.graph.initializer}
    graph_inputs = [v.name for v in model.graph.input if v.name not in initializers]
    names = list(graph_names) if graph_names is not None else graph_inputs
    if len(names) != len(inputs) or set(names) != set(graph_inputs):
        raise client_error(
            "InputConfiguration",
            f"{source}: the converted graph takes the inputs {', '.join(graph_inputs) or 'none'}, "
            f"the model's interface {', '.join(s.name for s in inputs) or 'none'}",
        )
    spec_of = dict(zip(names, inputs))
    mapping = {g: spec_of[g].name for g in graph_inputs}
    graph_outputs = [v.name for v in model.graph.output]
    if len(output_names) == len(graph_outputs):
        mapping.update(zip(graph_outputs, output_names))
    rename_values(model, {old: new for old, new in mapping.items() if old != new})
    ordered = tuple(spec_of[g] for g in graph_inputs)
    mod, outputs = import_onnx(model, ordered, source)
    return mod, ordered, outputs


def unique_names(names: Iterable[str]) -> list[str]:
    """``names`` with repeats suffixed ``_1``, ``_2``, ... (output names must be distinct)."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        result.append(name)
    return result


def as_numpy_list(outputs: Any) -> list[np.ndarray]:
    """Flatten a TensorFlow/Keras result (tensor, list, tuple or dict) into numpy arrays."""
    if isinstance(outputs, Mapping):
        outputs = [outputs[k] for k in sorted(outputs)]
    elif not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [np.asarray(o) for o in outputs]


def describe_inputs(inputs: Iterable[tuple[str, Sequence[int | None], str]]) -> str:
    """'x [1, 224, 224, 3] float32, ...' with '?' for unknown dims."""
    return ", ".join(f"{name} {_dims(dims)} {dtype}" for name, dims, dtype in inputs)


def _dims(dims: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
