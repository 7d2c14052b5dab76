"""Timing and memory helpers, and the compile step the harness runs.

Each step of a benchmark (build the archive, compile, time one engine) runs in its own fresh
process (``in_child``), so that every peak-RSS figure belongs to that step alone and no thread
pool of one engine competes with another's while it is timed. The step functions are plain
module-level functions so a spawned process can import them; the build and engine steps of
each model are in benchmarks/suite.py.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import statistics
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

import numpy as np


# --------------------------------------------------------------------------- generic helpers


def physical_cores() -> int:
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def set_thread_env(threads: int) -> None:
    """Thread counts for every runtime, before any of them starts its pool."""
    # the TVM runtime uses one thread on this VM when TVM_NUM_THREADS is unset
    os.environ["TVM_NUM_THREADS"] = str(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def in_child(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``func(*args, **kwargs)`` in a fresh (spawned) interpreter and return its result.

    An exception in the child is raised here, with the child's traceback attached.
    """
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(func, *args, **kwargs).result()


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size in MiB (``ru_maxrss`` is in KiB on Linux); for RUSAGE_CHILDREN it is
    the largest of the terminated, waited-for children."""
    return resource.getrusage(who).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def time_calls(fn: Callable[[], Any], warmup: int, repeat: int) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def _steal(t1: Any, t0: Any) -> float:
    return max(0.0, getattr(t1, "steal", 0.0) - getattr(t0, "steal", 0.0))


def _busy(t: Any) -> float:
    return t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


@dataclass(frozen=True)
class Plan:
    """How many runs to time: after ``warmup`` untimed runs (fewer when one run is slow: warm-up
    stops once it has taken ``budget_s / 4``), as many as fit in ``budget_s``, at least
    ``min_repeat`` and at most ``max_repeat``."""

    warmup: int = 3
    max_repeat: int = 50
    min_repeat: int = 3
    budget_s: float = 15.0

    def runs_for(self, one_run_s: float) -> int:
        return max(self.min_repeat, min(self.max_repeat, int(self.budget_s / max(one_run_s, 1e-9))))


def timed_with_contention(fn: Callable[[], Any], plan: Plan) -> tuple[dict[str, Any], Any]:
    """Warm up, time the runs ``plan`` asks for, and measure how busy the machine was meanwhile.

    Returns the statistics and the first call's result. ``other_cpu_share`` is the CPU time
    used by other processes during the timed runs, as a share of all cores' wall time (0: this
    process had the machine; 0.5 on 2 cores: one core was taken by someone else); None when the
    timed runs took under a second (CPU time is counted in scheduler ticks). On a shared
    machine, read latencies with it.
    """
    import psutil

    first = None
    warm_s = 0.0
    last = 0.0
    for i in range(max(1, plan.warmup)):
        t0 = time.perf_counter()
        r = fn()
        last = time.perf_counter() - t0
        warm_s += last
        if i == 0:
            first = r
        if warm_s >= plan.budget_s / 4:
            break
    repeat = plan.runs_for(last)
    me = psutil.Process()
    sys0, own0, t0 = psutil.cpu_times(), me.cpu_times(), time.perf_counter()
    samples = time_calls(fn, 0, repeat)
    sys1, own1, t1 = psutil.cpu_times(), me.cpu_times(), time.perf_counter()
    own = (own1.user - own0.user) + (own1.system - own0.system)
    other = max(0.0, (_busy(sys1) - _busy(sys0)) - own)
    ncpu = psutil.cpu_count() or 1
    stats = {
        **summarize(samples),
        "warmup_runs": i + 1,
        "cpu_s": round(own, 3),
        "other_cpu_share": round(min(1.0, other / ((t1 - t0) * ncpu)), 3) if t1 - t0 >= 1.0 else None,
        # time the hypervisor gave this VM's CPUs to someone else (invisible to ``ps``)
        "steal_share": round(_steal(sys1, sys0) / ((t1 - t0) * ncpu), 3) if t1 - t0 >= 1.0 else None,
    }
    return stats, first


def wait_for_quiet(max_wait_s: float, threshold: float = 0.15, settle_s: float = 3.0) -> dict[str, float]:
    """Wait (at most ``max_wait_s``) until the machine's CPU use stays under ``threshold`` for
    ``settle_s`` seconds; returns how long it waited and the last utilisation seen."""
    import psutil

    start = time.monotonic()
    quiet_since = None
    util = psutil.cpu_percent(interval=0.5) / 100
    while time.monotonic() - start < max_wait_s:
        util = psutil.cpu_percent(interval=1.0) / 100
        if util < threshold:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle_s:
                break
        else:
            quiet_since = None
    return {"waited_s": round(time.monotonic() - start, 1), "cpu_util_before": round(util, 3)}


def summarize(samples_s: list[float]) -> dict[str, Any]:
    ms = [s * 1e3 for s in samples_s]
    return {
        "median_ms": statistics.median(ms),
        "p90_ms": float(np.percentile(ms, 90)),
        "min_ms": min(ms),
        "mean_ms": statistics.fmean(ms),
        "runs": len(ms),
        "samples_ms": [round(x, 4) for x in ms],
    }


# --------------------------------------------------------------------------- steps (in children)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def compile_step(
    job_name: str,
    archive: str,
    framework: str,
    data_input_config: str | None,
    compiler_options: dict[str, Any],
    out_dir: str,
    mcpu: str | None,
    threads: int,
    max_runtime_s: int,
) -> dict[str, Any]:
    """Compile through neo-local's public API for this host's x86_64 CPU; time it, measure it."""
    import json

    set_thread_env(threads)
    t_import = time.perf_counter()
    import neo_local
    import tvm

    import_s = time.perf_counter() - t_import
    if not mcpu:
        mcpu = str(tvm.target.codegen.llvm_get_system_cpu())
    collect = _Collect()
    logger = logging.getLogger("neo_local")
    logger.addHandler(collect)
    logger.setLevel(logging.INFO)
    options = {**compiler_options, "mcpu": mcpu}
    import psutil

    me = psutil.Process()
    sys0, own0 = psutil.cpu_times(), me.cpu_times()
    t0 = time.perf_counter()
    uri = neo_local.compile(
        CompilationJobName=job_name,
        RoleArn="arn:aws:iam::123456789012:role/neo",
        InputConfig={"S3Uri": archive, "Framework": framework,
                     **({"DataInputConfig": data_input_config} if data_input_config else {})},
        OutputConfig={
            "S3OutputLocation": out_dir,
            "TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"},
            "CompilerOptions": json.dumps(options),
        },
        StoppingCondition={"MaxRuntimeInSeconds": max_runtime_s},
    )
    compile_s = time.perf_counter() - t0
    sys1, own1 = psutil.cpu_times(), me.cpu_times()
    own = sum(getattr(own1, f) - getattr(own0, f) for f in ("user", "system", "children_user", "children_system"))
    other = max(0.0, _busy(sys1) - _busy(sys0) - own)
    artifact = Path(uri.removeprefix("file://"))
    library_bytes = None
    with tarfile.open(artifact, "r:*") as tar:
        for m in tar.getmembers():
            if m.name.endswith(".so"):
                library_bytes = (library_bytes or 0) + m.size
    built = [float(m.group(1)) for line in collect.lines if (m := re.match(r"Compiled in ([\d.]+) s", line))]
    return {
        "artifact": str(artifact),
        "artifact_bytes": artifact.stat().st_size,
        "library_bytes": library_bytes,
        "compile_s": compile_s,
        "cpu_s": round(own, 3),  # this process and its children (e.g. neo-local's verify step)
        "other_cpu_share": round(min(1.0, other / (compile_s * (psutil.cpu_count() or 1))), 3),
        "steal_share": round(_steal(sys1, sys0) / (compile_s * (psutil.cpu_count() or 1)), 3),
        "tvm_build_s": built[0] if built else None,  # from neo-local's progress log, if it says
        "import_s": import_s,
        "mcpu": mcpu,
        "compiler_options": options,
        "peak_rss_mb": peak_rss_mb(),
        "children_peak_rss_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),  # e.g. its verify process
        "log": collect.lines,
        "neo_local_version": getattr(neo_local, "__version__", None),
    }


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).max()) for x, y in zip(a, b))

