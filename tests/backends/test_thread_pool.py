"""neo-local's parallel launcher (runtime/native/thread_pool.c), linked into a library of two
kernels and run in a fresh process: its thread count, its errors, fork and unloading."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

tvm = pytest.importorskip("tvm")

from tvm.script import ir as I  # noqa: E402
from tvm.script import tirx as T  # noqa: E402

from neo_local.backends.thread_pool import links_pool  # noqa: E402
from neo_local.backends.tvm_relax import export_library  # noqa: E402
from neo_local.runtime.threads import SET_THREADS  # noqa: E402
from neo_local.targets.spec import TargetSpec  # noqa: E402

LINUX = TargetSpec("linux-x86_64", "LINUX", "X86_64", {"kind": "llvm", "mtriple": "x86_64-linux-gnu"})


@I.ir_module
class Kernels:
    # each task sleeps 1 ms or more: long enough for a worker to take its own task (the caller
    # runs a task no worker has started by the time its own is done)
    @T.prim_func
    def thread_ids(out: T.Buffer((64,), "int32")):
        for i in T.parallel(64):
            T.evaluate(T.call_extern("int32", "usleep", 50))
            out[i] = T.call_extern("int32", "syscall", 186)  # SYS_gettid on x86_64 (gettid: glibc 2.30)

    @T.prim_func
    def fails_late(out: T.Buffer((4,), "int32")):
        for i in T.parallel(4):
            assert i < 2, "iteration 2 or later ran"
            out[i] = T.call_extern("int32", "usleep", 2000)


# run in a fresh process: the pool starts with the first parallel kernel, from TVM_NUM_THREADS
RUN = textwrap.dedent("""
    import gc, json, os, sys
    import numpy as np, tvm
    path = sys.argv[1]
    lib = tvm.runtime.load_module(path)
    out = tvm.runtime.tensor(np.zeros(64, "int32"))

    def threads_used():  # the most threads one call ran on, of ten (a busy machine may delay a worker)
        seen = 0
        for _ in range(10):
            lib["thread_ids"](out)
            seen = max(seen, len(set(out.numpy().tolist())))
        return seen

    report = {"default": threads_used()}
    report["set_3"] = lib["%(set)s"](3)
    report["after_set_3"] = threads_used()
    lib["%(set)s"](1)
    report["after_set_1"] = threads_used()
    lib["%(set)s"](2)
    try:
        lib["fails_late"](tvm.runtime.tensor(np.zeros(4, "int32")))
        report["error"] = None
    except Exception as exc:
        report["error"] = str(exc)
    report["after_error"] = threads_used()
    pid = os.fork()
    if pid == 0:
        os._exit(threads_used())
    report["in_forked_child"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    for _ in range(20):  # the workers run the library's code: they must stop before it is unloaded
        again = tvm.runtime.load_module(path)
        again["thread_ids"](out)
        del again
        gc.collect()
    report["reloaded"] = True
    print(json.dumps(report))
""") % {"set": SET_THREADS}


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pool") / "kernels.so"
    export_library(tvm.compile(Kernels, target=tvm.target.Target(dict(LINUX.tvm_target))), LINUX, path)
    return path


def test_linux_cpu_libraries_link_the_pool_and_others_do_not():
    linux = [{"kind": "llvm", "mtriple": t}
             for t in ("x86_64-linux-gnu", "aarch64-linux-gnu", "armv7l-linux-gnueabihf")]
    others = [{"kind": "llvm", "mtriple": t} for t in ("aarch64-linux-android28", "x86_64-w64-windows-gnu")]
    assert all(map(links_pool, linux)) and not any(map(links_pool, others + [{"kind": "cuda"}]))


def test_the_library_keeps_its_launcher_from_tvms_loader(library):
    exported = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True).stdout
    assert "__tvm_ffi_" + SET_THREADS in exported
    assert "__TVMBackendParallelLaunch" not in exported  # hidden: TVM's loader cannot fill it with its own


def _run(script: str, library: Path, **env: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", script, str(library)], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "TVM_NUM_THREADS": "2", **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_pool_threads_errors_fork_and_unloading_in_a_fresh_process(library):
    report = _run(RUN, library)
    assert report["default"] == 2  # TVM_NUM_THREADS
    # the count set through the library reaches its kernels (TVM's runtime.config_threadpool would not)
    assert (report["set_3"], report["after_set_3"], report["after_set_1"]) == (3, 3, 1)
    # a worker's error reaches the caller with its message, and the pool goes on
    assert report["error"] and "iteration 2 or later ran" in report["error"]
    assert report["after_error"] == 2
    assert report["in_forked_child"] == 2
    assert report["reloaded"]


def test_neo_local_thread_pool_tvm_hands_every_launch_to_tvms_pool(library):
    script = RUN[:RUN.index('lib["%s"](1)' % SET_THREADS)] + "print(json.dumps(report))\n"
    report = _run(script, library, NEO_LOCAL_THREAD_POOL="tvm")
    # TVM's pool runs the kernels: the library's own count does not reach them
    assert (report["default"], report["set_3"], report["after_set_3"]) == (2, 3, 2)
