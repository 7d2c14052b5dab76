"""Build-once bookkeeping shared by the example writers (ONNX/TorchScript, TensorFlow, MXNet,
DarkNet): where a build's files go, whether the recorded build is still current, and the small
command line each writer module offers (``python -m models.<writer> NAME... --out DIR``)."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

import numpy as np

Result = TypeVar("Result")


@dataclass(frozen=True)
class BuildFiles:
    """The four files of one example build under an output folder."""

    archive: Path
    inputs_npz: Path
    outputs_npz: Path
    record: Path

    @classmethod
    def under(cls, out_dir: str | Path, name: str) -> "BuildFiles":
        out = Path(out_dir).resolve()
        out.mkdir(parents=True, exist_ok=True)
        return cls(out / f"{name}.tar.gz", out / f"{name}.inputs.npz", out / f"{name}.outputs.npz",
                   out / f"{name}.build.json")

    def cached(self, key: str, result_type: Callable[..., Result], force: bool = False) -> Result | None:
        """The recorded build when all its files exist and it was made with ``key``."""
        if force or not all(p.exists() for p in (self.archive, self.inputs_npz, self.outputs_npz, self.record)):
            return None
        try:
            record = json.loads(self.record.read_text())
        except ValueError:
            return None
        if record.get("key") != key:
            return None
        return result_type(**{**record, "cached": True})

    def build_once(self, key: str, result_type: Callable[..., Result], force: bool, make: Callable[[], Result]) -> Result:
        """The recorded build for ``key``, else ``make()``'s (which writes the archive and arrays),
        recorded. Holds a lock on the folder's ``<name>.lock`` meanwhile: test workers running in
        parallel (pytest-xdist) that need the same example build it once, and none reads a half-written one."""
        with self._locked():
            cached = self.cached(key, result_type, force)
            if cached is not None:
                return cached
            result = make()
            self.save_record(result)
            return result

    @contextlib.contextmanager
    def _locked(self):
        with open(self.record.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def save_arrays(self, inputs: Mapping[str, np.ndarray], outputs: Sequence[np.ndarray]) -> None:
        np.savez(self.inputs_npz, **inputs)
        np.savez(self.outputs_npz, **{f"output{i}": o for i, o in enumerate(outputs)})

    def save_record(self, result: Any) -> None:
        record = asdict(result)
        record.pop("cached", None)
        self.record.write_text(json.dumps(record, indent=2) + "\n")


def example_main(
    prog: str, description: str, names: Iterable[str], build: Callable[[str, str, int, bool], Any],
    argv: Sequence[str] | None = None,
) -> int:
    """Build the named examples with ``build(name, out_dir, seed, force)``; one JSON line each."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("names", nargs="+", choices=sorted(names))
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    for name in args.names:
        print(json.dumps(asdict(build(name, args.out, args.seed, args.force))), flush=True)
    return 0
