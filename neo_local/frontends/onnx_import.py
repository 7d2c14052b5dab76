"""ONNX -> Relax, shared by the ONNX frontend and the routes that go through ONNX (PyTorch)."""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext
from typing import Any

import numpy as np

from neo_local.api.errors import client_error, exception_line, unsupported_error
from neo_local.frontends.base import Reference, TensorSpec

_TENSOR_TYPES = {
    1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16",
}


def graph_inputs(model: Any) -> list[tuple[str, tuple[int | None, ...], str]]:
    """The model's real inputs (not initializers): name, shape (None for dynamic dims), dtype."""
    initializers = {t.name for t in model.graph.initializer}
    result = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim)
        result.append((value.name, dims, _TENSOR_TYPES.get(tensor.elem_type, f"onnx-type-{tensor.elem_type}")))
    return result


def unsupported_operators(model: Any, converters: bool = True) -> Counter:
    """Operator types (with node counts) the importer has no converter for: TVM's Relax ONNX
    importer, plus neo-local's own converters unless ``converters`` is off."""
    from neo_local.frontends.onnx_converters import importer_converts
    from neo_local.frontends.onnx_converters.tvm_hook import tvm_converts
    from neo_local.frontends.onnx_functions import all_nodes, default_opset

    opset = default_opset(model)
    missing: Counter = Counter()
    for node in all_nodes(model.graph):
        known = importer_converts(node.domain, node.op_type, opset) if converters else tvm_converts(node.domain, node.op_type)
        if not known:
            missing[node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"] += 1
    return missing


def import_onnx(
    model: Any, inputs: tuple[TensorSpec, ...], source: str, prepass: bool = True, converters: bool = True
) -> tuple[Any, tuple[TensorSpec, ...]]:
    """Relax IRModule and output specs for ``model`` with the given input shapes.

    ``prepass`` (default on): rewrite the graph first (``onnx_prepass``: function operators the
    importer lacks inlined, Constant nodes and constant subgraphs become initializers, n-ary Sum
    becomes Adds); the operator check and TVM's importer then see the rewritten graph.
    ``converters`` (default on): neo-local's own converters (``onnx_converters``) join TVM's.
    Either is off only to measure what it changes."""
    if prepass:
        from neo_local.frontends.onnx_prepass import prepass as run_prepass

        try:
            model = run_prepass(model, {s.name: s.shape for s in inputs})
        except Exception as exc:  # noqa: BLE001 (a pre-pass bug must not hide the importer's answer)
            import logging

            logging.getLogger(__name__).warning("ONNX pre-pass skipped: %s", exception_line(exc))
    missing = unsupported_operators(model, converters)
    if missing:
        raise unsupported_error(source, "operators", missing, "node")
    from tvm.relax.frontend.onnx import from_onnx

    from neo_local.frontends.onnx_converters.tvm_hook import our_converters

    try:
        with our_converters() if converters else nullcontext():
            mod = from_onnx(
                model,
                shape_dict={s.name: list(s.shape) for s in inputs},
                dtype_dict={s.name: s.dtype for s in inputs},
                sanitize_input_names=False,
            )
    except Exception as exc:  # the importer raises many kinds; the user needs the message
        raise client_error("InputConfiguration", f"{source} could not be imported: {exception_line(exc)}") from exc
    names = [o.name for o in model.graph.output]
    return mod, output_specs(mod, names)


def output_specs(mod: Any, names: list[str]) -> tuple[TensorSpec, ...]:
    """Output specs of a Relax module's main function, named by ``names`` (else output<i>)."""
    ret = mod["main"].ret_ty  # TVM 0.27 calls struct info "ty": TensorType or a tuple type
    fields = list(ret.fields) if hasattr(ret, "fields") else [ret]
    specs = []
    for i, info in enumerate(fields):
        shape = tuple(int(d) for d in info.shape.values) if info.shape is not None else ()
        specs.append(TensorSpec(names[i] if i < len(names) else f"output{i}", shape, str(info.dtype)))
    return tuple(specs)


def onnxruntime_reference(model_bytes: bytes) -> Reference:
    """Run the ONNX model with onnxruntime: the yardstick for the compiled artifact."""

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        return list(session.run(None, dict(feeds)))

    return run
