"""A small ONNX graph builder for the frontends that translate a framework's graph op by op
(MXNet, DarkNet): unique names, constants as initializers, and shapes on demand from ONNX
shape inference."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from neo_local.frontends.base import Reference
from neo_local.frontends.onnx_import import onnxruntime_reference

OPSET = 17

REFERENCE_NOTE = (
    "onnxruntime running neo-local's own ONNX translation of the {framework} model "
    "({framework} itself cannot run here)"
)

_ONNX_DTYPES = {
    "float32": 1, "uint8": 2, "int8": 3, "int16": 5, "int32": 6, "int64": 7, "bool": 9,
    "float16": 10, "float64": 11, "uint32": 12, "uint64": 13,
}


class ShapeError(ValueError):
    """Shape inference failed: the input shapes do not fit the graph."""


class OnnxBuilder:
    def __init__(self, graph_name: str) -> None:
        self.graph_name = graph_name
        self.nodes: list[Any] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.inputs: list[tuple[str, tuple[int, ...], str]] = []
        self._used: set[str] = set()
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._inferred_upto = -1

    # ------------------------------------------------------------------ names and values

    def fresh(self, hint: str) -> str:
        """A tensor name not used before, ``hint`` itself when it is free."""
        name, i = hint, 1
        while name in self._used:
            name = f"{hint}_{i}"
            i += 1
        self._used.add(name)
        return name

    def reserve(self, names: Sequence[str]) -> None:
        """Keep ``names`` (the graph's output names) free of intermediate tensors."""
        self._used.update(names)

    def add_input(self, name: str, shape: Sequence[int], dtype: str = "float32") -> str:
        self._used.add(name)
        self.inputs.append((name, tuple(shape), dtype))
        self._shapes[name] = tuple(shape)
        return name

    def const(self, value: Any, hint: str, dtype: Any = None) -> str:
        """An initializer holding ``value`` (numpy array or scalar)."""
        array = np.asarray(value, dtype=dtype)
        if array.dtype == np.float64 and dtype is None:
            array = array.astype(np.float32)
        name = self.fresh(hint)
        self.initializers[name] = np.ascontiguousarray(array)
        self._shapes[name] = tuple(array.shape)
        return name

    def ints(self, values: Sequence[int], hint: str) -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), hint)

    def is_const(self, name: str) -> bool:
        return name in self.initializers

    def op(self, op_type: str, inputs: Sequence[str], hint: str, outputs: int = 1, **attrs: Any) -> Any:
        """Add a node; returns its output name (or the list of names when ``outputs`` > 1)."""
        from onnx import helper

        names = [self.fresh(hint if outputs == 1 else f"{hint}_{i}") for i in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=names[0], **attrs))
        return names[0] if outputs == 1 else names

    # ------------------------------------------------------------------ shapes

    def shape(self, name: str) -> tuple[int, ...]:
        """The static shape of ``name``, from ONNX shape inference over the graph so far."""
        if name not in self._shapes and self._inferred_upto < len(self.nodes):
            self._infer()
        if name not in self._shapes:
            raise ShapeError(f"the shape of {name} could not be inferred")
        return self._shapes[name]

    def _infer(self) -> None:
        import onnx
        from onnx import helper, numpy_helper

        # weights enter shape inference as typed inputs; only small integer constants (shapes,
        # axes, pads) keep their values, which Reshape, Slice and friends need
        small = {n: a for n, a in self.initializers.items() if a.dtype.kind in "iu" and a.size <= 64}
        graph_inputs = [self._value_info(n, s, d) for n, s, d in self.inputs]
        graph_inputs += [
            self._value_info(n, a.shape, a.dtype.name) for n, a in self.initializers.items() if n not in small
        ]
        produced = [o for node in self.nodes for o in node.output]
        graph = helper.make_graph(
            self.nodes, self.graph_name, graph_inputs,
            [helper.make_empty_tensor_value_info(o) for o in produced[-1:]],
            initializer=[numpy_helper.from_array(a, n) for n, a in small.items()],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        except Exception as exc:  # onnx's InferenceError: shapes that do not fit the weights
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            raise ShapeError(lines[0] if lines else type(exc).__name__) from None
        for info in list(inferred.graph.value_info) + list(inferred.graph.output):
            dims = info.type.tensor_type.shape.dim
            if info.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
                self._shapes[info.name] = tuple(int(d.dim_value) for d in dims)
        self._inferred_upto = len(self.nodes)

    @staticmethod
    def _value_info(name: str, shape: Sequence[int], dtype: str) -> Any:
        from onnx import helper

        return helper.make_tensor_value_info(name, _ONNX_DTYPES[dtype], list(shape))

    # ------------------------------------------------------------------ the model

    def model(self, outputs: Sequence[tuple[str, str]]) -> Any:
        """The ModelProto; ``outputs`` are (tensor, output name) pairs, renamed via Identity."""
        import onnx
        from onnx import helper, numpy_helper

        nodes = list(self.nodes)
        graph_outputs = []
        taken = {n for n, _, _ in self.inputs} | set(self.initializers) | {o for n in nodes for o in n.output}
        taken |= {n for n in (i for node in nodes for i in node.input) if n}
        for tensor, wanted in outputs:
            name, i = wanted, 1
            while name in taken:
                name = f"{wanted}_{i}"
                i += 1
            taken.add(name)
            nodes.append(helper.make_node("Identity", [tensor], [name], name=name))
            graph_outputs.append(helper.make_empty_tensor_value_info(name))
        graph = helper.make_graph(
            nodes, self.graph_name,
            [self._value_info(n, s, d) for n, s, d in self.inputs],
            graph_outputs,
            initializer=[numpy_helper.from_array(a, n) for n, a in self.initializers.items()],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="neo-local")
        model.ir_version = 8  # opset 17; onnxruntime reads up to its own maximum
        inferred = onnx.shape_inference.infer_shapes(model)
        del model.graph.output[:]
        model.graph.output.extend(inferred.graph.output)
        return model


def translation_reference(model: Any, framework: str) -> tuple[Reference, str]:
    """onnxruntime on our translation, and the label that says so, so that the verification
    record does not claim the framework itself was run."""
    return onnxruntime_reference(model.SerializeToString()), REFERENCE_NOTE.format(framework=framework)
