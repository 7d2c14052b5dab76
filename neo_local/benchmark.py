"""Time a compiled artifact, and optionally the source model it came from, in one run
(``neo-local benchmark``; the benchmarks/ harness times every engine with the same loop).

A latency taken on a machine others share means little without how busy the machine was, so
every timing also records the CPU time other processes (and the hypervisor: steal) used while
it ran. How many runs are timed follows a ``Plan``: a few untimed warm-up runs (fewer when one
run is slow), then as many runs as fit in a time budget, within a minimum and a maximum.
"""

from __future__ import annotations

import math
import statistics
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from neo_local.frontends.base import TensorSpec
    from neo_local.rpc import Remote, RemoteVm

#: ``--compare`` engines and the model files each one reads
SOURCE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "onnxruntime": (".onnx",),
    "torch": (".pt", ".pth", ".pt2"),
    "tflite": (".tflite",),
}


@dataclass(frozen=True)
class Plan:
    """How many runs to time: after ``warmup`` untimed runs that last at least ``warmup_s``
    seconds (fewer when one run is slow: warm-up stops once it has taken ``budget_s / 4``), as
    many as fit in ``budget_s``, at least ``min_repeat`` and at most ``max_repeat``.

    ``warmup_s``: a new process's first tens of milliseconds run slower than the rest (thread
    pools settling on cores: onnxruntime's first 50 runs of a 0.09 ms model took 0.10-0.13 ms),
    so a sub-millisecond model's few warm-up runs would leave its timed runs in that phase.

    ``timed_s``: the timed runs span at least this long where the budget allows, beyond
    ``max_repeat`` for a fast model. 50 runs of a 16 us model last 0.8 ms, one slow moment of a
    shared machine: the harness's three rounds of the TFLite int8 CNN gave 2.72, 1.28 and 1.64x
    the interpreter; timed for 0.5 s, 1.35, 1.42 and 1.48x."""

    warmup: int = 3
    max_repeat: int = 50
    min_repeat: int = 3
    budget_s: float = 15.0
    warmup_s: float = 0.2
    timed_s: float = 0.5

    def warm(self, runs: int, seconds: float) -> bool:
        """Whether ``runs`` warm-up runs that took ``seconds`` in all are enough."""
        done = runs >= max(1, self.warmup) and seconds >= self.warmup_s
        return runs >= 1 and (done or seconds >= self.budget_s / 4)

    def runs_for(self, one_run_s: float) -> int:
        one = max(one_run_s, 1e-9)
        wanted = max(self.max_repeat, math.ceil(self.timed_s / one))
        return max(self.min_repeat, min(wanted, int(self.budget_s / one)))


SAMPLES_KEPT = 64  # per timing in a results file: enough to see a trend or a phase change within it


@dataclass(frozen=True)
class Timing:
    """Wall-clock milliseconds of the timed runs, and how busy the machine was meanwhile.

    ``other_cpu_share``: CPU time other processes used during the timed runs, as a share of all
    cores' wall time (0.5 on 2 cores: one core was taken by someone else); ``steal_share``: time
    the hypervisor gave this VM's CPUs to others. Both None when the runs took under a second
    (CPU time is counted in scheduler ticks), and all three None for runs on a remote device
    (this machine's figures would say nothing about it)."""

    samples_ms: tuple[float, ...]
    warmup_runs: int
    cpu_s: float | None
    other_cpu_share: float | None
    steal_share: float | None

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.samples_ms, q))

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    def summary(self) -> dict[str, Any]:
        """What ``neo-local benchmark`` prints: percentiles, not samples."""
        return {
            "p50_ms": self.median_ms,
            "p90_ms": self.percentile(90),
            "p99_ms": self.percentile(99),
            "mean_ms": statistics.fmean(self.samples_ms),
            "min_ms": min(self.samples_ms),
            "runs": len(self.samples_ms),
            "warmup_runs": self.warmup_runs,
            "other_cpu_share": self.other_cpu_share,
            "steal_share": self.steal_share,
        }

    def as_dict(self) -> dict[str, Any]:
        """Every figure, and the samples thinned to at most ``SAMPLES_KEPT``, every
        ``samples_step``-th in the order they ran (the benchmarks/ harness's results files, whose
        older records call the median ``median_ms``). Kept whole, half a second of a 10 us model
        is 50,000 samples: two harness runs grew a results file by 40 MB."""
        step = max(1, math.ceil(len(self.samples_ms) / SAMPLES_KEPT))
        return {"median_ms": self.median_ms, **self.summary(), "cpu_s": self.cpu_s,
                "samples_ms": [round(x, 4) for x in self.samples_ms[::step]], "samples_step": step}


