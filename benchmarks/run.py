"""Benchmark neo-local's compiled models against each framework's own runtime on this host.

    .venv/bin/python -m benchmarks.run [--models resnet50_like,resnet_like] [--frameworks KERAS,TFLITE|all]
                                       [--rounds R] [--repeat N] [--min-time S] [--budget S] [--threads N]
                                       [--live] [--no-save]
                                       [--compiler-options '{"tuning": {"trials": 200}}']

For each model (benchmarks/suite.py: one or more per framework family): build its archive with
the builders in models/, compile it with ``neo_local.compile`` for this host's CPU
(TargetPlatform LINUX/X86_64, CompilerOptions mcpu = LLVM's name for the host CPU), then time,
in this same run, on all physical cores: the artifact through ``neo_local.runtime.DLRModel``,
and the engines the entry compares with (onnxruntime and torch for the ONNX CNNs; TensorFlow,
Keras, the TFLite interpreter, xgboost, scikit-learn for theirs; onnxruntime on neo-local's
ONNX translation for MXNet and DarkNet, which cannot be installed here). The ratio
neo-local / engine is recorded (below: how), and each engine's GFLOP/s: the model's
convolution and matmul FLOPs (benchmarks/flops.py, counted once per model) over its median,
also as a fraction of this machine's float32 sgemm rate, measured at the start of the same
run (numpy's 1024x1024 matmul; ``measure.sgemm_peak``). Every engine is timed by the loop of
``neo-local benchmark`` (``neo_local.benchmark.time_runs``), each step in its own fresh
process (see benchmarks/measure.py).

On a shared machine the load moves between timings taken one after the other, so the engines
are timed in ``--rounds`` interleaved rounds (round 1: neo-local, then each compared engine;
round 2 the same order turned by one, starting with the second engine; ...: each engine takes each
place in turn, since the first timing after the idle wait can run slow: two builds of BERT-style
differing in one 6 us kernel, timed first and last in each of 3 rounds, 0.485 0.427 0.490 against
0.421 0.413 0.413 ms), each timing in a fresh child with ``--budget / --rounds`` seconds of
runs, at most ``--repeat`` of them unless those would span under ``--min-time`` (a TFLite CNN
of 16 us: 50 runs are 0.8 ms, and its three rounds had given 2.72, 1.28 and 1.64x the
interpreter). Before each round the harness waits (up to ``--quiet-wait`` s) for the machine to be idle;
a round in which other processes took more than ``--max-other-cpu`` of the CPU while any of its
engines was timed is timed again, whole, up to ``--attempts`` times, and the least disturbed try
is kept. The ratio neo-local / engine recorded is the median over rounds of each round's ratio
(two timings seconds apart; ``ratio_rounds`` keeps them), and each engine's ``median_ms`` the
median of its round medians (``latency[engine]["rounds"]`` keeps every round's figures, and of
its samples at most 64, every ``samples_step``-th: records before 2026-11-29 were thinned so too).

``--live`` keeps each engine loaded in one child for all rounds (``measure.LiveChild``), and a
round asks each in turn for its timing, 20 ms apart. Then rounds can be many and short (``--rounds
20 --budget 10 --quiet-wait 0``), and the two timings of a round are a second apart, not the
seconds of starting a process and loading an engine. Why: this 2-vCPU VM has phases, seconds to
minutes long, in which any two-threaded engine runs 2-2.5x slower (the TFLite int8 CNN: ours
11.5 -> 27-40 us, the interpreter's 10.9 -> 19-24 us, each in fresh processes one after the
other; one thread alone runs at 16.4 us throughout, except for the first second after the other
vCPU turns busy: 32 us). A fresh-process round samples one phase for one engine and another for
the next; live rounds sample both engines in the same phase. The
outputs compared (``max_abs_diff``, and ``max_rel_diff``: ``verify.compare``'s relative error of
the first engine against the second, the figure a job's verification checks and a bfloat16
build's accuracy) are those of the first round.

Tuning records: a compile without its own ``tuning`` option reads an empty records database,
not the user's, so "default" means no tuned kernels. A variant (``--compiler-options``: tuned,
bfloat16) is compiled twice, as asked and as the default, and both builds are timed in the same
rounds: ``ratio["tvm_over_neo_local_default"]`` is the variant over the default build.

A record (timestamp, git commit, versions, host, settings, numbers) is appended to
``benchmarks/results/<cpu-model>-<mcpu>-<N>c.json`` and a table is printed;
``python -m benchmarks.chart`` draws every results file as one HTML page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from itertools import combinations
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmarks import flops, measure, suite
from neo_local.benchmark import Plan, max_abs_diff
from neo_local.targets.cpu_features import physical_cores
from neo_local.targets.options import BFLOAT16, CompilerOptions
from neo_local.verify import compare

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / ".cache"  # ignored by git
PACKAGES = ("numpy", "torch", "onnx", "onnxruntime", "apache-tvm", "apache-tvm-ffi", "psutil", "tensorflow-cpu",
            "keras", "xgboost", "scikit-learn", "treelite", "tl2cgen")


# --------------------------------------------------------------------------- host / provenance


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def host_info(mcpu: str | None) -> dict[str, Any]:
    import psutil

    flags = cpu_flags()
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "llvm_cpu": mcpu,
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "simd": sorted(f for f in flags if f in {"avx", "avx2", "fma"} or f.startswith("avx512")),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def results_path(host: dict[str, Any]) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", host["cpu_model"].lower()).strip("-")
    if host.get("llvm_cpu"):
        slug += f"-{host['llvm_cpu']}"
    return RESULTS / f"{slug}-{host['physical_cores']}c.json"


def git_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
        changed = [line[3:] for line in status.splitlines() if line.strip()]
        return {"commit": git("rev-parse", "HEAD"), "dirty_files": changed}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty_files": []}


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append to the JSON list in ``path`` (under a lock, written atomically)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock.tmp")
    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # two runs finishing together must not lose a record
        records = json.loads(path.read_text()) if path.exists() else []
        records.append(record)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(records, indent=1) + "\n")
        tmp.replace(path)


# --------------------------------------------------------------------------- one model


def bench_model(name: str, args: argparse.Namespace, peak_gflops: float | None = None, log=print) -> dict[str, Any]:
    """Build entry ``name`` of benchmarks.suite, compile it, and time neo-local and the engines
    it is compared with in interleaved rounds (``time_rounds``); GFLOP/s as a fraction of ``peak_gflops``."""
    entry = suite.ENTRIES[name]
    work = WORK / name

    def settle() -> dict[str, float] | None:
        if args.quiet_wait <= 0:
            return None
        quiet = measure.wait_for_quiet(args.quiet_wait)
        if quiet["cpu_util_before"] >= 0.15:
            log(f"[{name}] the machine is still busy ({quiet['cpu_util_before']:.0%} CPU) "
                f"after {args.quiet_wait} s; timing anyway")
        return quiet

    log(f"[{name}] building the {entry.framework} archive")
    built = measure.in_child(suite.build_step, name, str(work), args.seed)
    model_flops = measure.in_child(flops.flops_step, built)
    def compile_as(options: dict[str, Any], out: str, what: str) -> dict[str, Any]:
        quiet = settle()
        log(f"[{name}] compiling{what} with neo_local.compile (this is the slow part)")
        job = f"bench-{name.replace('_', '-')}-{dt.datetime.now():%Y%m%d%H%M%S}"
        comp = measure.in_child(
            measure.compile_step, job, built["archive"], entry.framework, built["data_input_config"],
            {**built["compiler_options"], **options}, str(work / out), args.mcpu, args.threads, args.max_runtime,
        )
        if quiet is not None:
            comp["quiet_wait"] = quiet
        log(f"[{name}] compiled in {comp['compile_s']:.1f} s -> {comp['artifact']}")
        return comp

    comp = compile_as(untuned(args.compiler_options, work), "out", "")
    built = {**built, "artifact": comp["artifact"]}
    engines = (suite.NEO_LOCAL, *entry.compare)
    default = None
    if args.compiler_options:  # a variant: the default compile too, timed in the same rounds
        default = compile_as(untuned({}, work), "out-default", " the default build")
        built = {**built, "default_artifact": default["artifact"]}
        engines = (*engines, suite.NEO_LOCAL_DEFAULT)
    rounds = time_rounds(name, engines, built, args, settle, log)
    outs = {("tvm" if k == suite.NEO_LOCAL.key else k): r["outputs"] for k, r in rounds[0].items()}
    for timings in rounds:
        for r in timings.values():
            del r["outputs"]
    latency = {e.key: combine([timings[e.key] for timings in rounds]) for e in engines}
    ratio_rounds = {
        f"tvm_over_{e.key}": [t[suite.NEO_LOCAL.key]["median_ms"] / t[e.key]["median_ms"] for t in rounds]
        for e in engines[1:]
    }
    gflops = {k: model_flops / (r["median_ms"] * 1e6) for k, r in latency.items()} if model_flops else {}
    return {
        "model": name,
        "variant": variant(args.compiler_options),
        "framework": entry.framework,
        "inputs": built["inputs"],
        "archive_bytes": built["archive_bytes"],
        "compile": comp,
        **({"compile_default": default} if default else {}),
        "latency": latency,
        "ratio": {k: statistics.median(v) for k, v in ratio_rounds.items()},
        "ratio_rounds": ratio_rounds,
        "flops": model_flops,  # 2 x multiply-adds of convs and matmuls; None for tree models
        "gflops": gflops,
        "peak_fraction": {k: g / peak_gflops for k, g in gflops.items()} if peak_gflops else {},
        "max_abs_diff": {f"{a}_vs_{b}": max_abs_diff(outs[a], outs[b]) for a, b in combinations(outs, 2)},
        "max_rel_diff": {f"{a}_vs_{b}": compare(outs[b], outs[a])[1] for a, b in combinations(outs, 2)},
    }


def time_rounds(name: str, engines: Sequence[suite.Engine], built: dict[str, Any], args: argparse.Namespace,
                settle: Callable[[], dict[str, float] | None], log=print) -> list[dict[str, dict[str, Any]]]:
    """Time ``engines`` in ``args.rounds`` interleaved rounds, each timing ``args.budget /
    args.rounds`` seconds of runs, so that the engines of a round are timed close together under
    the same load: each in a fresh child, or with ``args.live`` in one child per engine that
    stays loaded for every round (module doc). Returns, per round, each engine's timing (in order)."""
    plan = Plan(args.warmup, args.repeat, args.min_repeat, args.budget / args.rounds, timed_s=args.min_time)
    if not args.live:
        def fresh(engine: suite.Engine) -> dict[str, Any]:
            return measure.in_child(suite.engine_step, name, engine.key, built, plan, args.threads)

        return [_time_round(name, engines, fresh, args, settle, n, log) for n in range(1, args.rounds + 1)]
    children: dict[str, measure.LiveChild] = {}
    try:
        for engine in engines:
            children[engine.key] = measure.LiveChild(suite.engine_server, name, engine.key, built, args.threads)

        def live(engine: suite.Engine) -> dict[str, Any]:
            time.sleep(measure.POOL_IDLE_S)  # the engine timed before lets its threads go idle
            return children[engine.key].ask(plan)

        return [_time_round(name, engines, live, args, settle, n, log) for n in range(1, args.rounds + 1)]
    finally:
        for child in children.values():
            child.close()


