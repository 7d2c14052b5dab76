"""PyTorch: one TorchScript .pt/.pth file, imported through ONNX (TorchScript cannot be
torch.export-ed; the TorchScript ONNX exporter reads it directly)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from neo_local.api.errors import client_error, exception_line
from neo_local.frontends import register
from neo_local.frontends.archive_rules import find_model_file
from neo_local.frontends.base import Frontend, ImportedModel, ImportOptions, Reference, TensorSpec
from neo_local.frontends.data_input import parse_data_input_config
from neo_local.frontends.onnx_import import import_onnx

_OPSET = 17


@register
class PyTorchFrontend(Frontend):
    framework = "PYTORCH"
    suffixes = (".pt", ".pth")
    requires = ("torch", "onnx")

    def load(self, model_dir: Path, options: ImportOptions) -> ImportedModel:
        import onnx
        import torch

        path = find_model_file(model_dir, self.suffixes, self.framework)
        given = parse_data_input_config(options.data_input_config)
        if given is None:
            raise client_error(
                "InputConfiguration",
                'DataInputConfig is required for PyTorch models, e.g. {"input0": [1, 3, 224, 224]} or [[1, 3, 224, 224]]',
            )
        dtype = options.compiler_options.get("dtype", "float32")
        inputs = tuple(TensorSpec(name or f"input{i}", shape, dtype) for i, (name, shape) in enumerate(given))
        try:
            module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as exc:  # torch raises RuntimeError or pickle errors for non-TorchScript files
            raise client_error(
                "InputConfiguration",
                f"{path.name} is not a TorchScript model ({exception_line(exc, last=False)}). Save the model with "
                "torch.jit.trace(model, example).save('model.pth') or torch.jit.script(model).save(...)",
            ) from exc
        examples = tuple(torch.from_numpy(_zeros(s)) for s in inputs)
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


def _zeros(spec: TensorSpec) -> np.ndarray:
    return np.zeros(spec.shape, dtype=spec.dtype)


def _count_outputs(out) -> int:
    return len(out) if isinstance(out, (tuple, list)) else 1


def _torch_reference(module, inputs: tuple[TensorSpec, ...]) -> Reference:
    def run(feeds):
        import torch

        with torch.no_grad():
            out = module(*(torch.from_numpy(np.asarray(feeds[s.name])) for s in inputs))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o.detach().numpy() for o in outs]

    return run
