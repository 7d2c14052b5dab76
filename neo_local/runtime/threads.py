"""The thread-pool settings of the TVM runtime and of neo-local's libraries, where the user has
set none.

TVM, and the pool a Linux CPU library carries (``backends.thread_pool``), read them from the
environment when the pool starts (the first parallel kernel), so they are set before any artifact
runs: in this process, in an RPC server, or in the environment of an emulated device's runner.
"""

from __future__ import annotations

import os
from typing import Mapping

from neo_local.targets.cpu_features import physical_cores

#: a Linux CPU library's function (``runtime/native/thread_pool.c``) that sets the thread count of
#: neo-local's pool (``n`` > 0; one pool for the process's libraries) and returns the count in
#: use; TVM's settings do not reach that pool
SET_THREADS = "neo_local_set_threads"


def thread_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """``TVM_NUM_THREADS`` and ``TVM_BIND_THREADS`` as the runtime should start with them.

    - One thread per physical core: unset, TVM starts one thread on VMs that report hyperthreads
      oddly.
    - Threads not bound to cores (``TVM_BIND_THREADS=0``). Bound, TVM pins each worker to a core
      and leaves the calling thread free. A new process's calling thread then often shares its
      worker's core until the kernel moves it. Measured on 2 cores (Zen 5): MobileNetV2-style
      ran at 0.21 ms instead of 0.11 ms for its first 20-60 ms. Unbound threads start at full
      speed, hold the same speed after, and can move away from a busy core. ResNet-50 measured
      19.4 ms unbound, 19.6 ms bound. onnxruntime binds none either, and TVM's own CI unbinds
      them.

    A value the user set wins.
    """
    return {
        "TVM_NUM_THREADS": environ.get("TVM_NUM_THREADS") or str(physical_cores()),
        "TVM_BIND_THREADS": environ.get("TVM_BIND_THREADS") or "0",
    }


def set_thread_defaults() -> None:
    """Put ``thread_env()`` into this process's environment, before TVM's pool starts."""
    os.environ.update(thread_env())