def _time_round(name: str, engines: Sequence[suite.Engine], time_engine: Callable[[suite.Engine], dict[str, Any]],
                args: argparse.Namespace, settle: Callable[[], dict[str, float] | None], n: int,
                log) -> dict[str, dict[str, Any]]:
    """Round ``n``: settle, time every engine (``time_engine``), the order turned by ``n - 1``;
    while other processes disturb it, time the whole round again (up to ``args.attempts``) and
    keep the least disturbed try."""
    tries = []
    for attempt in range(1, args.attempts + 1):
        quiet = settle()
        log(f"[{name}] round {n}/{args.rounds}{f', attempt {attempt}' if attempt > 1 else ''}")
        timings = {}
        turn = (n - 1) % len(engines)
        for engine in (*engines[turn:], *engines[:turn]):
            r = time_engine(engine)
            log(f"[{name}]   {engine.label}: median {r['median_ms']:.3f} ms over {r['runs']} runs")
            timings[engine.key] = {**r, "quiet_wait": quiet}
        tries.append(timings)
        if _disturbance(timings) <= args.max_other_cpu:
            break
        log(f"[{name}] other processes used up to {_disturbance(timings):.0%} of the CPU in round {n}")
    kept = min(tries, key=_disturbance)
    for key, r in kept.items():
        r["attempts"] = [{"median_ms": t[key]["median_ms"], "other_cpu_share": t[key]["other_cpu_share"]}
                         for t in tries]
    return kept


