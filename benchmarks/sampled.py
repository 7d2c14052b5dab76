"""Where a plain run's time goes, thread by thread: ``perf`` samples of the exported library
running the model in a loop, each sample put to the kernel whose code it hit.

    TVM_NUM_THREADS=2 .venv/bin/python -m benchmarks.sampled MODEL [--seconds 15] [--top 30]

``benchmarks.profile`` times each kernel through the VM's instrument, which inflates a model of
many small kernels (EfficientNet 6.1 -> 9.2 ms) and hides how the threads share the work. Here
nothing is added to the run: ``perf record`` samples the process from outside while it calls the
library as the runtime does (threads unbound), and ``perf report`` splits the samples by thread.
The kernels' code is in local functions (``*_compute_``) that perf leaves unnamed; each address
is put to the nearest symbol below it (``nm -n``). Per kernel, the calling thread's share against
the workers' says whether its parallel parts run even: the pool's waits show as ``local_launch``
(the caller waiting for a worker) and ``worker`` (a worker waiting for a launch), or as
``other:<library>`` where another library loaded first hosts the process's pool. Needs ``perf``
and a ``perf_event_paranoid`` that lets the process sample itself. A diagnosis tool: printed,
not recorded.
"""

from __future__ import annotations

import bisect
import collections
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.inprocess import host_target, linked, load_example, model_arguments
from neo_local.runtime.threads import SET_THREADS

#: samples a second per thread
FREQUENCY = 4000
#: threads with fewer samples than this (percent of all) are left out: the process's other threads
MIN_SHARE = 1.0

_ROW = re.compile(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(\S+)")
_THREAD = re.compile(r"\s*([\d.]+)%\s+(\d+):")


@dataclass(frozen=True)
class ThreadSamples:
    """One thread's samples: its share of all (percent) and, by kernel (or ``other:<dso>``), the
    percent of all samples that fell there."""

    tid: str
    share: float
    by_kernel: dict[str, float]


def kernel_symbols(library: Path) -> list[tuple[int, str]]:
    """The library's code symbols by address (``nm -n``): the kernels, their ``*_compute_``
    bodies, the VM's main function and the pool."""
    out = subprocess.run(["nm", "-n", str(library)], capture_output=True, text=True, check=True).stdout
    symbols = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tT":
            symbols.append((int(parts[0], 16), parts[2]))
    return symbols


def by_kernel(report: str, library: Path, symbols: list[tuple[int, str]]) -> dict[str, float]:
    """``perf report --sort dso,sym`` text as percent by kernel: addresses in ``library`` put to the
    symbol at or below them (a body's ``_compute_`` suffix dropped), others by their library."""
    addresses = [a for a, _ in symbols]
    found: collections.Counter[str] = collections.Counter()
    for line in report.splitlines():
        m = _ROW.match(line)
        if not m:
            continue
        percent, dso, symbol = float(m[1]), m[2], m[3]
        if dso != library.name:
            found["other:" + dso] += percent
            continue
        if symbol.startswith("0x"):
            i = bisect.bisect_right(addresses, int(symbol, 16)) - 1
            symbol = symbols[i][1] if i >= 0 else symbol
        found[symbol.removesuffix("_compute_")] += percent
    return dict(found)


def threads(data: Path) -> list[tuple[str, float]]:
    """(thread id, percent of the samples) of a perf recording, most samples first."""
    out = _perf_report(data, "--sort", "pid")
    return [(m[2], float(m[1])) for m in map(_THREAD.match, out.splitlines()) if m]


def _perf_report(data: Path, *args: str) -> str:
    return subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--stdio", *args],
                          capture_output=True, text=True, check=True).stdout


def sample(call, seconds: float, data: Path) -> list[float]:
    """Calls ``call`` for ``seconds`` under ``perf record`` of this process; its times (s)."""
    perf = subprocess.Popen(["perf", "record", "-F", str(FREQUENCY), "-q", "-o", str(data), "-p", str(os.getpid())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # perf attaches to every thread before the loop starts
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    perf.send_signal(signal.SIGINT)
    _, err = perf.communicate(timeout=120)
    if perf.returncode not in (0, -signal.SIGINT) or not data.exists():
        raise RuntimeError(f"perf record failed ({perf.returncode}): {err.decode(errors='replace').strip()[-300:]}")
    return times


def split_by_thread(data: Path, library: Path, caller: int) -> list[ThreadSamples]:
    """The recording's threads with ``MIN_SHARE`` of the samples or more, each with its samples by
    kernel, the calling thread (``caller``, its kernel thread id) first."""
    symbols = kernel_symbols(library)
    found = [ThreadSamples(tid, share, by_kernel(_perf_report(data, "--tid", tid, "--sort", "dso,sym"), library, symbols))
             for tid, share in threads(data) if share >= MIN_SHARE]
    return sorted(found, key=lambda t: (t.tid != str(caller), -t.share))


def table(found: list[ThreadSamples], median_ms: float, top: int) -> str:
    """Rows by kernel, most samples first: each thread's percent of all samples and the calling
    thread's share of its own samples as milliseconds of the median run."""
    caller = found[0]
    caller_total = sum(caller.by_kernel.values()) or 1.0
    names = collections.Counter()
    for t in found:
        names.update(t.by_kernel)
    heads = ["caller %"] + [f"worker{i} %" for i in range(1, len(found))]
    lines = [f"median run {median_ms:.3f} ms; threads {', '.join(f'{t.tid} ({t.share:.1f}%)' for t in found)}",
             "  ".join(f"{h:>10}" for h in heads) + f"  {'caller ms':>9}  kernel"]
    for name, _ in names.most_common(top):
        cells = "  ".join(f"{t.by_kernel.get(name, 0.0):10.2f}" for t in found)
        ms = caller.by_kernel.get(name, 0.0) / caller_total * median_ms
        lines.append(f"{cells}  {ms:9.3f}  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = model_arguments(__doc__.split("\n\n")[0], top=30)
    p.add_argument("--seconds", type=float, default=15.0)
    a = p.parse_args(argv)
    os.environ.setdefault("TVM_NUM_THREADS", str(a.threads))
    os.environ.setdefault("TVM_BIND_THREADS", "0")  # as the runtime runs them

    import tvm
    from tvm import relax

    from neo_local.backends import cpu_schedule

    work = Path(tempfile.mkdtemp(prefix="sampled-"))
    built, _, specs, mod = load_example(a.model, work)
    target = host_target(a.mcpu)
    executable, _ = cpu_schedule.compile_cpu(mod, target)
    library = work / f"{a.model}.so"
    module = linked(executable, target, library)
    # the process's pool may have started already, with another count (a test run's earlier kernels)
    module.get_function(SET_THREADS, True)(a.threads)
    vm = relax.VirtualMachine(module, tvm.cpu())
    inputs = built.load_inputs()
    args = [tvm.runtime.tensor(inputs[s.name]) for s in specs]
    main_function = vm["main"]
    for _ in range(5):
        main_function(*args)
    times = sample(lambda: main_function(*args), a.seconds, work / "perf.data")
    found = split_by_thread(work / "perf.data", library, threading.get_native_id())
    print(table(found, 1e3 * float(np.median(times)), a.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
