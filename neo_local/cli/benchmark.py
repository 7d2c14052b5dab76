"""``neo-local benchmark ARTIFACT [--compare ENGINE --model PATH]``: latency of a compiled
artifact, and of the source model on its framework's runtime in the same run."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from neo_local.cli.run import RunFailed, load_inputs
from neo_local.cli.values import UsageError


def add_benchmark_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    from neo_local.benchmark import SOURCE_SUFFIXES

    parser = subparsers.add_parser(
        "benchmark",
        help="Time a compiled artifact (warm-up, repeats, percentiles), optionally against its source model "
             "or on a remote device.",
        description="Load ARTIFACT with neo_local.runtime.DLRModel and time runs on seeded inputs of its "
                    "shapes (or --input files): untimed warm-up runs, then as many runs as fit in --budget "
                    "seconds, between --min-repeat and --repeat. With --compare, the source model (--model: "
                    "the model file or the archive uploaded to the compilation job) is timed the same way "
                    "on that engine, on the same inputs, and the ratio of the medians is reported. With --rpc, the "
                    "artifact runs on the device behind a TVM RPC server (neo-local rpc-server) and is "
                    "timed there.",
        parents=parents,
        allow_abbrev=False,
    )
    parser.add_argument("artifact", metavar="ARTIFACT", help="compiled .tar.gz or its unpacked folder")
    parser.add_argument("--input", dest="inputs", action="append", default=[], metavar="NAME=FILE.npy",
                        help="an input by name (repeat for each); default: seeded random inputs")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3; more until they take 0.2 s)")
    parser.add_argument("--repeat", type=int, default=200,
                        help="at most this many timed runs (default 200), more where they would last under --min-time")
    parser.add_argument("--min-time", type=float, default=0.5,
                        help="seconds the timed runs span at least, within --budget (default 0.5: a fast model's "
                             "200 runs would be one moment of a busy machine); 0: --repeat at most")
    parser.add_argument("--min-repeat", type=int, default=10, help="at least this many timed runs (default 10)")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds of timed runs per engine (default 10)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every engine (default: TVM_NUM_THREADS, else the physical cores)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated inputs")
    parser.add_argument("--compare", choices=sorted(SOURCE_SUFFIXES), help="also time the source model on this engine")
    parser.add_argument("--model", metavar="PATH", help="the source model for --compare (file or .tar.gz archive)")
    parser.add_argument("--rpc", metavar="HOST:PORT",
                        help="run on a remote device through TVM's RPC: the server there (neo-local rpc-server), "
                             "or with --key an RPC tracker; runs are timed on the device")
    parser.add_argument("--key", help="with --rpc: the key of the device at the RPC tracker HOST:PORT")
    parser.set_defaults(handler=benchmark_command)


def benchmark_command(ns: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if ns.warmup < 0 or ns.budget < 0 or ns.min_repeat < 1 or ns.min_repeat > ns.repeat:
        raise UsageError("--repeat and --min-repeat must be at least 1 with --min-repeat <= --repeat; "
                         "--warmup and --budget not negative")
    if bool(ns.compare) != bool(ns.model):
        raise UsageError("--compare and --model go together: the engine and the source model it runs")
    if ns.key and not ns.rpc:
        raise UsageError("--key names a device at the RPC tracker given by --rpc HOST:PORT")
    if ns.rpc and ns.compare:
        raise UsageError("--compare runs the source model in this process, not on the --rpc device, so the two "
                         "would be timed on different machines; run neo-local benchmark --compare on the device")
    for path in (ns.artifact, ns.model):
        if path and not os.path.exists(path):
            raise UsageError(f"{path} does not exist")
    if ns.min_time < 0:
        raise UsageError("--min-time must be at least 0")
    if ns.threads is not None and ns.threads < 1:
        raise UsageError("--threads must be at least 1")
    from neo_local.benchmark import Plan

    plan = Plan(ns.warmup, ns.repeat, ns.min_repeat, ns.budget, timed_s=ns.min_time)
    report = _run_remote(ns, plan) if ns.rpc else _run_here(ns, plan)
    summary = {"artifact": ns.artifact, **report.summary()}
    if (getattr(ns, "output", None) or "json") == "json":
        out.write(json.dumps(summary, indent=2) + "\n")
    else:
        out.write(_text(summary, report.remote.where if report.remote else None))
    return 0


def _run_here(ns: argparse.Namespace, plan: Any) -> Any:
    """The artifact (and the --compare engine) timed in this process."""
    from neo_local.targets.cpu_features import physical_cores

    threads = ns.threads or int(os.environ.get("TVM_NUM_THREADS") or 0) or physical_cores()
    os.environ["TVM_NUM_THREADS"] = str(threads)  # before the TVM runtime starts its thread pool
    from neo_local.benchmark import benchmark_model
    from neo_local.runtime import DLRModel

    try:
        model = DLRModel(ns.artifact)
    except Exception as e:  # ArtifactError and whatever TVM raises while loading
        raise RunFailed(f"cannot load {ns.artifact}: {e}") from None
    feeds = load_inputs(ns.inputs, model.get_input_names()) if ns.inputs else None
    try:
        return benchmark_model(model, plan, threads, feeds, (ns.compare, Path(ns.model)) if ns.compare else None,
                               ns.seed)
    except (ValueError, RuntimeError, OSError) as e:
        raise RunFailed(f"benchmarking {ns.artifact} failed: {e}") from None


def _run_remote(ns: argparse.Namespace, plan: Any) -> Any:
    """The artifact uploaded to the --rpc device and timed there (by default with as many
    threads as the device has cores, when it says). Nothing of it is loaded here: its library
    may be for another architecture."""
    from neo_local.rpc import parse_endpoint
    from neo_local.runtime.model import ArtifactError, open_folder, read_meta

    try:
        endpoint = parse_endpoint(ns.rpc)
    except ValueError as e:
        raise UsageError(f"--rpc: {e}") from None
    try:
        folder, tmp = open_folder(Path(ns.artifact))
    except ArtifactError as e:
        raise RunFailed(f"cannot load {ns.artifact}: {e}") from None
    try:
        try:
            meta = read_meta(folder)
        except ArtifactError as e:
            raise RunFailed(f"cannot load {ns.artifact}: {e}") from None
        return _benchmark_on_device(ns, plan, endpoint, folder, meta)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _benchmark_on_device(ns: argparse.Namespace, plan: Any, endpoint: Any, folder: Path, meta: dict[str, Any]) -> Any:
    from neo_local.benchmark import benchmark_remote
    from neo_local.frontends.base import TensorSpec
    from neo_local.rpc import RemoteVm, RpcError, connect
    from neo_local.runtime.model import ArtifactError, conform

    kind = meta["Runtime"]["Kind"]
    if kind != "tvm-relax-vm":
        raise RunFailed(f"--rpc runs TVM Relax VM artifacts; {ns.artifact} is a {kind} artifact: "
                        f"run neo-local benchmark on the device itself")
    inputs = meta["Model"]["Inputs"]
    specs = tuple(TensorSpec(i["name"], tuple(i["shape"]), i["dtype"]) for i in inputs)
    given = load_inputs(ns.inputs, [s.name for s in specs]) if ns.inputs else None
    try:
        # checked here as a local run checks them (DLRModel)
        feeds = None if given is None else {i["name"]: conform(i, given[i["name"]]) for i in inputs}
        session, remote = connect(endpoint, ns.key)
        vm = RemoteVm(session, remote, folder, meta)
        threads = ns.threads or (remote.device or {}).get("physical_cores")
        return benchmark_remote(vm, specs, plan, threads, feeds, ns.seed)[0]
    except (RpcError, ArtifactError) as e:
        raise RunFailed(str(e)) from None
    except (ValueError, RuntimeError, OSError) as e:  # TVM's errors are RuntimeErrors
        raise RunFailed(f"benchmarking {ns.artifact} on the device at {endpoint} failed: {e}") from None



def _text(summary: dict[str, Any], where: str | None) -> str:
    rows = [("neo-local", summary["neo_local"])]
    if "compare" in summary:
        rows.append((summary["compare"]["engine"], summary["compare"]))
    lines = [f"{summary['artifact']}{f' on {where}' if where else ''}: {summary['threads']} threads, inputs "
             + ", ".join(f"{n} {s}" for n, s in summary["inputs"].items()),
             f"{'engine':<14}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'runs':>7}{'others CPU':>12}"]
    for name, t in rows:
        share = "-" if t["other_cpu_share"] is None else f"{t['other_cpu_share']:.0%}"
        lines.append(f"{name:<14}{t['p50_ms']:>10.3f}{t['p90_ms']:>10.3f}{t['p99_ms']:>10.3f}{t['mean_ms']:>10.3f}"
                     f"{t['runs']:>7}{share:>12}")
    if "ratio" in summary:
        lines.append(f"neo-local / {summary['compare']['engine']}: {summary['ratio']:.3f} (p50); "
                     f"outputs differ by at most {summary['compare']['max_abs_diff']:.3g}")
    return "\n".join(lines) + "\n"

