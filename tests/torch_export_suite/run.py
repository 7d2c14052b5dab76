"""Run the torch.export suite through neo-local's .pt2 route and TVM (llvm, host CPU).

    .venv/bin/python -m tests.torch_export_suite.run [--jobs N] [--timeout S] [--only SUBSTR]
                                                      [--no-cache] [--write]

Each case (``cases.py``) is built with seeded weights, run eagerly by torch, exported with
``torch.export.export``, saved as ``model.pt2`` and imported by the PYTORCH frontend exactly as a
compilation job imports it (``PyTorchFrontend.load``: ``torch.export.load`` then
``from_exported_program``), compiled with ``tvm.compile(target="llvm")``, run on the Relax VM and
compared with torch's eager output (rtol 1e-3 / atol 1e-5 unless the case says why not).

Outcomes: pass, mismatch (max error), export-error (torch.export itself fails), import-error (TVM's
message, naming the aten operators it lacks), compile-error, run-error, crash (the worker died)
and timeout (harness-error: the runner itself failed). Cases run in worker processes fed one case name at a time; a worker that dies or
overruns the per-case timeout is replaced, so a segfault costs one case, not the run.

Outcomes are cached in ``.cache/torch_export_suite/cache.json`` keyed by the case name and a hash
of the code they depend on (this package, the PyTorch frontend, the torch and TVM versions).
``--write`` records ``tests/torch_export_suite/results.json`` (what the sample test checks) and
regenerates ``docs/torch-export-coverage.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
CACHE = ROOT / ".cache" / "torch_export_suite" / "cache.json"
PASS = "pass"
STATUSES = (PASS, "mismatch", "export-error", "import-error", "compile-error", "run-error", "crash", "timeout",
            "harness-error")
#: the code an outcome depends on besides the installed torch and TVM
CODE = (HERE / "cases.py", HERE / "run.py", ROOT / "neo_local" / "frontends" / "pytorch.py",
        ROOT / "neo_local" / "frontends" / "onnx_import.py")


@dataclass(frozen=True)
class Outcome:
    """What happened to one case; ``detail`` names the error or the largest difference."""

    status: str
    detail: str = ""
    seconds: float = 0.0


# --------------------------------------------------------------------------- one case


def run_case(name: str) -> Outcome:
    """Export, import, compile, run and compare one case; never raises for the case's own faults."""
    started = time.monotonic()
    status, detail = _stages(name)
    return Outcome(status, detail, round(time.monotonic() - started, 2))


def _stages(name: str) -> tuple[str, str]:
    import torch
    import tvm
    from tvm import relax

    from neo_local.api.errors import JobFailure
    from neo_local.frontends.base import ImportOptions
    from neo_local.frontends.pytorch import PyTorchFrontend
    from tests.torch_export_suite.cases import BY_NAME, build, make_inputs

    case = BY_NAME[name]
    module, inputs = build(case), make_inputs(case)
    with torch.no_grad():
        expected = [t.numpy() for t in _flatten(module(*inputs))]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            torch.export.save(torch.export.export(module, inputs), os.path.join(tmp, "model.pt2"))
        except Exception as exc:  # noqa: BLE001 (torch raises many types)
            return "export-error", _line(exc)
        try:
            imported = PyTorchFrontend().load(Path(tmp), ImportOptions())
        except JobFailure as exc:
            return "import-error", exc.reason.split(" could not be imported: ", 1)[-1][:300]
    try:
        executable = tvm.compile(imported.ir, target="llvm")
    except Exception as exc:  # noqa: BLE001 (TVM raises its own types from C++)
        return "compile-error", _line(exc)
    try:
        vm = relax.VirtualMachine(executable, tvm.cpu())
        got = [t.numpy() for t in _flatten(vm["main"](*[tvm.runtime.tensor(t.numpy()) for t in inputs]))]
    except Exception as exc:  # noqa: BLE001
        return "run-error", _line(exc)
    diff = compare(got, expected, case.rtol, case.atol)
    return (PASS, "") if diff is None else ("mismatch", diff)


def compare(got: list[Any], expected: list[Any], rtol: float, atol: float) -> str | None:
    """None when every output matches torch's in shape, dtype and value; else the first difference."""
    import numpy as np

    if len(got) != len(expected):
        return f"{len(got)} outputs, torch gives {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        if g.shape != e.shape:
            return f"output {i}: shape {list(g.shape)}, torch {list(e.shape)}"
        if g.dtype != e.dtype:
            return f"output {i}: dtype {g.dtype}, torch {e.dtype}"
        if e.dtype.kind == "f":
            if not np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
                err = np.abs(g.astype(np.float64) - e.astype(np.float64))
                return f"output {i}: max abs error {np.nanmax(err):.3g} (rtol {rtol}/atol {atol})"
        elif not np.array_equal(g, e):
            return f"output {i}: {int(np.sum(g != e))} of {e.size} values differ"
    return None


