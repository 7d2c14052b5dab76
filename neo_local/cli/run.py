"""``neo-local run ARTIFACT --input name=file.npy``: run a compiled artifact once."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

from neo_local.cli.values import UsageError


class RunFailed(Exception):
    """The artifact could not be loaded or run (exit status 1)."""


def add_run_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="Run a compiled artifact (.tar.gz or its unpacked folder) on .npy inputs.",
        description="Load ARTIFACT with neo_local.runtime.DLRModel, run it once and print "
                    "each output's name, shape, dtype and a short summary.",
        parents=parents,
        allow_abbrev=False,
    )
    parser.add_argument("artifact", metavar="ARTIFACT", help="compiled .tar.gz or its unpacked folder")
    parser.add_argument("--input", dest="inputs", action="append", default=[], metavar="NAME=FILE.npy",
                        help="an input by name (repeat for each input); a model with one input "
                             "also takes a bare FILE.npy")
    parser.add_argument("--output-dir", metavar="DIR", help="also save each output as DIR/<name>.npy")
    parser.set_defaults(handler=run_command)


def parse_inputs(specs: list[str]) -> dict[str | None, str]:
    """``['data=x.npy']`` -> ``{'data': 'x.npy'}``; a bare path maps from None."""
    parsed: dict[str | None, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        key: str | None = name if sep else None
        if not sep:
            path = spec
        if sep and (not name or not path):
            raise UsageError(f"argument --input: expected NAME=FILE.npy, got {spec!r}")
        if key in parsed:
            raise UsageError(f"argument --input: {key or 'the unnamed input'} given twice")
        parsed[key] = path
    return parsed


def load_inputs(specs: list[str], input_names: list[str]) -> dict[str, Any]:
    """Read the .npy files and match them to the model's input names (clear errors)."""
    import numpy as np

    parsed = parse_inputs(specs)
    listing = ", ".join(input_names) or "(none)"
    if None in parsed:
        if len(parsed) > 1 or len(input_names) != 1:
            raise UsageError(f"give inputs as NAME=FILE.npy; the model's inputs are: {listing}")
        parsed = {input_names[0]: parsed[None]}
    unknown = [n for n in parsed if n not in input_names]
    missing = [n for n in input_names if n not in parsed]
    problems = []
    if unknown:
        problems.append(f"unknown input name(s): {', '.join(unknown)}")
    if missing:
        problems.append(f"missing input(s): {', '.join(missing)}")
    if problems:
        raise UsageError(f"{'; '.join(problems)}. The model's inputs are: {listing}")
    arrays = {}
    for name, path in parsed.items():
        try:
            arrays[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise UsageError(f"argument --input: cannot read {path} for input {name!r}: {e}") from None
    return arrays


def summarize(name: str, array: Any) -> str:
    import numpy as np

    line = f"{name}: shape={list(array.shape)} dtype={array.dtype}"
    if array.size and np.issubdtype(array.dtype, np.number):
        flat = array.reshape(-1)
        as_float = flat.astype(np.float64)
        line += (f" min={as_float.min():.6g} max={as_float.max():.6g} mean={as_float.mean():.6g}"
                 f" argmax={int(np.argmax(flat))}")
        head = ", ".join(f"{v:.6g}" for v in as_float[:5])
        line += f" first=[{head}{', ...' if flat.size > 5 else ''}]"
    return line


def run_command(ns: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        from neo_local.runtime import DLRModel
    except ImportError as e:
        raise RunFailed(f"the neo-local runtime cannot be imported: {e}") from None
    if not os.path.exists(ns.artifact):
        raise UsageError(f"ARTIFACT {ns.artifact} does not exist")
    try:
        model = DLRModel(ns.artifact)
    except Exception as e:  # ArtifactError and whatever TVM raises while loading
        raise RunFailed(f"cannot load {ns.artifact}: {e}") from None
    names = list(model.get_input_names())
    arrays = load_inputs(ns.inputs, names)
    try:
        outputs = model.run(arrays)
    except Exception as e:
        raise RunFailed(f"running {ns.artifact} failed: {e}") from None
    output_names = _output_names(model, len(outputs))
    if ns.output_dir:
        os.makedirs(ns.output_dir, exist_ok=True)
    import numpy as np

    for name, array in zip(output_names, outputs):
        out.write(summarize(name, array) + "\n")
        if ns.output_dir:
            path = os.path.join(ns.output_dir, f"{_safe(name)}.npy")
            np.save(path, array)
            out.write(f"  saved {path}\n")
    return 0


def _output_names(model: Any, count: int) -> list[str]:
    try:
        names = list(model.get_output_names())
    except Exception:
        names = []
    if len(names) != count:
        names = [f"output{i}" for i in range(count)]
    return names


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "output"
