"""PyTorch: exactly one model file, either TorchScript (.pt/.pth, as Neo requires) or a
torch.export ExportedProgram (.pt2).

TorchScript cannot be torch.export-ed, so it goes through the TorchScript ONNX exporter and the
ONNX importer; an ExportedProgram goes straight to Relax with ``from_exported_program``.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from neo_local.api.errors import client_error, exception_line
from neo_local.frontends import register
from neo_local.frontends.archive_rules import find_model_file
from neo_local.frontends.base import Frontend, ImportedModel, ImportOptions, Reference, TensorSpec
from neo_local.frontends.data_input import parse_data_input_config
from neo_local.frontends.onnx_import import import_onnx, output_specs

_OPSET = 17
_EXAMPLE = '{"input0": [1, 3, 224, 224]} or [[1, 3, 224, 224]]'


@register
class PyTorchFrontend(Frontend):
    framework = "PYTORCH"
    suffixes = (".pt", ".pth", ".pt2")
    requires = ("torch",)
    # Neo's list for PyTorch; TorchScript files saved by any of them load in the torch installed here
    framework_versions = ("1.4", "1.5", "1.6", "1.7", "1.8", "1.12", "1.13", "2.0")

    def load(self, model_dir: Path, options: ImportOptions) -> ImportedModel:
        path = find_model_file(model_dir, self.suffixes, self.framework)
        if path.suffix == ".pt2":
            return _load_exported_program(path, options)
        return _load_torchscript(path, options)


def _load_torchscript(path: Path, options: ImportOptions) -> ImportedModel:
    import onnx
    import torch

    given = parse_data_input_config(options.data_input_config)
    if given is None:
        raise client_error("InputConfiguration", f"DataInputConfig is required for PyTorch models, e.g. {_EXAMPLE}")
    dtype = options.compiler_options.get("dtype", "float32")
    inputs = tuple(TensorSpec(name or f"input{i}", shape, dtype) for i, (name, shape) in enumerate(given))
    module = read_torchscript(path)
    examples = tuple(torch.from_numpy(np.zeros(s.shape, dtype=s.dtype)) for s in inputs)
    buffer = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter is the route for TorchScript; its notices are noise here
            warnings.simplefilter("ignore")
            count = _count_outputs(module(*examples))
            torch.onnx.export(
                module, examples, buffer, dynamo=False, opset_version=_OPSET,
                input_names=[s.name for s in inputs],
                output_names=[f"output{i}" for i in range(count)],
            )
    except Exception as exc:  # shape mismatches surface here as RuntimeError with torch's message
        raise client_error(
            "InputConfiguration",
            f"{path.name} could not be run with the DataInputConfig shapes "
            f"{[list(s.shape) for s in inputs]} ({dtype}): {exception_line(exc, last=False)}",
        ) from exc
    mod, outputs = import_onnx(onnx.load_from_string(buffer.getvalue()), inputs, path.name)
    return ImportedModel(
        ir=mod, inputs=inputs, outputs=outputs, reference=_torch_reference(module, inputs), source_file=path.name
    )


def read_torchscript(path: Path) -> Any:
    """The TorchScript module in ``path``, in eval mode; a ClientError says how to save one."""
    import torch

    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:  # torch raises RuntimeError or pickle errors for non-TorchScript files
        raise client_error(
            "InputConfiguration",
            f"{path.name} is not a TorchScript model ({exception_line(exc, last=False)}). Save the model with "
            "torch.jit.trace(model, example).save('model.pth') or torch.jit.script(model).save(...), "
            "or torch.export.save(torch.export.export(model, example), 'model.pt2')",
        ) from exc


def _load_exported_program(path: Path, options: ImportOptions) -> ImportedModel:
    import torch
    from tvm.relax.frontend.torch import from_exported_program

    try:
        program = torch.export.load(str(path))
    except Exception as exc:  # a .pt2 from another torch, or not an ExportedProgram at all
        raise client_error(
            "InputConfiguration",
            f"{path.name} is not an ExportedProgram saved with torch.export.save ({exception_line(exc, last=False)})",
        ) from exc
    inputs = _exported_inputs(program, path.name)
    _check_given_shapes(inputs, options.data_input_config)
    try:
        mod = from_exported_program(program, unwrap_unit_return_tuple=True, custom_convert_map=ATEN_CONVERTERS)
    except Exception as exc:  # unsupported aten operators are reported as "Unsupported function types [...]"
        raise client_error("InputConfiguration", f"{path.name} could not be imported: {exception_line(exc)}") from exc
    names = [str(n) for n in program.graph_signature.user_outputs]
    module = program.module()
    return ImportedModel(
        ir=mod, inputs=inputs, outputs=output_specs(mod, names), reference=_torch_reference(module, inputs),
        source_file=path.name,
    )


def _reduce(op: str) -> Callable[[Any, Any], Any]:
    """A converter for aten reductions over a list of dims (amax, amin; [] means every dim)."""

    def convert(node: Any, importer: Any) -> Any:
        """aten.amax/amin: TVM 0.27 has no converter for them (logsumexp decomposes to amax)."""
        from tvm import relax

        x = importer.env[node.args[0]]
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", [])
        dims = [dims] if isinstance(dims, int) else list(dims)
        keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
        return importer.block_builder.emit(getattr(relax.op, op)(x, dims or None, keepdims=keepdim))

    return convert


def _prod_dim(node: Any, importer: Any) -> Any:
    """aten.prod.dim_int (TVM 0.27 maps only prod.default, the product of every element)."""
    from tvm import relax

    x = importer.env[node.args[0]]
    keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
    return importer.block_builder.emit(relax.op.prod(x, [node.args[1]], keepdims=keepdim))


def _elu(node: Any, importer: Any) -> Any:
    """aten.elu(x, alpha, scale, input_scale): TVM 0.27 drops scale and input_scale, so selu
    (which torch decomposes to elu with both) comes out wrong."""
    from tvm import relax

    x = importer.env[node.args[0]]
    alpha, scale, input_scale = (*node.args[1:4], *(1.0, 1.0, 1.0)[len(node.args) - 1:])
    dtype = x.ty.dtype
    negative = relax.op.multiply(
        relax.const(alpha, dtype),
        relax.op.subtract(relax.op.exp(relax.op.multiply(x, relax.const(input_scale, dtype))), relax.const(1.0, dtype)),
    )
    out = relax.op.where(relax.op.greater(x, relax.const(0.0, dtype)), x, negative)
    return importer.block_builder.emit(relax.op.multiply(out, relax.const(scale, dtype)))


def _upsample_nearest2d(node: Any, importer: Any) -> Any:
    """aten.upsample_nearest2d.vec: torch's nearest picks floor(dst * in / out); TVM 0.27 uses
    half-pixel centres with rounding, which differs whenever the scale is not an integer."""
    from tvm import relax

    x = importer.env[node.args[0]]
    size, scales = node.args[1], node.args[2] if len(node.args) > 2 else None
    shape = importer.shape_of(x)
    height, width = int(shape[2]), int(shape[3])
    if not size:
        size = [int(height * scales[0]), int(width * scales[1])]
    return importer.block_builder.emit(relax.op.image.resize2d(
        x, tuple(size), layout="NCHW", method="nearest_neighbor",
        coordinate_transformation_mode="asymmetric", rounding_method="floor",
    ))


def _div_mode(node: Any, importer: Any) -> Any:
    """aten.div.Tensor_mode (``//``, ``torch.div(..., rounding_mode=...)``): TVM 0.27 makes a Python
    number divisor an int32 or float32 constant whatever the dividend's dtype, which Relax refuses
    for int64 (or float64) tensors; here the constant takes the dividend's dtype."""
    from tvm import relax

    x, divisor = importer.env[node.args[0]], node.args[1]
    divisor = relax.const(divisor, x.ty.dtype) if isinstance(divisor, (int, float)) else importer.env[divisor]
    mode = node.args[2] if len(node.args) > 2 else node.kwargs.get("rounding_mode")
    if mode == "floor":
        return importer.block_builder.emit(relax.op.floor_divide(x, divisor))
    quotient = importer.block_builder.emit(relax.op.divide(x, divisor))
    return quotient if mode is None else importer.block_builder.emit(relax.op.trunc(quotient))


#: aten operators (as named after torch's core-ATen decompositions) that TVM 0.27's
#: from_exported_program lacks or converts wrongly; tests/torch_export_suite measures them
ATEN_CONVERTERS: dict[str, Callable[[Any, Any], Any]] = {
    "amax.default": _reduce("max"),
    "amin.default": _reduce("min"),
    "prod.dim_int": _prod_dim,
    "elu.default": _elu,
    "upsample_nearest2d.vec": _upsample_nearest2d,
    "div.Tensor_mode": _div_mode,
}


def _exported_inputs(program: Any, source: str) -> tuple[TensorSpec, ...]:
    """The program's user inputs with their (static) shapes and dtypes."""
    nodes = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    specs = []
    for name in program.graph_signature.user_inputs:
        value = nodes[name].meta.get("val")
        if value is None or not all(isinstance(d, int) for d in value.shape):
            raise client_error(
                "InputConfiguration",
                f"{source}: input '{name}' has dynamic dimensions; export the program with static shapes",
            )
        specs.append(TensorSpec(name, tuple(value.shape), str(value.dtype).removeprefix("torch.")))
    return tuple(specs)


def _check_given_shapes(inputs: tuple[TensorSpec, ...], data_input_config: str | None) -> None:
    """An ExportedProgram fixes its shapes; a DataInputConfig may only restate them."""
    given = parse_data_input_config(data_input_config)
    if given is None:
        return
    expected = [(s.name, s.shape) for s in inputs]
    same = len(given) == len(inputs) and all(
        name in (None, spec.name) and shape == spec.shape for (name, shape), spec in zip(given, inputs)
    )
    if not same:
        raise client_error(
            "InputConfiguration",
            f"DataInputConfig {data_input_config} does not match the exported program's inputs "
            f"{', '.join(f'{n} {list(s)}' for n, s in expected)}; an ExportedProgram's shapes are fixed "
            "at export (DataInputConfig may be left out)",
        )


def _count_outputs(out: Any) -> int:
    return len(out) if isinstance(out, (tuple, list)) else 1


def _torch_reference(module: Any, inputs: tuple[TensorSpec, ...]) -> Reference:
    def run(feeds):
        import torch

        with torch.no_grad():
            out = module(*(torch.from_numpy(np.asarray(feeds[s.name])) for s in inputs))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o.detach().numpy() for o in outs]

    return run
