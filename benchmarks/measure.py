"""Process, memory and machine-load helpers, and the compile step the harness runs (the timing
loop itself is ``neo_local.benchmark``, shared with ``neo-local benchmark``).

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
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

import numpy as np

from neo_local.benchmark import busy_s, steal_s

#: seconds between two engines' timings: a library's thread pool spins 6 ms after its last kernel
#: (runtime/native/thread_pool.c), and would take a core from the next engine
POOL_IDLE_S = 0.02


# --------------------------------------------------------------------------- generic helpers


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


class LiveChild:
    """A fresh (spawned) interpreter that stays up and answers requests: ``serve(conn, *args)``
    runs there, reads requests from ``conn`` until None and sends ``("ok", result)`` or
    ``("error", traceback)`` for each (``serve_requests``). The harness's ``--live`` rounds keep
    each engine loaded in one such child, and time the engines in turn."""

    def __init__(self, serve: Callable[..., None], *args: Any) -> None:
        ctx = get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=serve, args=(child, *args), daemon=True)
        self._process.start()
        child.close()

    def ask(self, request: Any) -> Any:
        """``request``'s answer; the child's exception, or its death, raised here."""
        self._conn.send(request)
        try:
            status, value = self._conn.recv()
        except EOFError:
            self._process.join(5)
            raise RuntimeError(f"the benchmark child died (exit code {self._process.exitcode})") from None
        if status == "error":
            raise RuntimeError(f"in the benchmark child:\n{value}")
        return value

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()


def serve_requests(conn: Any, answer: Callable[[Any], Any]) -> None:
    """A ``LiveChild``'s loop: each request until None gets ``answer(request)`` or the traceback."""
    import traceback

    while (request := conn.recv()) is not None:
        try:
            conn.send(("ok", answer(request)))
        except Exception:  # noqa: BLE001 - every failure goes back to the parent, which raises it
            conn.send(("error", traceback.format_exc()))


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size in MiB (``ru_maxrss`` is in KiB on Linux); for RUSAGE_CHILDREN it is
    the largest of the terminated, waited-for children."""
    return resource.getrusage(who).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


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


# --------------------------------------------------------------------------- steps (in children)


def sgemm_peak(threads: int, n: int = 1024, runs: int = 20) -> dict[str, Any]:
    """This machine's float32 matmul rate: numpy's ``(n x n) @ (n x n)`` (its BLAS, ``threads``
    threads), best of ``runs``: the reference that models' GFLOP/s are a fraction of."""
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    seconds = []
    with threadpool_limits(limits=threads, user_api="blas"):
        a @ b  # warm-up: thread pool, caches
        for _ in range(runs):
            t0 = time.perf_counter()
            a @ b
            seconds.append(time.perf_counter() - t0)
    flops = 2 * n**3
    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    return {
        "gflops": flops / min(seconds) / 1e9,
        "median_gflops": flops / float(np.median(seconds)) / 1e9,
        "how": f"numpy.matmul float32 {n}x{n} @ {n}x{n}, best of {runs}",
        "blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip(),
        "threads": threads,
    }



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
    import tvm  # noqa: F401 (timed with neo_local's import: the compiler's start-up cost)

    import_s = time.perf_counter() - t_import
    if not mcpu:
        from neo_local.targets.cpu_features import host_cpu_name

        mcpu = host_cpu_name()
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
    other = max(0.0, busy_s(sys1) - busy_s(sys0) - own)
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
        "steal_share": round(steal_s(sys1, sys0) / (compile_s * (psutil.cpu_count() or 1)), 3),
        "tvm_build_s": built[0] if built else None,  # from neo-local's progress log, if it says
        "import_s": import_s,
        "mcpu": mcpu,
        "compiler_options": options,
        "peak_rss_mb": peak_rss_mb(),
        "children_peak_rss_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),  # e.g. its verify process
        "log": collect.lines,
        "neo_local_version": getattr(neo_local, "__version__", None),
    }
