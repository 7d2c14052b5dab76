"""Opt-in tuning of the CPU schedules' knobs (AutoTVM-style templates over our own schedules).

For every conv, depthwise and matmul kernel of a model that has no record yet for the target,
the tuner times the default config, then candidates from the kernel's config space
(``schedules.*_space``), each kernel built alone with ``tvm.compile`` and timed with
``time_evaluator`` on random inputs, here or on a remote device through TVM RPC. The budget
(trials and/or minutes over the whole model) goes to the kernels in proportion to their
default time, interleaved so that a time limit cuts every kernel's search short rather than
skipping the last ones. A candidate whose outputs differ from the default's is dropped; a
winner is timed again against its default, in cache and with the caches flushed (``COLD``), and
kept only if faster both ways. The best config per kernel goes to the records database
(``records``), which every later compile reads.
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import tvm
from tvm import tirx

from neo_local.backends.cpu_schedule import bf16_dot
from neo_local.backends.cpu_schedule.builder import Builder, first_line
from neo_local.backends.cpu_schedule.records import Record, Records, describe, make_record, workload_key
from neo_local.backends.cpu_schedule.schedules import TUNABLE
from neo_local.targets.options import TuningOptions

Progress = Callable[[str], None]
#: the least time_evaluator spends per repeat, so that a kernel of microseconds is timed over many runs
MIN_REPEAT_MS = 20
REPEATS = 3
#: the longest default time of a kernel that may be tried single-threaded (a launch on TVM's pool:
#: 5-20 us as measured when this was set; on the pool Linux libraries carry: under 1 us while its
#: workers are awake)
SERIAL_MAX_S = 30e-6
#: re-timings of each winner against its default before it is recorded
CONFIRM_ROUNDS = 2
#: TVM's runtime function that evicts every argument but the first from the CPU's caches
#: (``clflush``) before each timed call. The search times kernels in cache; a winner is kept only
#: if it is also faster timed cold, as a kernel runs inside a model whose weights and activations
#: outgrow the caches. Timed in cache only, SqueezeNet's search kept a stem config 1% faster than
#: the default and 20% slower cold (194 -> 234 us), and a 1x1 conv's 1% faster, 35% slower cold
#: (30 -> 40.5 us). Timing every candidate cold instead, its search found nothing faster than the
#: defaults, and ShuffleNetV2's kept single-call wins of 5-10 us kernels. Measured in one process
#: (znver4, 40 rounds alternating with the default build): SqueezeNet's records from the search in
#: cache 1.017x, those confirmed cold too 0.986x; ShuffleNetV2's 1.002x and 1.006x
COLD = "cache_flush_cpu_non_first_arg"
#: calls timed cold, one after each flush; their median is the cold time
COLD_CALLS = 30


@dataclass(frozen=True)
class Workload:
    """One distinct kernel: its key, kind, function and config space (default first)."""

    key: str
    kind: str
    func: tirx.PrimFunc
    space: tuple
    lanes: int
    max_acc: int

    def scheduled(self, config: object) -> tirx.PrimFunc:
        return TUNABLE[self.kind].schedule(self.func, self.lanes, self.max_acc, config)


@dataclass(frozen=True)
class Summary:
    """What one tuning run did, for the job log and the benchmark record."""

    workloads: int
    already_tuned: int
    trials: int
    seconds: float
    speedup: float  # sum of the defaults' times / sum of the best times, over the kernels tuned now

    def as_stats(self) -> dict[str, Any]:
        return {"tuning_trials": self.trials, "tuning_s": round(self.seconds, 1), "tuned_now": self.workloads,
                "tuning_kernel_speedup": round(self.speedup, 3)}

    def line(self) -> str:
        return (f"tuned {self.workloads} kernel(s) in {self.trials} trials, {self.seconds:.0f} s "
                f"({self.already_tuned} already had records); kernels {self.speedup:.2f}x faster than the defaults")


class Measurer:
    """Builds one kernel (in the builder's child process) and times it on this machine; a context
    manager that ends the builder."""

    where = "this machine"

    def __init__(self, tvm_target: Mapping[str, Any], linker: str | None = None) -> None:
        self.builder = Builder(tvm_target, linker)

    def __enter__(self) -> "Measurer":
        return self

    def __exit__(self, *_: object) -> None:
        self.builder.close()

    def load(self, library: Path) -> tuple[Any, Any]:
        """(module, device) where the kernel runs."""
        return tvm.runtime.load_module(str(library)), tvm.cpu(0)

    def run(self, func: tirx.PrimFunc, inputs: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        """(seconds per call, the buffers after one call)."""
        module, dev, args = self._loaded(func, inputs)
        outs = [a.numpy() for a in args]
        return _in_cache(module, dev, args), outs

    def run_both(self, func: tirx.PrimFunc, inputs: list[np.ndarray]) -> tuple[float, float]:
        """(seconds per call in cache, seconds per call with cold caches: ``COLD``)."""
        module, dev, args = self._loaded(func, inputs)
        cold = module.time_evaluator("main", dev, number=1, repeat=COLD_CALLS, f_preproc=COLD)
        return _in_cache(module, dev, args), float(np.median(cold(*args).results))

    def _loaded(self, func: tirx.PrimFunc, inputs: list[np.ndarray]) -> tuple[Any, Any, list[Any]]:
        """The kernel built and loaded, its arguments on the device, after one call."""
        module, dev = self.load(self.builder.build(func))
        args = [tvm.runtime.tensor(a, dev) for a in inputs]
        module["main"](*args)
        return module, dev, args


class RemoteMeasurer(Measurer):
    """Builds here (linked with the target's linker), uploads and times on the device of an RPC session."""

    def __init__(self, tvm_target: Mapping[str, Any], session: Any, where: str, linker: str | None) -> None:
        super().__init__(tvm_target, linker)
        self.session = session
        self.where = where

    def load(self, library: Path) -> tuple[Any, Any]:
        self.session.upload(str(library), library.name)
        return self.session.load_module(library.name), self.session.device("cpu", 0)


def tune(mod: tvm.IRModule, target_key: str, lanes: int, max_acc: int, options: TuningOptions,
         records: Records, measurer: Measurer, progress: Progress) -> Summary:
    """Tune the module's kernels that ``records`` lacks; adds the results to ``records``."""
    started = time.monotonic()
    deadline = started + options.minutes * 60 if options.minutes else math.inf
    all_loads = workloads(mod, lanes, max_acc)
    todo = [w for w in all_loads if w.key not in records.best]
    progress(f"tuning {len(todo)} kernel(s) on {measurer.where} (budget: "
             f"{_budget(options)}; {len(all_loads) - len(todo)} already in {records.path})")
    budget = options.trials if options.trials is not None else sum(len(w.space) for w in todo)
    search = _Search(todo, measurer, progress)
    search.defaults(budget, deadline)
    spaces = [_candidates(w, t) for w, t in zip(search.measured, search.default_s)]
    plan = _plan(search.default_s, [len(c) for c in spaces], budget - search.trials)
    order = _interleave(search.measured, spaces, plan)
    for n, (index, config) in enumerate(order, 1):
        if time.monotonic() > deadline:
            progress("tuning: the time budget is spent")
            break
        search.try_config(index, config)
        if n % max(1, len(order) // 10) == 0:
            progress(f"tuning: {search.trials} of {search.trials - n + len(order)} trials, "
                     f"{time.monotonic() - started:.0f} s")
    search.confirm()
    new = search.records(target_key)
    records.add(new)
    before, after = sum(r.default_us for r in new), sum(r.time_us for r in new)
    summary = Summary(len(new), len(all_loads) - len(todo), search.trials, time.monotonic() - started,
                      before / after if after else 1.0)
    progress("tuning: " + summary.line())
    return summary


def _budget(options: TuningOptions) -> str:
    parts = ([f"{options.trials} trials"] if options.trials is not None else []) + (
        [f"{options.minutes:g} min"] if options.minutes is not None else [])
    return " or ".join(parts)


def workloads(mod: tvm.IRModule, lanes: int, max_acc: int) -> list[Workload]:
    """The module's distinct tunable kernels, each with its config space (default first)."""
    found: dict[str, Workload] = {}
    for _, func in mod.functions_items():
        if not isinstance(func, tirx.PrimFunc) or func.attrs.get("tirx.is_scheduled", False):
            continue
        key = workload_key(func)
        if key in found:
            continue
        for kind, tunable in TUNABLE.items():
            space = _space(tunable, func, lanes, max_acc)
            if space:
                found[key] = Workload(key, kind, func, tuple(space), lanes, max_acc)
                break
    return list(found.values())


def _space(tunable, func: tirx.PrimFunc, lanes: int, max_acc: int) -> list:
    """The config space, or [] when the kind's schedule does not take the function."""
    try:
        space = tunable.space(func, lanes, max_acc)
        return space if space and tunable.schedule(func, lanes, max_acc, space[0]) is not None else []
    except Exception:  # noqa: BLE001 (TVM's schedule errors: another kind's function)
        return []


def _plan(default_s: list[float], sizes: list[int], trials: int) -> list[int]:
    """Candidates per kernel: ``trials`` shared in proportion to the default times (each next
    trial to the kernel with the most default time per trial given), none beyond a kernel's space."""
    plan = [0] * len(sizes)
    for _ in range(max(0, trials)):
        open_ = [i for i, n in enumerate(sizes) if plan[i] < n]
        if not open_:
            break
        plan[max(open_, key=lambda i: default_s[i] / (plan[i] + 1))] += 1
    return plan


def _candidates(work: Workload, default_s: float) -> list:
    """The configs to sample for a kernel: its space but the default, and without the
    single-threaded configs unless the kernel is tiny (they are there to save the thread pool's
    launch on such kernels; on a bigger one a single-threaded config wins only when other work
    holds the other cores while it is timed, and loses in the model)."""
    serial_ok = default_s <= SERIAL_MAX_S
    return [c for c in work.space[1:] if serial_ok or getattr(c, "parallel", "fused") != "none"]


def _interleave(measured: list[Workload], spaces: list[list], plan: list[int]) -> list[tuple[int, object]]:
    """(kernel index, config) in the order tried: the k-th candidate of kernel i at (k + 1) / plan[i],
    so every kernel progresses at its share's pace; candidates sampled from its space with a seed
    of the kernel's key (the same search in every process)."""
    order = []
    for i, (w, space, n) in enumerate(zip(measured, spaces, plan)):
        picks = random.Random(w.key).sample(space, n)
        order += [((k + 1) / n, i, c) for k, c in enumerate(picks)]
    return [(i, c) for _, i, c in sorted(order, key=lambda t: (t[0], t[1]))]


class _Search:
    """The measured kernels, their default times and outputs, and the best config of each."""

    def __init__(self, todo: list[Workload], measurer: Measurer, progress: Progress) -> None:
        self.todo = todo
        self.measurer = measurer
        self.progress = progress
        self.measured: list[Workload] = []
        self.default_s: list[float] = []
        self.best: list[tuple[float, object]] = []
        self._inputs: list[list[np.ndarray]] = []
        self._expected: list[list[np.ndarray]] = []
        self.trials = 0

    def defaults(self, budget: int, deadline: float) -> None:
        """Time each kernel's default config (one trial each) while the budget lasts."""
        for w in self.todo:
            if self.trials >= budget or time.monotonic() > deadline:
                self.progress(f"tuning: the budget ends before {len(self.todo) - len(self.measured)} kernel(s)")
                return
            inputs = random_inputs(w.func)
            self.trials += 1
            try:
                seconds, outs = self.measurer.run(w.scheduled(w.space[0]), inputs)
            except Exception as exc:  # noqa: BLE001 (a kernel that cannot be built alone)
                self.progress(f"tuning: {w.kind} {describe(w.func)}: default not measurable ({first_line(exc)})")
                continue
            self.measured.append(w)
            self.default_s.append(seconds)
            self.best.append((seconds, w.space[0]))
            self._inputs.append(inputs)
            self._expected.append(outs)
            self.progress(f"tuning: {w.kind} {describe(w.func)}: default {seconds * 1e6:.1f} us, "
                          f"{len(w.space)} configs")

    def try_config(self, i: int, config: object) -> None:
        w = self.measured[i]
        self.trials += 1
        try:
            seconds, outs = self.measurer.run(w.scheduled(config), self._inputs[i])
        except Exception as exc:  # noqa: BLE001 (a config TVM cannot lower: skipped)
            self.progress(f"tuning: trial {self.trials} {w.kind} {config}: failed ({first_line(exc)})")
            return
        if not all(_close(a, b) for a, b in zip(outs, self._expected[i])):
            self.progress(f"tuning: trial {self.trials} {w.kind} {config}: wrong outputs, dropped")
            return
        if seconds < self.best[i][0]:
            self.best[i] = (seconds, config)
            self.progress(f"tuning: trial {self.trials} {w.kind} {describe(w.func)}: {seconds * 1e6:.1f} us "
                          f"({self.default_s[i] / seconds:.2f}x the default) with {config}")

    def confirm(self) -> None:
        """Time each winner and its default again, alternately (``CONFIRM_ROUNDS`` each, the
        fastest run of each kept), in cache and cold (``COLD``): a default timed during a burst of
        other work on the machine must not crown a candidate that is not faster, nor a candidate
        faster only with its data in cache. Not counted as trials."""
        for i, w in enumerate(self.measured):
            config = self.best[i][1]
            if config == w.space[0]:
                continue
            default, best = (math.inf, math.inf), (math.inf, math.inf)
            try:
                for _ in range(CONFIRM_ROUNDS):
                    default = _fastest(default, self.measurer.run_both(w.scheduled(w.space[0]), self._inputs[i]))
                    best = _fastest(best, self.measurer.run_both(w.scheduled(config), self._inputs[i]))
            except Exception as exc:  # noqa: BLE001 (the device went away: keep what was measured)
                self.progress(f"tuning: {w.kind} {describe(w.func)}: not confirmed ({first_line(exc)})")
                continue
            self.default_s[i] = min(self.default_s[i], default[0])
            wins = best[0] < self.default_s[i] and best[1] < default[1]
            self.best[i] = (best[0], config) if wins else (self.default_s[i], w.space[0])
            self.progress(f"tuning: {w.kind} {describe(w.func)}: confirmed {self.default_s[i] * 1e6:.1f} us default, "
                          f"{best[0] * 1e6:.1f} us tuned (cold: {default[1] * 1e6:.1f} and {best[1] * 1e6:.1f} us); "
                          f"keeping {self.best[i][1]}")

    def records(self, target_key: str) -> list[Record]:
        return [make_record(w.key, target_key, w.kind, config, seconds * 1e6, default * 1e6, describe(w.func))
                for w, default, (seconds, config) in zip(self.measured, self.default_s, self.best)]


def _in_cache(module: Any, dev: Any, args: list[Any]) -> float:
    """Seconds per call of the loaded kernel, its data in cache: the fastest of ``REPEATS``."""
    timer = module.time_evaluator("main", dev, number=1, repeat=REPEATS, min_repeat_ms=MIN_REPEAT_MS)
    return min(timer(*args).results)


def _fastest(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """Per timing (in cache, cold), the faster of two."""
    return min(a[0], b[0]), min(a[1], b[1])


def random_inputs(func: tirx.PrimFunc) -> list[np.ndarray]:
    """One array per buffer parameter: uniform in [-1, 1) (integers in [-3, 3]), seeded. Buffers of
    ``bf16_dot.BITS`` hold bfloat16 bit patterns in the tuned kernels (a bfloat16 build's convs):
    those of uniform floats, since small integers there read as NaNs and denormals."""
    rng = np.random.default_rng(0)
    arrays = []
    for p in func.params:
        shape = [int(d) for d in p.shape]
        dtype = str(p.dtype)
        if dtype == bf16_dot.BITS:
            floats = rng.uniform(-1, 1, shape).astype("float32")
            arrays.append((floats.view("uint32") >> 16).astype("uint16").view(dtype))
        elif dtype.startswith(("int", "uint")):
            arrays.append(rng.integers(-3 if dtype.startswith("int") else 0, 4, shape).astype(dtype))
        else:
            arrays.append(rng.uniform(-1, 1, shape).astype(dtype))
    return arrays


def _close(got: np.ndarray, want: np.ndarray) -> bool:
    """Equal up to float rounding relative to the buffer's largest value (another summation order
    moves an element near zero by more than its own magnitude allows)."""
    if not want.size:
        return True
    error = np.abs(got.astype("float64") - want).max()
    return bool(error <= 1e-4 * max(float(np.abs(want).max()), 1e-30))


def stderr_progress(message: str) -> None:
    """A progress line on stderr, which a job's worker writes to the job log."""
    from neo_local.jobs.joblog import stamp

    sys.stderr.write(f"{stamp()} {message}\n")
    sys.stderr.flush()
