"""benchmarks.sampled: perf's samples of a plain run, put to kernels, thread by thread."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks import sampled

# two kernels as TVM writes them (a body of local code, unnamed in perf's report, behind an
# exported entry point) and the pool's worker loop
SOURCE = """
static int __attribute__((noinline, used)) conv_add_compute_(int x) { return x * 3 + 1; }
static int __attribute__((noinline, used)) mean_compute_(int x) { return x / 7; }
static int __attribute__((noinline, used)) worker(int x) { return x - 2; }
int conv_add(int x) { return conv_add_compute_(x) + mean_compute_(x) + worker(x); }
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("sampled")
    (work / "k.c").write_text(SOURCE)
    path = work / "kernels.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", str(work / "k.c"), "-o", str(path)], check=True)
    return path


def test_samples_go_to_the_kernel_whose_code_they_hit(library):
    symbols = dict((name, address) for address, name in sampled.kernel_symbols(library))
    inside = symbols["conv_add_compute_"] + 2
    report = "\n".join([
        "# Overhead  Shared Object  Symbol",
        f"    10.50%  kernels.so  [.] 0x{inside:016x}",
        f"     4.25%  kernels.so  [.] 0x{symbols['conv_add_compute_']:016x}",
        f"     2.00%  kernels.so  [.] 0x{symbols['mean_compute_'] + 1:016x}",
        "     3.00%  kernels.so  [.] worker",
        "     7.00%  libpython3.11.so.1.0  [.] _PyEval_EvalFrameDefault",
        "     1.00%  [kernel.kallsyms]  [k] clear_page_erms",
    ])
    found = sampled.by_kernel(report, library, sampled.kernel_symbols(library))
    assert found == {"conv_add": 14.75, "mean": 2.0, "worker": 3.0, "other:libpython3.11.so.1.0": 7.0,
                     "other:[kernel.kallsyms]": 1.0}


def test_the_table_puts_the_calling_thread_first_and_its_time_per_kernel():
    caller = sampled.ThreadSamples("11", 50.0, {"conv_add": 30.0, "local_launch": 10.0, "mean": 10.0})
    worker = sampled.ThreadSamples("12", 50.0, {"conv_add": 35.0, "worker": 15.0})
    text = sampled.table([caller, worker], 2.0, 10)
    rows = {line.split()[-1]: line.split()[:-1] for line in text.splitlines()[2:]}
    assert rows["conv_add"] == ["30.00", "35.00", "1.200"]  # 30 of the caller's 50%: 0.6 of 2 ms
    assert rows["worker"] == ["0.00", "15.00", "0.000"]
    assert text.splitlines()[0].startswith("median run 2.000 ms; threads 11 (50.0%), 12 (50.0%)")


def _can_sample(tmp: Path = Path("/tmp")) -> bool:
    """Whether perf is here and may sample this user's processes (a container may refuse it)."""
    if shutil.which("perf") is None:
        return False
    out = tmp / "neo-local-perf-probe.data"
    try:
        probe = subprocess.run(["perf", "record", "-q", "-o", str(out), "--", "true"], capture_output=True, timeout=60)
        return probe.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        out.unlink(missing_ok=True)


@pytest.mark.skipif(not _can_sample(), reason="needs perf, allowed to sample this user's processes")
def test_a_small_model_sampled_by_thread(capsys):
    assert sampled.main(["mobilenet_like", "--seconds", "2", "--top", "60"]) == 0
    out = capsys.readouterr().out
    # the calling thread and the pool's worker (another pytest test's library may host the pool)
    assert re.match(r"median run [\d.]+ ms; threads \d+ \([\d.]+%\), \d+ \([\d.]+%\)", out), out
    kernels = re.findall(r"^(?:\s+[\d.]+)+\s+(\S+)$", out, re.M)
    assert any(k.startswith("fused_conv2d_nchwc") for k in kernels), out
    assert any(k.startswith("fused_depthwise_conv2d_nchwc") for k in kernels), out
    assert not any(k.startswith("0x") for k in kernels), out
