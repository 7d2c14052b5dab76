"""Where a model's time goes: each of neo-local's kernels timed inside the running model, against
onnxruntime's own per-node profile of the same .onnx, in one process, batch 1.

    TVM_NUM_THREADS=2 .venv/bin/python -m benchmarks.profile MODEL [--runs 20] [--top 20]

neo-local: the Relax VM calls each kernel through an instrument that reads the clock before and
after it (the instrument's own cost shows as the instrumented run against a plain one, both
printed). The instrument needs the VM to interpret the main function (exec mode "bytecode");
artifacts run it compiled to native code, a few microseconds faster per run. onnxruntime:
``enable_profiling``'s per-node kernel times. Convolutions are matched by shape (input and output
channels, kernel, output size, depthwise or not); everything else is
compared by kind. Both sides see the caches as the model leaves them, which a kernel timed alone
does not. A diagnosis tool: medians over ``--runs``, printed, not recorded.
"""

from __future__ import annotations

import collections
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks.inprocess import host_target, load_example, median_ms, model_arguments

#: (input channels, output channels, kernel h, kernel w, output h, output w, depthwise)
ConvKey = tuple[int, int, int, int, int, int, bool]


@dataclass(frozen=True)
class OpTime:
    """One kernel (ours) or one node (onnxruntime): median milliseconds per model run."""

    name: str
    kind: str
    ms: float
    calls: int
    conv: ConvKey | None = None

    @property
    def gflop(self) -> float:
        """Multiply-adds x 2 of its convolution, all calls; 0 for other kernels."""
        if self.conv is None:
            return 0.0
        ic, oc, kh, kw, oh, ow, depthwise = self.conv
        return 2 * (1 if depthwise else ic) * oc * kh * kw * oh * ow * self.calls / 1e9


def _kind(symbol: str) -> str:
    for word, kind in (("depthwise", "depthwise conv"), ("conv2d", "conv"), ("matmul", "matmul/dense"),
                       ("dense", "matmul/dense"), ("pool", "pool"), ("mean", "mean"), ("layout_transform", "layout"),
                       ("softmax", "softmax"), ("concat", "concat")):
        if word in symbol:
            return kind
    return "vm builtin" if symbol.startswith("vm.builtin") else "other"


def _our_conv_key(symbol: str, shapes: Sequence[tuple[int, ...]]) -> ConvKey | None:
    """From a blocked conv's arguments: weights (OCb, ICb, kh, kw, ib, ob), output the last 5-D.
    Its channels are the fewer of the two: the weights' can be more (zero-filled to a wider vector's
    multiple), the output's too where the conv writes its slice of a concatenation
    (``concat_in_place``)."""
    weights = next((s for s in shapes if len(s) == 6), None)
    outputs = [s for s in shapes if len(s) == 5]
    if "conv2d" not in symbol or weights is None or not outputs:
        return None
    out = outputs[-1]
    oc = min(out[1] * out[4], weights[0] * weights[5])
    depthwise = "depthwise" in symbol
    ic = oc if depthwise else weights[1] * weights[4]
    return ic, oc, weights[2], weights[3], out[2], out[3], depthwise


def profile_ours(vm: Any, args: list, runs: int) -> tuple[list[OpTime], float, float]:
    """Each kernel's median time per run, the plain run's median and the instrumented run's (ms)."""
    plain = median_ms(lambda: vm["main"](*args), runs)
    per_run: dict[str, list[float]] = collections.defaultdict(list)
    calls: collections.Counter[str] = collections.Counter()
    keys: dict[str, ConvKey | None] = {}
    started: list[float] = []

    def instrument(func, symbol, before, ret, *call_args):
        if before:
            if symbol not in keys:
                keys[symbol] = _our_conv_key(symbol, [tuple(int(d) for d in a.shape) for a in call_args
                                                      if hasattr(a, "shape")])
            calls[symbol] += 1
            started.append(time.perf_counter())
        else:
            this_run[symbol] = this_run.get(symbol, 0.0) + time.perf_counter() - started.pop()
        return 0

    vm.set_instrument(instrument)
    instrumented = []
    for _ in range(runs + 1):  # the first run is a warm-up
        this_run: dict[str, float] = {}
        calls.clear()
        t0 = time.perf_counter()
        vm["main"](*args)
        instrumented.append(time.perf_counter() - t0)
        for symbol, seconds in this_run.items():
            per_run[symbol].append(seconds)
    ops = [OpTime(s, _kind(s), float(np.median(t[1:])) * 1e3, calls[s], keys.get(s)) for s, t in per_run.items()]
    return ops, plain, float(np.median(instrumented[1:])) * 1e3


def _dims(shape_entry: dict) -> list[int]:
    return list(next(iter(shape_entry.values())))


def _ort_conv_key(event_args: dict) -> ConvKey | None:
    """onnxruntime's conv node: x, w and y shapes, plain NCHW or its NCHWc blocks (N, C/b, H, W, b)."""
    if "Conv" not in event_args.get("op_name", "") or len(event_args.get("input_type_shape", [])) < 2:
        return None
    x, w = (_dims(s) for s in event_args["input_type_shape"][:2])
    y = _dims(event_args["output_type_shape"][0])
    ic = x[1] * x[4] if len(x) == 5 else x[1]
    oc = y[1] * y[4] if len(y) == 5 else y[1]
    depthwise = w[1] == 1 and ic == oc and ic > 1
    return ic, oc, w[2], w[3], y[2], y[3], depthwise


