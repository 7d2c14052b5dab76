"""ONNX: one .onnx file; DataInputConfig names the graph's inputs, or is derived when static."""

from __future__ import annotations

from pathlib import Path

from neo_local.api.errors import client_error
from neo_local.frontends import register
from neo_local.frontends.archive_rules import find_model_file
from neo_local.frontends.base import Frontend, ImportedModel, ImportOptions, TensorSpec
from neo_local.frontends.data_input import format_data_input_config, parse_data_input_config, shapes_by_name
from neo_local.frontends.onnx_import import graph_inputs, import_onnx, onnxruntime_reference
from neo_local.frontends.onnx_quantized import quantized_tolerance


@register
class OnnxFrontend(Frontend):
    framework = "ONNX"
    suffixes = (".onnx",)
    requires = ("onnx", "onnxruntime")

    def load(self, model_dir: Path, options: ImportOptions) -> ImportedModel:
        import onnx

        path = find_model_file(model_dir, self.suffixes, self.framework)
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # protobuf and onnx raise unrelated types for a bad file
            raise client_error("InputConfiguration", f"{path.name} is not a valid ONNX model: {exc}") from exc
        inputs, derived = resolve_inputs(graph_inputs(model), options.data_input_config)
        mod, outputs = import_onnx(model, inputs, path.name)
        return ImportedModel(
            ir=mod,
            inputs=inputs,
            outputs=outputs,
            reference=onnxruntime_reference(model.SerializeToString()),
            tolerance=quantized_tolerance(model),
            derived={"DerivedDataInputConfig": derived} if derived else {},
            source_file=path.name,
        )


def resolve_inputs(
    model_inputs: list[tuple[str, tuple[int | None, ...], str]], data_input_config: str | None
) -> tuple[tuple[TensorSpec, ...], str | None]:
    """Input specs in the model's order; the derived DataInputConfig when anything was derived."""
    given = parse_data_input_config(data_input_config)
    described = ", ".join(f"{n} {list(d)} {t}" for n, d, t in model_inputs)
    names = [name for name, _, _ in model_inputs]
    shapes = {} if given is None else shapes_by_name(
        given, names, "the model", described, f"The model's inputs are: {described}",
    )
    specs = []
    for name, dims, dtype in model_inputs:
        shape = shapes.get(name)
        if shape is None:
            if any(d is None for d in dims):
                raise client_error(
                    "InputConfiguration",
                    f"Input '{name}' has dynamic dimensions {['?' if d is None else d for d in dims]}; "
                    f'give its shape in DataInputConfig, e.g. {{"{name}": {[d or 1 for d in dims]}}}',
                )
            shape = tuple(int(d) for d in dims)
        elif len(shape) != len(dims) or any(d is not None and d != s for d, s in zip(dims, shape)):
            raise client_error(
                "InputConfiguration",
                f"DataInputConfig shape {list(shape)} for '{name}' does not match the model's input shape "
                f"{['?' if d is None else d for d in dims]}",
            )
        specs.append(TensorSpec(name, tuple(shape), dtype))
    derived = None
    if len(shapes) != len(model_inputs):
        derived = format_data_input_config([(s.name, s.shape) for s in specs])
    return tuple(specs), derived