def _flatten(value: Any) -> list[Any]:
    if hasattr(value, "numpy"):
        return [value]
    return [t for v in value for t in _flatten(v)]


def _line(exc: BaseException) -> str:
    from neo_local.api.errors import exception_line

    return f"{type(exc).__name__}: {exception_line(exc)}"[:300]


def worker() -> None:
    """Serve case names from stdin, one JSON outcome per line on the original stdout; anything
    torch or TVM print goes to stderr so it cannot corrupt the replies."""
    import logging
    import warnings

    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    for line in sys.stdin:
        try:
            outcome = run_case(line.strip())
        except Exception as exc:  # noqa: BLE001 (a runner bug must not read as the case crashing)
            outcome = Outcome("harness-error", _line(exc))
        replies.write(json.dumps(asdict(outcome)) + "\n")
        replies.flush()


# --------------------------------------------------------------------------- worker pool


class _Worker:
    """One worker subprocess; replaced when it dies or overruns a case."""

    def __init__(self) -> None:
        self.proc = self._spawn()

    @staticmethod
    def _spawn() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.torch_export_suite.run", "--worker"], cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )

    def ask(self, name: str, timeout: float) -> Outcome:
        started = time.monotonic()
        try:
            self.proc.stdin.write(name + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._replace("crash", f"worker died (exit code {self.proc.poll()})", started)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return self._replace("timeout", f"over {timeout:.0f} s", started)
        line = self.proc.stdout.readline()
        if not line:
            return self._replace("crash", f"worker died (exit code {self.proc.wait()})", started)
        return Outcome(**json.loads(line))

    def _replace(self, status: str, detail: str, started: float) -> Outcome:
        self.proc.kill()
        self.proc.wait()
        self.proc = self._spawn()
        return Outcome(status, detail, round(time.monotonic() - started, 2))

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_many(names: list[str], jobs: int, timeout: float, done: Callable[[str, Outcome], None]) -> None:
    """Run the named cases on ``jobs`` workers; ``done(name, outcome)`` is called under a lock."""
    todo: queue.Queue[str] = queue.Queue()
    for name in names:
        todo.put(name)
    lock = threading.Lock()

    def serve() -> None:
        w = _Worker()
        try:
            while True:
                try:
                    name = todo.get_nowait()
                except queue.Empty:
                    return
                outcome = w.ask(name, timeout)
                with lock:
                    done(name, outcome)
        finally:
            w.close()

    threads = [threading.Thread(target=serve) for _ in range(max(1, min(jobs, len(names))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --------------------------------------------------------------------------- suite, cache, records


def code_key() -> str:
    """A hash of the code and versions every outcome depends on."""
    import torch
    import tvm

    h = hashlib.sha256(f"{torch.__version__} {tvm.__version__}".encode())
    for path in CODE:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def run_suite(names: list[str], jobs: int, timeout: float, use_cache: bool) -> dict[str, Outcome]:
    """{case: Outcome}, reusing cached outcomes computed by the same code."""
    key = code_key()
    cache = json.loads(CACHE.read_text()) if use_cache and CACHE.exists() else {}
    cached = cache.get(key, {})
    results = {n: Outcome(**cached[n]) for n in names if n in cached}
    todo = [n for n in names if n not in results]
    started = time.monotonic()

    def done(name: str, outcome: Outcome) -> None:
        results[name] = outcome
        print(f"[{time.monotonic() - started:5.0f}s] {name:32s} {outcome.status:13s} {outcome.detail[:90]}",
              file=sys.stderr, flush=True)

    if todo:
        print(f"{len(todo)} cases to run ({jobs} workers)", file=sys.stderr)
        run_many(todo, jobs, timeout, done)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps({key: {n: asdict(o) for n, o in results.items()}}, indent=1, sort_keys=True))
    return results


def load_recorded() -> dict[str, Outcome]:
    """The outcomes recorded by the last ``--write`` run."""
    return {n: Outcome(**o) for n, o in json.loads(RESULTS.read_text())["cases"].items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--only", help="run the cases whose name contains this")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--write", action="store_true", help="record results.json and write docs/torch-export-coverage.md")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker()
        return 0
    from tests.torch_export_suite.cases import CASES
    from tests.torch_export_suite.report import record, summary

    names = [c.name for c in CASES if not args.only or args.only in c.name]
    results = run_suite(names, args.jobs, args.timeout, use_cache=not args.no_cache)
    if args.write and not args.only:
        record(results)
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
