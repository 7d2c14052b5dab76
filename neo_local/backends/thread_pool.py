"""Which libraries link neo-local's parallel launcher (``runtime/native/thread_pool.c``); the
link step (``backends.link``) compiles and adds it.

The launcher replaces TVM's thread pool for the library's kernels (the C file says how and why).
Measured in one process each (Zen 5, 2 threads, the same exported library): MobileNetV2-style
0.0717 -> 0.0620 ms, ShuffleNetV2 0.376 -> 0.340, MobileNetV3-Small 0.423 -> 0.384, BERT-style
0.218 -> 0.204, SqueezeNet 1.259 -> 1.236.

Linux (glibc) CPU libraries only: Android's libraries link against stub bionic libraries with
no pthreads (``targets.android``), Windows DLLs export differently, and GPU builds keep TVM's.
The tuner's kernels link it too (``cpu_schedule.builder``), so they are timed as they will run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from neo_local.targets import glibc

SOURCE = Path(__file__).resolve().parents[1] / "runtime" / "native" / "thread_pool.c"

#: compiler options for the launcher's source (the kernels are objects already)
COMPILE_OPTIONS = ("-O2", "-pthread")


def links_pool(tvm_target: Mapping[str, Any]) -> bool:
    """Whether a CPU library for ``tvm_target`` gets the launcher: llvm code for Linux with glibc."""
    return glibc.links_glibc(tvm_target)