def _disturbance(timings: dict[str, dict[str, Any]]) -> float:
    """The largest CPU share other processes took while one engine of a round was timed (a
    timing too short to say counts as undisturbed)."""
    return max(r["other_cpu_share"] or 0.0 for r in timings.values())


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One engine's figures over its rounds: the median of the round medians (and of their p90s),
    all runs, the largest peak RSS and the most disturbed round's CPU shares; every round kept."""

    def worst(key: str) -> float | None:
        known = [r[key] for r in rounds if r[key] is not None]
        return max(known) if known else None

    return {
        "engine": rounds[0]["engine"],
        "threads": rounds[0]["threads"],
        "median_ms": statistics.median(r["median_ms"] for r in rounds),
        "p90_ms": statistics.median(r["p90_ms"] for r in rounds),
        "runs": sum(r["runs"] for r in rounds),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rounds),
        "other_cpu_share": worst("other_cpu_share"),
        "steal_share": worst("steal_share"),
        "rounds": rounds,
    }


def untuned(compiler_options: dict[str, Any], work: Path) -> dict[str, Any]:
    """``compiler_options`` as compiled: without a ``tuning`` key of their own they read an empty
    records database, not the user's (which every compile reads: a model tuned earlier would
    otherwise be timed tuned under the label "default")."""
    if "tuning" in compiler_options:
        return compiler_options
    empty = work / "no-tuning-records.jsonl"
    empty.unlink(missing_ok=True)
    return {**compiler_options, "tuning": {"records": str(empty)}}