def profile_onnxruntime(path: str, feeds: dict, threads: int, runs: int, work: Path) -> tuple[list[OpTime], float]:
    """Each node's median kernel time per run (profiled session) and the plain session's run (ms)."""
    import onnxruntime as ort

    from neo_local.benchmark import open_source

    plain = median_ms(open_source("onnxruntime", Path(path), feeds, threads), runs)
    so = ort.SessionOptions()  # as open_source's session, profiled
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.enable_profiling = True
    so.profile_file_prefix = str(work / "onnxruntime-profile")
    profiled = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    for _ in range(runs + 1):
        profiled.run(None, feeds)
    events = json.loads(Path(profiled.end_profiling()).read_text())
    durations: dict[str, list[float]] = collections.defaultdict(list)
    info: dict[str, dict] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            durations[e["name"]].append(e["dur"] / 1e3)
            info[e["name"]] = e["args"]
    ops = []
    for name, ms in durations.items():
        op = info[name].get("op_name", "?")
        ops.append(OpTime(name.removesuffix("_kernel_time"), op, float(np.median(ms[1:] or ms)), 1,
                          _ort_conv_key(info[name])))
    return ops, plain


def report(ours: list[OpTime], theirs: list[OpTime], totals: dict[str, float], top: int) -> str:
    lines = [", ".join(f"{k} {v:.3f} ms" for k, v in totals.items()), ""]
    lines += _by_kind("neo-local kernels", ours) + _by_kind("onnxruntime nodes", theirs)
    lines += _convs(ours, theirs, top)
    lines += [f"neo-local's {top} slowest kernels:"]
    for op in sorted(ours, key=lambda o: -o.ms)[:top]:
        rate = f"  {op.gflop / op.ms * 1e3:6.1f} GFLOP/s" if op.conv else ""
        lines.append(f"  {op.ms:8.3f} ms  x{op.calls:<3d} {op.name}{rate}")
    return "\n".join(lines)


def _by_kind(title: str, ops: list[OpTime]) -> list[str]:
    kinds: dict[str, float] = collections.defaultdict(float)
    for op in ops:
        kinds[op.kind] += op.ms
    rows = [f"  {ms:8.3f} ms  {kind}" for kind, ms in sorted(kinds.items(), key=lambda kv: -kv[1])]
    return [f"{title}, by kind (sum {sum(kinds.values()):.3f} ms):", *rows, ""]


def _convs(ours: list[OpTime], theirs: list[OpTime], top: int) -> list[str]:
    """Convolutions grouped by shape on both sides, the largest deficits first."""
    def group(ops: list[OpTime]) -> dict[ConvKey, tuple[float, int]]:
        out: dict[ConvKey, tuple[float, int]] = {}
        for op in ops:
            if op.conv is not None:
                ms, n = out.get(op.conv, (0.0, 0))
                out[op.conv] = (ms + op.ms, n + op.calls)
        return out

    mine, other = group(ours), group(theirs)
    rows, matched = [], set()
    for key, (ms, n) in mine.items():
        twin = _twin(key, other)
        matched.add(twin)
        their_ms, their_n = other.get(twin, (float("nan"), 0))
        gflop = OpTime("", "", ms, n, key).gflop
        rows.append((ms - their_ms if their_n else float("-inf"), key, n, their_n, ms, their_ms, gflop))
    rows.sort(key=lambda r: -r[0])
    lines = [f"convolutions by shape, largest deficit first ({top} of {len(rows)}):",
             "  ic,oc,kh,kw,oh,ow,dw                 calls ours/ort   ours ms    ort ms   ours GF/s  ort GF/s"]
    for _, key, n, their_n, ms, their_ms, gflop in rows[:top]:
        their_rate = gflop / their_ms * 1e3 if their_n else float("nan")
        lines.append(f"  {str(key):36s} {n:4d}/{their_n:<4d} {ms:9.3f} {their_ms:9.3f} {gflop / ms * 1e3:10.1f}"
                     f" {their_rate:9.1f}")
    unmatched = sum(ms for key, (ms, _) in other.items() if key not in matched)
    return [*lines, f"  onnxruntime conv time with no matching shape here: {unmatched:.3f} ms", ""]


def _twin(key: ConvKey, theirs: dict[ConvKey, Any]) -> ConvKey | None:
    """onnxruntime's conv of our conv's shape: the same key, or the key with the channels rounded up
    to onnxruntime's NCHWc block (8 with AVX2, 16 with AVX-512), which its profile reports padded
    (a 24-channel conv shows as 32 on AVX-512). Where a model also has a conv of the padded shape,
    the two share onnxruntime's row."""
    for block in (1, 8, 16):
        padded = (-(-key[0] // block) * block, -(-key[1] // block) * block, *key[2:])
        if padded in theirs:
            return padded
    return None


def main(argv: list[str] | None = None) -> int:
    p = model_arguments(__doc__.split("\n\n")[0], top=20)
    p.add_argument("--runs", type=int, default=20)
    a = p.parse_args(argv)
    os.environ.setdefault("TVM_NUM_THREADS", str(a.threads))

    import tvm
    from tvm import relax

    from neo_local.backends import cpu_schedule

    work = Path(tempfile.mkdtemp(prefix="profile-"))
    built, path, specs, mod = load_example(a.model, work)
    target = host_target(a.mcpu)
    # the VM's instrument sees each kernel call only where the VM interprets the main function
    ex = relax.build(cpu_schedule.optimize(mod, target)[0], tvm.target.Target(target), exec_mode="bytecode")
    vm = relax.VirtualMachine(ex, tvm.cpu())
    inputs = built.load_inputs()
    ours, plain, instrumented = profile_ours(vm, [tvm.runtime.tensor(inputs[s.name]) for s in specs], a.runs)
    theirs, ort_plain = profile_onnxruntime(path, inputs, a.threads, a.runs, work)
    totals = {"neo-local run": plain, "instrumented": instrumented, "onnxruntime run": ort_plain}
    print(report(ours, theirs, totals, a.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
