"""TFLITE: one .tflite file, float32 or quantized (int8/uint8, per-tensor or per-channel).

Route: the ``tflite`` package parses the flatbuffer and TVM's Relax TFLite frontend
(``tvm.relax.frontend.tflite.from_tflite``) imports it. That importer handles quantized models
itself: each quantized operator becomes dequantize -> float operator -> quantize in Relax, so
no detour through ONNX (tf2onnx ``from_tflite``) is needed. Each quantized operator agrees with
the TFLite interpreter's integer kernels to within one quantization step (the rounding of the
requantization differs now and then), and such differences add up layer after layer: a small
CNN stays within one step, a 16-layer conv stack within 7, an int8 MobileNetV2 within ~20
(about what int8 TFLite itself differs from the float model by). So verification of a
quantized model allows one output step per two quantized operators (at least 2); see
``quantized_tolerance``.

DataInputConfig names the model's input tensors (e.g. ``serving_default_input_1:0``) and may
be left out: TFLite models store a concrete shape for every input (batch 1 where the signature
leaves it open); the shapes used are then reported as DerivedDataInputConfig. The reference is
the TFLite interpreter of the TensorFlow package, on the same inputs.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from neo_local.api.errors import client_error, exception_line
from neo_local.frontends import register
from neo_local.frontends.archive_rules import find_model_file
from neo_local.frontends.base import (
    Frontend, ImportedModel, ImportOptions, Reference, TensorSpec, quantized_tolerance_for,
)
from neo_local.frontends.data_input import parse_data_input_config
from neo_local.frontends.onnx import resolve_inputs
from neo_local.frontends.onnx_import import output_specs
from neo_local.frontends.tf_convert import import_tensorflow

_TYPES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
    9: "int8", 10: "float64", 12: "uint64", 15: "uint32", 16: "uint16",
}

_INTEGER_TYPES = (3, 7, 9)  # uint8, int16, int8


@register
class TFLiteFrontend(Frontend):
    framework = "TFLITE"
    suffixes = (".tflite",)
    requires = ("tflite", "tensorflow-cpu")
    framework_versions = ("1.15",)  # Neo's FrameworkVersion for TensorFlow Lite

    def load(self, model_dir: Path, options: ImportOptions) -> ImportedModel:
        import tflite

        path = find_model_file(model_dir, self.suffixes, self.framework)
        buffer = path.read_bytes()
        if not tflite.Model.ModelBufferHasIdentifier(buffer, 0):
            raise client_error(
                "InputConfiguration", f"{path.name} is not a TensorFlow Lite model (no TFL3 flatbuffer identifier)"
            )
        try:
            model = tflite.Model.GetRootAsModel(buffer, 0)
            subgraph = model.Subgraphs(0)
            model_inputs = _tensors(subgraph, subgraph.InputsAsNumpy(), options.data_input_config)
            output_names = [name for name, _, _ in _tensors(subgraph, subgraph.OutputsAsNumpy(), None)]
        except Exception as exc:  # a truncated or inconsistent flatbuffer fails in many places
            raise client_error(
                "InputConfiguration", f"{path.name} is not a readable TensorFlow Lite model: {exception_line(exc)}"
            ) from exc
        inputs, derived = resolve_inputs(model_inputs, options.data_input_config)
        mod = _import(model, subgraph, inputs, path.name)
        return ImportedModel(
            ir=mod,
            inputs=inputs,
            outputs=output_specs(mod, output_names),
            reference=_interpreter_reference(buffer, inputs),
            derived={"DerivedDataInputConfig": derived} if derived else {},
            source_file=path.name,
            tolerance=quantized_tolerance(model, subgraph),
        )


def _tensors(subgraph: Any, indices: Any, data_input_config: str | None) -> list[tuple[str, tuple, str]]:
    """(name, dims, dtype) per tensor. Dims open in the shape signature (-1) are None for the
    inputs DataInputConfig names; the others take the stored concrete shape."""
    given = parse_data_input_config(data_input_config)
    named = {n for n, _ in given} if given else set()
    all_given = bool(given) and all(n is None for n, _ in given)
    result = []
    for index in indices:
        tensor = subgraph.Tensors(int(index))
        name = tensor.Name().decode()
        shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        signature = tuple(int(d) for d in tensor.ShapeSignatureAsNumpy()) if tensor.ShapeSignatureLength() else shape
        if (all_given or name in named) and len(signature) == len(shape):
            dims = tuple(None if s < 0 else s for s in signature)
        else:
            dims = shape
        result.append((name, dims, _TYPES.get(tensor.Type(), f"tflite-type-{tensor.Type()}")))
    return result


def quantized_tolerance(model: Any, subgraph: Any) -> float | None:
    """For a quantized model, the absolute output error verification allows: one output step
    per two quantized operators, at least 2 steps (see the module doc). None for float models.

    An output step is 1 for an integer output and the scale of the tensor a float output was
    dequantized from (the largest activation scale when it cannot be traced)."""
    quantized_ops = 0
    producer = {}
    for i in range(subgraph.OperatorsLength()):
        op = subgraph.Operators(i)
        outs = [int(t) for t in op.OutputsAsNumpy()] if op.OutputsLength() else []
        for t in outs:
            producer[t] = op
        if any(_scale(subgraph, t) is not None for t in outs):
            quantized_ops += 1
    if not quantized_ops:
        return None
    largest = max((_scale(subgraph, t) or 0.0 for t in producer), default=0.0)
    steps = []
    for index in (int(t) for t in subgraph.OutputsAsNumpy()):
        if subgraph.Tensors(index).Type() in _INTEGER_TYPES:
            steps.append(1.0)
            continue
        op = producer.get(index)
        source = int(op.Inputs(0)) if op is not None and op.InputsLength() else -1
        step = _scale(subgraph, source) if source >= 0 and _opcode(model, op) == "DEQUANTIZE" else None
        steps.append(step or largest)
    return quantized_tolerance_for(quantized_ops, max(steps))


def _scale(subgraph: Any, index: int) -> float | None:
    """The (largest) quantization scale of an integer tensor; None for float tensors."""
    tensor = subgraph.Tensors(index)
    if tensor.Type() not in _INTEGER_TYPES:
        return None
    q = tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None
    return float(np.max(q.ScaleAsNumpy()))


def _opcode(model: Any, op: Any) -> str:
    from tflite.BuiltinOperator import BuiltinOperator

    code = model.OperatorCodes(op.OpcodeIndex())
    value = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    return names.get(value, str(value))


def _import(model: Any, subgraph: Any, inputs: tuple[TensorSpec, ...], source: str) -> Any:
    import tvm
    from tvm.relax.frontend.tflite import from_tflite
    from tvm.relax.frontend.tflite.tflite_frontend import ExprTable, OperatorConverter

    converter = OperatorConverter(model, subgraph, ExprTable(), None)  # its op table and checks only
    missing = Counter(
        op for op in (converter.get_op_code_str(subgraph.Operators(i)) for i in range(subgraph.OperatorsLength()))
        if op not in converter.convert_map
    )
    if missing:
        listing = ", ".join(f"{op} ({n} node{'s' if n > 1 else ''})" for op, n in sorted(missing.items()))
        raise client_error("InputConfiguration", f"{source} uses operators the compiler does not support: {listing}")
    try:
        converter.check_unsupported_ops()  # e.g. quantized forms of operators it has in float
        mod = from_tflite(
            model,
            shape_dict={s.name: list(s.shape) for s in inputs},
            dtype_dict={s.name: s.dtype for s in inputs},
        )
    except tvm.error.OpNotImplemented as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip() and "Traceback" not in line)
        raise client_error("InputConfiguration", f"{source} uses operators the compiler does not support: {detail}") from exc
    except Exception as exc:  # the importer raises many kinds; the user needs the message
        raise client_error("InputConfiguration", f"{source} could not be imported: {exception_line(exc)}") from exc
    return mod


def _interpreter_reference(buffer: bytes, inputs: tuple[TensorSpec, ...]) -> Reference:
    """The TFLite interpreter (TensorFlow's built-in kernels) on the same inputs."""

    def run(feeds):
        tf = import_tensorflow()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's notice that LiteRT is its successor
            interpreter = tf.lite.Interpreter(
                model_content=buffer,
                experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
        details = {d["name"]: d for d in interpreter.get_input_details()}
        for spec in inputs:
            if tuple(details[spec.name]["shape"]) != spec.shape:
                interpreter.resize_tensor_input(details[spec.name]["index"], list(spec.shape))
        interpreter.allocate_tensors()
        for spec in inputs:
            interpreter.set_tensor(details[spec.name]["index"], np.asarray(feeds[spec.name], dtype=spec.dtype))
        interpreter.invoke()
        return [np.array(interpreter.get_tensor(d["index"])) for d in interpreter.get_output_details()]

    return run