def variant(compiler_options: dict[str, Any]) -> str:
    """How the artifact was compiled, as the chart and table label it: "default", "tuned" when the
    CompilerOptions ask for tuning (it reads and extends the user's records database; a default
    build reads none: ``untuned``), "bfloat16" for that precision, "tuned bfloat16" for both."""
    bf16 = CompilerOptions.parse(json.dumps(compiler_options)).precision == BFLOAT16
    return " ".join(["tuned"] * ("tuning" in compiler_options) + ["bfloat16"] * bf16) or "default"


def _compiler_options(text: str) -> dict[str, Any]:
    """``--compiler-options``: a JSON object of CompilerOptions added to every entry's own."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"tuning\": {\"trials\": 200}}'")
    return value


# --------------------------------------------------------------------------- table


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _gflops(r: dict[str, Any], key: str) -> str:
    g = r.get("gflops", {}).get(key)
    return "-" if g is None else f"{g:.1f}"


def table(results: list[dict[str, Any]]) -> str:
    """Per model: each engine's latency (median of its round medians), GFLOP/s (and share of the
    sgemm peak), and neo-local's time as a multiple of it (median of the per-round ratios)."""
    head = (
        f"{'model':<44}{'engine':<26}{'median ms':>11}{'p90 ms':>11}{'runs':>6}"
        f"{'neo-local/x':>13}{'GFLOP/s':>9}{'of peak':>9}{'peak RSS MB':>13}{'others CPU':>12}{'steal':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lat = r["latency"]
        how = f" {r['variant']}" if r.get("variant", "default") != "default" else ""
        title = f"{r['model']} ({r.get('framework', 'ONNX')}{how})"
        for i, (key, x) in enumerate(lat.items()):
            engine = "neo-local" if key == suite.NEO_LOCAL.key else key
            ratio = "" if key == suite.NEO_LOCAL.key else f"{r['ratio'][f'tvm_over_{key}']:.2f}"
            lines.append(
                f"{title if i == 0 else '':<44}{engine:<26}"
                f"{x['median_ms']:>11.3f}{x['p90_ms']:>11.3f}{x['runs']:>6}{ratio:>13}"
                f"{_gflops(r, key):>9}{_pct(r.get('peak_fraction', {}).get(key)):>9}{x['peak_rss_mb']:>13.0f}"
                f"{_pct(x.get('other_cpu_share')):>12}{_pct(x.get('steal_share')):>7}"
            )
        c = r["compile"]
        built = f", TVM build {c['tvm_build_s']:.1f} s" if c.get("tvm_build_s") is not None else ""
        lines.append(
            f"{'':<44}compile {c['compile_s']:.1f} s (neo_local.compile wall time{built}), "
            f"peak RSS {c['peak_rss_mb']:.0f} MB (its child processes {c['children_peak_rss_mb']:.0f} MB), "
            f"artifact {c['artifact_bytes'] / 2**20:.2f} MB, mcpu {c['mcpu']}"
            + ("" if c.get("other_cpu_share") is None else f", others used {c['other_cpu_share']:.0%} CPU meanwhile")
        )
        if r.get("flops"):
            lines.append(f"{'':<44}{r['flops'] / 1e9:.3f} GFLOP per inference (conv and matmul multiply-adds x 2)")
        if r.get("ratio_rounds"):
            per_round = "; ".join(f"{k.removeprefix('tvm_over_')} " + " ".join(f"{x:.2f}" for x in v)
                                  for k, v in r["ratio_rounds"].items())
            lines.append(f"{'':<44}neo-local/x per round: {per_round} (the column: their median)")
        relative = r.get("max_rel_diff", {})
        diffs = ", ".join(f"{k.replace('_vs_', '-')} {v:.2e}" + (f" (relative {relative[k]:.2e})" if k in relative else "")
                          for k, v in r["max_abs_diff"].items())
        lines.append(f"{'':<44}max |diff|: {diffs}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--models", default=None,
                   help="comma-separated names from benchmarks.suite.ENTRIES (default: resnet50_like, "
                        "unless --frameworks is given)")
    p.add_argument("--frameworks", default="",
                   help=f"comma-separated Framework values (or all): add each one's entries ({', '.join(suite.FAMILIES)})")
    p.add_argument("--rounds", type=int, default=3,
                   help="time the engines this many times, interleaved (neo-local, the others; again...); "
                        "the ratio is the median of the per-round ratios")
    p.add_argument("--repeat", type=int, default=50,
                   help="at most this many timed runs per engine and round, more where they would last under --min-time")
    p.add_argument("--min-time", type=float, default=0.5,
                   help="seconds each engine's timed runs of a round span at least, within the round's budget")
    p.add_argument("--min-repeat", type=int, default=3, help="at least this many timed runs per engine and round")
    p.add_argument("--budget", type=float, default=15.0,
                   help="seconds of timed runs per engine, split over the rounds: a slow engine (e.g. "
                        "unscheduled TVM) gets fewer runs")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first (more until they take 0.2 s; fewer when one run is slow)")
    p.add_argument("--threads", type=int, default=physical_cores(), help="default: physical cores")
    p.add_argument("--mcpu", default=None, help="CompilerOptions mcpu (default: LLVM's name for this CPU)")
    p.add_argument("--compiler-options", type=_compiler_options, default={},
                   help="JSON CompilerOptions added to each model's own, e.g. '{\"tuning\": {\"trials\": 200}}' "
                        "for the tuned variant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-runtime", type=int, default=1800, help="StoppingCondition.MaxRuntimeInSeconds")
    p.add_argument("--results", type=Path, default=None, help="results file (default: per host under benchmarks/results)")
    p.add_argument("--quiet-wait", type=float, default=120.0,
                   help="before compiling and before each round, wait up to this many seconds for the machine "
                        "to be idle (0: don't)")
    p.add_argument("--live", action="store_true",
                   help="keep each engine loaded in one process for all rounds (module doc): many short rounds")
    p.add_argument("--attempts", type=int, default=3,
                   help="time a round up to this many times while other processes disturb it")
    p.add_argument("--max-other-cpu", type=float, default=0.10,
                   help="share of the machine's CPU other processes may use during a timing (see --attempts)")
    p.add_argument("--no-save", action="store_true", help="print only; do not append to the results file")
    args = p.parse_args(argv)

    frameworks = [f.strip().upper() for f in args.frameworks.split(",") if f.strip()]
    frameworks = list(suite.FAMILIES) if frameworks == ["ALL"] else frameworks
    if bad := [f for f in frameworks if f not in suite.FAMILIES]:
        p.error(f"unknown framework(s) {', '.join(bad)}; known: {', '.join(suite.FAMILIES)}")
    models = args.models if args.models is not None else ("" if frameworks else "resnet50_like")
    names = [n.strip() for n in models.split(",") if n.strip()]
    names += [n for f in frameworks for n in suite.FAMILIES[f] if n not in names]
    if unknown := [n for n in names if n not in suite.ENTRIES]:
        p.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(suite.ENTRIES)}")
    if min(args.rounds, args.attempts, args.repeat, args.min_repeat, args.threads) < 1 \
            or args.min_repeat > args.repeat:
        p.error("--rounds, --attempts, --repeat, --min-repeat and --threads must be at least 1, "
                "and --min-repeat <= --repeat")
    # children inherit the environment: every runtime gets the same thread count
    measure.set_thread_env(args.threads)

    started = dt.datetime.now(dt.timezone.utc)
    load_before = os.getloadavg()
    quiet = measure.wait_for_quiet(args.quiet_wait) if args.quiet_wait > 0 else None
    peak = {**measure.in_child(measure.sgemm_peak, args.threads), "quiet_wait": quiet}
    _log(f"sgemm peak: {peak['gflops']:.1f} GFLOP/s ({peak['how']}, {peak['blas']})")
    results = [bench_model(name, args, peak["gflops"], log=_log) for name in names]
    mcpu = results[0]["compile"]["mcpu"] if results else args.mcpu
    host = host_info(mcpu)
    record = {
        "timestamp": started.isoformat(timespec="seconds"),
        "git": git_info(),
        "versions": {**versions(), "neo-local": results[0]["compile"]["neo_local_version"] if results else None},
        "host": host,
        "settings": {
            "batch": sorted({r["inputs"][0]["shape"][0] for r in results}),  # each result's inputs say which
            "threads": args.threads,
            "TVM_NUM_THREADS": os.environ.get("TVM_NUM_THREADS"),
            "warmup": args.warmup,
            "repeat": args.repeat,
            "min_repeat": args.min_repeat,
            "budget_s": args.budget,
            "rounds": args.rounds,
            "live": args.live,
            "quiet_wait_s": args.quiet_wait,
            "attempts": args.attempts,
            "max_other_cpu": args.max_other_cpu,
            "seed": args.seed,
            # the machine may be shared: 1-minute load average before and after the run
            "loadavg_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "target": {"TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"},
                       "CompilerOptions": {**args.compiler_options, "mcpu": mcpu}},
            "variant": variant(args.compiler_options),
        },
        "sgemm_peak": peak,
        "results": results,
    }
    load = record["settings"]["loadavg_1m"]
    print(f"{host['cpu_model']} ({host['llvm_cpu']}), {args.threads} threads, load average {load[0]} -> {load[1]}, "
          f"sgemm peak {peak['gflops']:.1f} GFLOP/s")
    print(table(results))
    if not args.no_save:
        path = args.results or results_path(host)
        append_record(path, record)
        print(f"appended to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