def busy_s(t: Any) -> float:
    """CPU seconds spent busy in ``psutil.cpu_times()`` (all states but idle, iowait, steal)."""
    return t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


def steal_s(t1: Any, t0: Any) -> float:
    """Seconds the hypervisor gave this VM's CPUs to others between two ``cpu_times()``."""
    return max(0.0, getattr(t1, "steal", 0.0) - getattr(t0, "steal", 0.0))


def time_runs(fn: Callable[[], Any], plan: Plan) -> tuple[Timing, Any]:
    """Warm up, time the runs ``plan`` asks for, and measure how busy the machine was meanwhile.
    Returns the timing and the first call's result."""
    import psutil

    first = None
    warm_s = last = 0.0
    warmup_runs = 0
    while not plan.warm(warmup_runs, warm_s):
        t0 = time.perf_counter()
        r = fn()
        last = time.perf_counter() - t0
        warm_s += last
        warmup_runs += 1
        if warmup_runs == 1:
            first = r
    me = psutil.Process()
    sys0, own0 = psutil.cpu_times(), me.cpu_times()
    samples = []
    start = time.perf_counter()
    for _ in range(plan.runs_for(last)):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    wall = time.perf_counter() - start
    sys1, own1 = psutil.cpu_times(), me.cpu_times()
    own = (own1.user - own0.user) + (own1.system - own0.system)
    other = max(0.0, (busy_s(sys1) - busy_s(sys0)) - own)
    ncpu = psutil.cpu_count() or 1
    timed_long_enough = wall >= 1.0
    timing = Timing(
        samples_ms=tuple(samples),
        warmup_runs=warmup_runs,
        cpu_s=round(own, 3),
        other_cpu_share=round(min(1.0, other / (wall * ncpu)), 3) if timed_long_enough else None,
        steal_share=round(steal_s(sys1, sys0) / (wall * ncpu), 3) if timed_long_enough else None,
    )
    return timing, first


def time_on_device(run: Callable[[int], Sequence[float]], plan: Plan) -> Timing:
    """``time_runs`` for runs that a remote device times itself: ``run(n)`` makes n runs there
    and returns their seconds. Warm-up ends as there."""
    warm: list[float] = []
    while not plan.warm(len(warm), sum(warm)):
        warm += run(1)
    samples = run(plan.runs_for(warm[-1]))
    return Timing(tuple(s * 1e3 for s in samples), len(warm), None, None, None)


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """The largest absolute difference between two engines' outputs (in float64)."""
    if len(a) != len(b):
        raise ValueError(f"the engines gave {len(a)} and {len(b)} outputs")
    return max(float(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).max()) for x, y in zip(a, b))


# --------------------------------------------------------------------------- the CLI's engines


def find_source_file(model: Path, engine: str, into: Path) -> Path:
    """The model file ``engine`` reads: ``model`` itself, or the one such file in a .tar.gz
    archive (as uploaded to a compilation job), unpacked under ``into``."""
    suffixes = SOURCE_SUFFIXES[engine]
    if not model.name.endswith((".tar.gz", ".tgz", ".tar")):
        if model.suffix not in suffixes:
            raise ValueError(f"{engine} reads {'/'.join(suffixes)} files, not {model.name}")
        return model
    with tarfile.open(model) as tar:
        tar.extractall(into, filter="data")
    found = sorted(p for p in into.rglob("*") if p.is_file() and p.suffix in suffixes)
    if len(found) != 1:
        listing = ", ".join(str(p.relative_to(into)) for p in found) or "none"
        raise ValueError(f"{model.name} must hold exactly one {'/'.join(suffixes)} file for {engine}; found: {listing}")
    return found[0]


