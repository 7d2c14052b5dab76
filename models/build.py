"""Build an example model archive, as a user would upload it to Neo.

    python -m models.build NAME [NAME ...] --format onnx|torchscript --out DIR [--seed N] [--force]

writes, per model:

    DIR/<name>.tar.gz        the archive (exactly one model file at its root: <name>.onnx or .pt)
    DIR/<name>.inputs.npz    seeded example inputs, by input name
    DIR/<name>.outputs.npz   the torch module's outputs on those inputs (output0..N)
    DIR/<name>.build.json    what was built (format, seed, Framework, DataInputConfig, cache key)

and prints the .build.json record as one JSON line. A model whose files are present and whose
cache key (name, format, seed, opset, the models/ sources, torch/onnx versions) matches is not
rebuilt. The archives are reproducible byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from importlib.metadata import version

import numpy as np

from models.cache import BuildFiles
from models.registry import EXAMPLES, get

FORMATS = {"onnx": ("ONNX", ".onnx"), "torchscript": ("PYTORCH", ".pt")}
_SOURCES = ("zoo.py", "registry.py", "export.py", "build.py")


@dataclass(frozen=True)
class BuildResult:
    name: str
    format: str
    framework: str  # the InputConfig.Framework value for this archive
    seed: int
    opset: int | None
    archive: str
    inputs_npz: str
    outputs_npz: str
    model_file: str  # the file inside the archive
    data_input_config: str
    inputs: list[dict]
    key: str
    cached: bool = False

    @property
    def archive_path(self) -> Path:
        return Path(self.archive)

    def load_inputs(self) -> dict[str, np.ndarray]:
        with np.load(self.inputs_npz) as z:
            return {n: z[n] for n in (i["name"] for i in self.inputs)}

    def load_outputs(self) -> list[np.ndarray]:
        with np.load(self.outputs_npz) as z:
            return [z[k] for k in sorted(z.files, key=lambda k: int(k.removeprefix("output")))]


def _cache_key(name: str, fmt: str, seed: int, opset: int | None) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([name, fmt, seed, opset, version("torch")]).encode())
    if fmt == "onnx":
        h.update(version("onnx").encode())
    here = Path(__file__).resolve().parent
    for src in _SOURCES:
        h.update((here / src).read_bytes())
    return h.hexdigest()[:16]


def build_example(
    name: str,
    fmt: str = "onnx",
    out_dir: str | Path = ".",
    seed: int = 0,
    opset: int = 17,
    force: bool = False,
) -> BuildResult:
    """Build (or reuse) ``out_dir/<name>.tar.gz`` and its inputs/outputs; see the module doc."""
    example = get(name)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    framework, suffix = FORMATS[fmt]
    files = BuildFiles.under(out_dir, name)
    key = _cache_key(name, fmt, seed, opset if fmt == "onnx" else None)

    def make() -> BuildResult:
        from models import export  # imports torch: only when something is built

        module = example.build(seed)
        inputs = export.example_inputs(example, seed)
        outputs = export.reference_outputs(module, inputs)
        model_file = f"{name}{suffix}"
        with tempfile.TemporaryDirectory(dir=files.archive.parent, prefix=f".{name}-") as tmp:
            path = Path(tmp) / model_file
            if fmt == "onnx":
                export.to_onnx(module, inputs, path, example.input_names, opset, example.outputs)
            else:
                export.to_torchscript(module, inputs, path)
            export.make_archive([path], files.archive)
        files.save_arrays(inputs, outputs)
        return BuildResult(
            name=name,
            format=fmt,
            framework=framework,
            seed=seed,
            opset=opset if fmt == "onnx" else None,
            archive=str(files.archive),
            inputs_npz=str(files.inputs_npz),
            outputs_npz=str(files.outputs_npz),
            model_file=model_file,
            data_input_config=example.data_input_config(),
            inputs=[{"name": n, "shape": list(s), "dtype": d} for n, s, d in example.inputs],
            key=key,
        )

    return files.build_once(key, BuildResult, force, make)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.build", description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="+", metavar="NAME", help=f"one of: {', '.join(EXAMPLES)}, or all")
    p.add_argument("--format", choices=sorted(FORMATS), default="onnx")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (onnx format only)")
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = p.parse_args(argv)
    names = list(EXAMPLES) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in EXAMPLES]
    if unknown:
        p.error(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(EXAMPLES)}")
    for name in names:
        r = build_example(name, args.format, args.out, args.seed, args.opset, args.force)
        print(json.dumps({**asdict(r)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
