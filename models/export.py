"""Write example models in the formats a Neo user uploads: TorchScript, ONNX, a .tar.gz archive."""

from __future__ import annotations

import gzip
import io
import tarfile
import warnings
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np
import torch
from torch import nn

from models.registry import ExampleModel

ExampleInputs = Union[
    Mapping[str, Union[np.ndarray, torch.Tensor]],
    Sequence[Union[np.ndarray, torch.Tensor]],
    np.ndarray,
    torch.Tensor,
]

__all__ = [
    "example_inputs",
    "make_archive",
    "reference_outputs",
    "to_onnx",
    "to_torchscript",
]


def _as_tensors(inputs: ExampleInputs) -> tuple[torch.Tensor, ...]:
    """Positional tensors from a name->array mapping (in its order), a sequence, or one array."""
    if isinstance(inputs, Mapping):
        values = list(inputs.values())
    elif isinstance(inputs, (np.ndarray, torch.Tensor)):
        values = [inputs]
    else:
        values = list(inputs)
    return tuple(v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v)) for v in values)


def example_inputs(example: ExampleModel, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs for ``example``, by input name, in input order.

    Floats are standard normal; integers are uniform in ``[0, example.int_high)``.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, shape, dtype in example.inputs:
        if np.issubdtype(np.dtype(dtype), np.integer):
            out[name] = rng.integers(0, example.int_high, size=shape, dtype=np.dtype(dtype))
        else:
            out[name] = rng.standard_normal(shape).astype(dtype)
    return out


def reference_outputs(module: nn.Module, inputs: ExampleInputs) -> list[np.ndarray]:
    """Run the torch module on ``inputs``; outputs as a list of numpy arrays."""
    with torch.no_grad():
        out = module(*_as_tensors(inputs))
    if isinstance(out, torch.Tensor):
        out = (out,)
    return [o.detach().cpu().numpy() for o in out]


def to_torchscript(module: nn.Module, example_inputs: ExampleInputs, path: str | Path) -> Path:
    """``torch.jit.trace`` the module on ``example_inputs`` and save it to ``path`` (.pt/.pth)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module.eval(), _as_tensors(example_inputs))
    torch.jit.save(traced, str(path))
    return path


def to_onnx(
    module: nn.Module,
    example_inputs: ExampleInputs,
    path: str | Path,
    input_names: Sequence[str],
    opset: int = 17,
    output_names: Sequence[str] = ("output0",),
) -> Path:
    """Export with the TorchScript-based ONNX exporter (``dynamo=False``; needs no onnxscript).

    Shapes are static (no dynamic axes), as Neo's DataInputConfig fixes them anyway.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    args = _as_tensors(example_inputs)
    if len(input_names) != len(args):
        raise ValueError(f"{len(input_names)} input names for {len(args)} inputs")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            args,
            str(path),
            input_names=list(input_names),
            output_names=list(output_names),
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return path


def make_archive(files: Sequence[str | Path], tar_gz_path: str | Path) -> Path:
    """Write a gzip tar holding ``files`` at the archive root (by base name), nothing else; a
    directory goes in as a top folder with its whole tree (a SavedModel, say).

    The archive is byte-for-byte reproducible: fixed mtimes, owners and modes, no gzip name.
    """
    tar_gz_path = Path(tar_gz_path)
    paths = [Path(f) for f in files]
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise ValueError(f"two files with the same name would collide at the archive root: {names}")
    tar_gz_path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for top in paths:
            for path in [top, *sorted(top.rglob("*"))] if top.is_dir() else [top]:
                _add_reproducibly(tar, path, str(path.relative_to(top.parent)))
    tmp = tar_gz_path.with_name(tar_gz_path.name + ".partial")
    with tmp.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buf.getvalue())
    tmp.replace(tar_gz_path)
    return tar_gz_path


def _add_reproducibly(tar: tarfile.TarFile, path: Path, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if path.is_dir():
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    info.size, info.mode = path.stat().st_size, 0o644
    with path.open("rb") as fh:
        tar.addfile(info, fh)
