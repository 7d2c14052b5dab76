"""TVM (neo-local's CPU pipeline, or plain tvm.compile) and onnxruntime timed alternately in ONE
process, so that a busy shared machine disturbs both alike; prints ratios per round.

    TVM_NUM_THREADS=2 .venv/bin/python -m benchmarks.inprocess MODEL [--plain] [--repeat N]
                                       [--rounds R] [--mcpu CPU] [--save]
                                       [--tune-trials N] [--tune-minutes M] [--tuning-records PATH]
                                       [--precision bfloat16]

With --tune-trials/--tune-minutes the CPU schedules are tuned first (cpu_schedule.tuning). The
records database is a fresh empty file unless --tuning-records names one, so the default run
measures the default configs and a tuned run starts from no records. A tuned run also builds the
default configs (from another empty database) and times them in the same rounds, so that the
tuned/default ratio comes from timings seconds apart, not from two runs minutes apart.

The harness (benchmarks.run) times each engine in its own process one after the other; on a
machine shared with other work its ratios swing by 10x. This script is the cross-check.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.measure import POOL_IDLE_S
from neo_local.targets.options import BFLOAT16, FLOAT32

ROOT = Path(__file__).resolve().parents[1]


def _revision() -> str:
    """The commit the measured code came from (+ '-dirty' when the pipeline's files differ from it)."""
    import subprocess

    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "neo_local/backends"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _pipeline(a: argparse.Namespace) -> str:
    if a.plain:
        return "plain"
    budget = [f"{a.tune_trials} trials"] if a.tune_trials else []
    budget += [f"{a.tune_minutes:g} min"] if a.tune_minutes else []
    tuned = f", tuned {' / '.join(budget)}" if budget else ""
    records = f", records {a.tuning_records}" if a.tuning_records else ""
    precision = f", {a.precision}" if a.precision != FLOAT32 else ""
    return f"cpu_schedule{precision}{tuned}{records}"


def load_example(model: str, work: Path):
    """The example model's ONNX archive (built once, cached), unpacked into ``work`` and imported:
    (the build record, the .onnx path, the input specs, the Relax module)."""
    import onnx

    from models.build import build_example
    from neo_local.frontends.base import TensorSpec
    from neo_local.frontends.onnx_import import import_onnx

    built = build_example(model, "onnx", ROOT / "benchmarks" / ".cache" / "inprocess")
    with tarfile.open(built.archive) as tar:
        tar.extractall(work, filter="data")
    path = str(work / built.model_file)
    specs = tuple(TensorSpec(i["name"], tuple(i["shape"]), i["dtype"]) for i in built.inputs)
    mod, _ = import_onnx(onnx.load(path), specs, model)
    return built, path, specs, mod


def model_arguments(description: str, top: int) -> argparse.ArgumentParser:
    """The diagnosis tools' common arguments (``benchmarks.profile``, ``benchmarks.sampled``): the
    example model, the rows shown, the threads and the CPU to compile for."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("model", help="an example model's name (models.EXAMPLES)")
    p.add_argument("--top", type=int, default=top)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mcpu", default=None, help="default: LLVM's name for this CPU")
    return p


def host_target(mcpu: str | None = None) -> dict[str, str]:
    """The TVM target of this x86_64 Linux machine, for ``mcpu`` (default: this CPU's name)."""
    from neo_local.targets.cpu_features import host_cpu_name

    return {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": mcpu or host_cpu_name()}


def linked(executable, target: dict, path: Path):
    """The executable linked as neo-local ships it (with its own thread pool on Linux) and loaded."""
    import tvm

    from neo_local.backends.link import fcompile

    executable.export_library(str(path), fcompile=fcompile(target))
    return tvm.runtime.load_module(str(path))


def median_ms(fn, runs: int) -> float:
    """The median of exactly ``runs`` timed runs after one warm-up (neo-local's timing loop),
    after ``POOL_IDLE_S`` of quiet."""
    from neo_local.benchmark import Plan, time_runs

    time.sleep(POOL_IDLE_S)
    return time_runs(fn, Plan(warmup=1, max_repeat=runs, min_repeat=runs, budget_s=0.0))[0].median_ms


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--plain", action="store_true", help="plain tvm.compile (no schedules): the 'before'")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--mcpu", default=None, help="default: LLVM's name for this CPU")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--save", action="store_true", help="append to benchmarks/results/inprocess.json")
    p.add_argument("--revision", default=None, help="record this as the code's revision (default: git HEAD)")
    p.add_argument("--tune-trials", type=int, default=None, help="tune with this many trials over the model")
    p.add_argument("--tune-minutes", type=float, default=None, help="tune for at most this many minutes")
    p.add_argument("--tuning-records", default=None, help="the records database (default: a fresh empty file)")
    p.add_argument("--precision", default=FLOAT32, choices=(FLOAT32, BFLOAT16),
                   help="CompilerOptions precision of the builds (bfloat16: AVX512_BF16 CPUs)")
    a = p.parse_args(argv)
    os.environ.setdefault("TVM_NUM_THREADS", str(a.threads))

    import tvm
    from tvm import relax

    from neo_local.backends import cpu_schedule
    from neo_local.benchmark import open_source
    from neo_local.targets.options import TuningOptions

    work = Path(tempfile.mkdtemp(prefix="inprocess-"))
    built, path, specs, mod = load_example(a.model, work)
    target = host_target(a.mcpu)
    t0 = time.perf_counter()
    if a.plain:
        ex, stats = tvm.compile(mod, target=tvm.target.Target(target)), {"pipeline": "plain tvm.compile"}
    else:
        tuning = TuningOptions(trials=a.tune_trials, minutes=a.tune_minutes,
                               records=a.tuning_records or str(work / "tuning-records.jsonl"))
        ex, stats = cpu_schedule.compile_cpu(mod, target, tuning, precision=a.precision)
    compile_s = time.perf_counter() - t0
    engines = {"tvm": ex}
    if not a.plain and tuning.enabled:
        engines["default"], _ = cpu_schedule.compile_cpu(mod, target, TuningOptions(records=str(work / "none.jsonl")),
                                                         precision=a.precision)
    inputs = built.load_inputs()
    args = [tvm.runtime.tensor(inputs[s.name]) for s in specs]
    want = built.load_outputs()[0]
    runs, rel = {}, 0.0
    for name, built_ex in engines.items():
        vm = relax.VirtualMachine(linked(built_ex, target, work / f"{name}.so"), tvm.cpu())
        got = vm["main"](*args).numpy()
        rel = max(rel, float(np.abs(got - want).max() / np.abs(want).max()))
        runs[name] = lambda vm=vm: vm["main"](*args)

    runs["onnxruntime"] = open_source("onnxruntime", Path(path), inputs, a.threads)
    order = list(runs)
    rounds = []
    for i in range(a.rounds):
        # each round starts with the next engine, so none is always timed first (or right after another)
        ms = {f"{name}_ms": median_ms(runs[name], a.repeat) for name in order[i % len(order):] + order[:i % len(order)]}
        o = ms["onnxruntime_ms"]
        rounds.append({**ms, "ratio": ms["tvm_ms"] / o, **({"default_ratio": ms["default_ms"] / o} if "default" in runs else {})})
    record = {
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": a.model, "pipeline": _pipeline(a), "revision": a.revision or _revision(),
        "mcpu": target["mcpu"],
        "threads": a.threads, "compile_s": round(compile_s, 1), "stats": stats,
        "max_rel_error_vs_torch": rel, "rounds": rounds,
        "best_ratio": min(r["ratio"] for r in rounds), "median_ratio": float(np.median([r["ratio"] for r in rounds])),
        **({"median_default_ratio": float(np.median([r["default_ratio"] for r in rounds])),
            "median_tuned_over_default": float(np.median([r["tvm_ms"] / r["default_ms"] for r in rounds]))}
           if "default" in runs else {}),
        "loadavg_1m": os.getloadavg()[0],
    }
    print(json.dumps(record))
    if a.save:
        out = Path(os.environ.get("INPROCESS_RESULTS", ROOT / "benchmarks" / "results" / "inprocess.json"))
        records = json.loads(out.read_text()) if out.exists() else []
        records.append(record)
        out.write_text(json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