def open_source(engine: str, path: Path, feeds: Mapping[str, np.ndarray], threads: int) -> Callable[[], list]:
    """A call that runs ``engine`` on ``feeds`` (by input name, in the artifact's order)."""
    if engine == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda: session.run(None, dict(feeds))
    if engine == "torch":
        import torch

        torch.set_num_threads(threads)
        module = torch.export.load(str(path)).module() if path.suffix == ".pt2" else torch.jit.load(str(path)).eval()
        args = [torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()]

        def run_torch() -> list:
            with torch.inference_mode():
                out = module(*args)
            return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else (out,))]

        return run_torch
    if engine == "tflite":
        import warnings

        from neo_local.frontends.tf_convert import import_tensorflow

        tf = import_tensorflow()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the notice that LiteRT is its successor
            interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=threads)  # default delegates
        interpreter.allocate_tensors()
        details = interpreter.get_input_details()
        by_name = {d["name"]: d["index"] for d in details}
        if set(by_name) != set(feeds):
            raise ValueError(f"the TFLite model's inputs are {sorted(by_name)}, the artifact's {list(feeds)}")
        outputs = [d["index"] for d in interpreter.get_output_details()]

        def run_tflite() -> list:
            for name, value in feeds.items():
                interpreter.set_tensor(by_name[name], value)
            interpreter.invoke()
            return [interpreter.get_tensor(i) for i in outputs]

        return run_tflite
    raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(SOURCE_SUFFIXES)}")


@dataclass(frozen=True)
class Comparison:
    engine: str
    model: str
    timing: Timing
    max_abs_diff: float


@dataclass(frozen=True)
class Report:
    threads: int
    inputs: dict[str, list[int]]
    neo_local: Timing
    compared: Comparison | None = None
    remote: Remote | None = None  # where it ran, when not in this process

    @property
    def ratio(self) -> float | None:
        """neo-local's median over the compared engine's (below 1: neo-local is faster)."""
        return None if self.compared is None else self.neo_local.median_ms / self.compared.timing.median_ms

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"threads": self.threads, "inputs": self.inputs, "neo_local": self.neo_local.summary()}
        if self.remote is not None:
            out["remote"] = self.remote.summary()
        if self.compared is not None:
            c = self.compared
            out["compare"] = {"engine": c.engine, "model": c.model, **c.timing.summary(), "max_abs_diff": c.max_abs_diff}
            out["ratio"] = self.ratio
        return out


def benchmark_model(
    model: Any,
    plan: Plan,
    threads: int,
    feeds: Mapping[str, np.ndarray] | None = None,
    compare: tuple[str, Path] | None = None,
    seed: int = 0,
) -> Report:
    """Time a loaded artifact (``neo_local.runtime.DLRModel``) on ``feeds`` (default: seeded
    inputs of its shapes), then, with ``compare`` = (engine, source model), that engine on the
    same inputs; one after the other, in this process."""
    from neo_local.frontends.base import TensorSpec

    specs = tuple(TensorSpec(n, tuple(s), d) for n, s, d in
                  zip(model.get_input_names(), model.get_input_shapes(), model.get_input_dtypes()))
    feeds = input_values(specs, feeds, seed)
    timing, ours = time_runs(lambda: model.run(feeds), plan)
    compared = None
    if compare is not None:
        engine, source = compare
        with tempfile.TemporaryDirectory(prefix="neo-local-benchmark-") as tmp:
            run = open_source(engine, find_source_file(source, engine, Path(tmp)), feeds, threads)
            theirs_timing, theirs = time_runs(run, plan)
        compared = Comparison(engine, str(source), theirs_timing, max_abs_diff(ours, theirs))
    return Report(threads, {n: list(v.shape) for n, v in feeds.items()}, timing, compared)


def benchmark_remote(
    vm: RemoteVm,
    specs: Sequence[TensorSpec],
    plan: Plan,
    threads: int | None,
    feeds: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
) -> tuple[Report, list[np.ndarray]]:
    """Time an artifact loaded on a remote device (``neo_local.rpc.RemoteVm``) on ``feeds``
    (default: seeded inputs of ``specs``), with ``threads`` threads there (None: the device's
    default). Returns the report and the outputs of one run, copied back."""
    feeds = input_values(specs, feeds, seed)
    used = vm.set_threads(threads)
    vm.set_inputs(list(feeds.values()))
    outputs = vm.run()
    timing = time_on_device(vm.timer(), plan)
    return Report(used, {n: list(v.shape) for n, v in feeds.items()}, timing, remote=vm.remote), outputs


def input_values(
    specs: Sequence[TensorSpec], feeds: Mapping[str, np.ndarray] | None, seed: int
) -> dict[str, np.ndarray]:
    """``feeds`` (or seeded inputs) by input name in the artifact's order, in its dtypes."""
    from neo_local.verify import sample_inputs

    feeds = dict(feeds) if feeds is not None else sample_inputs(tuple(specs), seed)
    return {s.name: np.asarray(feeds[s.name], dtype=s.dtype) for s in specs}
