"""neo-local's parallel launcher (runtime/native/thread_pool.c), linked into a library of two
kernels and run in a fresh process: its thread count, its errors, fork, and one pool shared by
the libraries of a process."""

from __future__ import annotations

import json
import shutil
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
    def count_up(out: T.Buffer((64,), "int32")):
        for i in T.parallel(64):
            out[i] = out[i] + 1

    @T.prim_func
    def uneven(out: T.Buffer((64,), "int32")):
        # the first half's iterations take 200 us each, the second half's nothing
        for i in T.parallel(64):
            if i < 32:
                T.evaluate(T.call_extern("int32", "usleep", 200))
            out[i] = T.call_extern("int32", "syscall", 186)

    @T.prim_func
    def count_up_slowly(out: T.Buffer((64,), "int32")):
        for i in T.parallel(64):
            T.evaluate(T.call_extern("int32", "usleep", 20))
            out[i] = out[i] + 1

    @T.prim_func
    def fails_late(out: T.Buffer((4,), "int32")):
        for i in T.parallel(4):
            assert i < 2, "iteration 2 or later ran"
            out[i] = T.call_extern("int32", "usleep", 2000)


# run in a fresh process: the pool starts with the first parallel kernel, from TVM_NUM_THREADS
RUN = textwrap.dedent("""
    import json, os, sys
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
    print(json.dumps(report))
""") % {"set": SET_THREADS}

# launches back to back, each a microsecond: a worker often wakes for a launch the caller has
# already finished (having run the worker's task itself), or for one already followed by another
EXACTLY_ONCE = textwrap.dedent("""
    import json, sys
    import numpy as np, tvm
    lib = tvm.runtime.load_module(sys.argv[1])
    out = tvm.runtime.tensor(np.zeros(64, "int32"))
    count_up = lib["count_up"]
    for _ in range(20000):
        count_up(out)
    print(json.dumps(sorted(set(out.numpy().tolist()))))
""")

# a kernel of 0.6 ms or more a launch: split into more tasks than threads after its timed launches
SPLIT = textwrap.dedent("""
    import json, sys
    import numpy as np, tvm
    lib = tvm.runtime.load_module(sys.argv[1])
    out = tvm.runtime.tensor(np.zeros(64, "int32"))
    report = {}
    for launch in range(6):
        lib["uneven"](out)
        report[launch] = len(set(out.numpy()[:32].tolist()))
    errors = []
    for _ in range(6):  # 4 ms a launch: split from the 5th, its failing iterations in several tasks
        try:
            lib["fails_late"](tvm.runtime.tensor(np.zeros(4, "int32")))
            errors.append(None)
        except Exception as exc:
            errors.append(str(exc))
    report["errors"] = errors
    counts = tvm.runtime.tensor(np.zeros(64, "int32"))
    for _ in range(40):
        lib["count_up_slowly"](counts)
    report["counts"] = sorted(set(counts.numpy().tolist()))
    print(json.dumps(report))
""")

# copies of one library in a fresh process: the first hosts the pool, the others use its workers
SHARED = textwrap.dedent("""
    import json, sys
    import numpy as np, tvm
    paths = sys.argv[1:]

    def ids(lib):
        out = tvm.runtime.tensor(np.zeros(64, "int32"))
        seen = set()
        for _ in range(10):
            lib["thread_ids"](out)
            seen |= set(out.numpy().tolist())
        return seen

    host, other = tvm.runtime.load_module(paths[0]), tvm.runtime.load_module(paths[1])
    report = {"host": len(ids(host)), "both": len(ids(host) | ids(other))}
    report["set_3_through_other"] = other["%(set)s"](3)
    report["host_after"] = len(ids(host))
    print(json.dumps(report))
""") % {"set": SET_THREADS}

# the same through ctypes, which unloads what it loads (TVM's loaded library modules stay)
UNLOADING = textwrap.dedent("""
    import _ctypes, ctypes, json, sys
    import tvm  # tvm-ffi's functions, which the libraries call
    paths = sys.argv[1:]

    class Any(ctypes.Structure):
        _fields_ = [("type_index", ctypes.c_int32), ("padding", ctypes.c_uint32), ("value", ctypes.c_int64)]

    def set_threads(lib, n):  # the library's tvm-ffi function, called as tvm-ffi does
        f = lib["__tvm_ffi_%(set)s"]
        f.argtypes = [ctypes.c_void_p, ctypes.POINTER(Any), ctypes.c_int32, ctypes.POINTER(Any)]
        out = Any()
        assert f(None, ctypes.byref(Any(1, 0, n)), 1, ctypes.byref(out)) == 0
        return out.value

    def mapped(path):
        return path in open("/proc/self/maps").read()

    libs = [ctypes.CDLL(path) for path in paths]
    set_threads(libs[0], 3)
    report = {"counts": [set_threads(lib, 0) for lib in libs]}
    for lib in libs:
        _ctypes.dlclose(lib._handle)
    report["mapped"] = [mapped(path) for path in paths]
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


def _run(script: str, *libraries: Path, **env: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", script, *map(str, libraries)], capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "TVM_NUM_THREADS": "2", **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_pool_threads_errors_and_fork_in_a_fresh_process(library):
    report = _run(RUN, library)
    assert report["default"] == 2  # TVM_NUM_THREADS
    # the count set through the library reaches its kernels (TVM's runtime.config_threadpool would not)
    assert (report["set_3"], report["after_set_3"], report["after_set_1"]) == (3, 3, 1)
    # a worker's error reaches the caller with its message, and the pool goes on
    assert report["error"] and "iteration 2 or later ran" in report["error"]
    assert report["after_error"] == 2
    assert report["in_forked_child"] == 2


@pytest.mark.parametrize("threads", ["2", "3"])
def test_every_task_of_every_launch_runs_exactly_once(library, threads):
    # a task run twice counts past 20000, one lost stops short of it
    assert _run(EXACTLY_ONCE, library, TVM_NUM_THREADS=threads) == [20000]


@pytest.mark.parametrize("threads", ["2", "3"])
def test_a_long_kernel_s_threads_take_what_another_has_left(library, threads):
    """A kernel whose timed launches ran 50 us or more is cut into 8 tasks a thread: a thread done
    with its own takes the last tasks of another's. Here the first half of the iterations take all
    the time: its first launches run them on one thread (a task each); then the second thread,
    done with its half, takes some of them. Each task still runs exactly once, and a split
    kernel's errors reach the caller as a whole one's do."""
    report = _run(SPLIT, library, TVM_NUM_THREADS=threads)
    if threads == "2":  # (3 threads cut the slow half across two tasks from the start)
        assert report["0"] == 1  # one task per thread
        assert report["5"] >= 2
    # every launch reports its error, split or not, and the pool goes on
    assert all(e and "iteration 2 or later ran" in e for e in report["errors"]), report["errors"]
    assert report["counts"] == [40]


def test_libraries_in_one_process_share_the_first_one_s_pool(library, tmp_path):
    copies = [tmp_path / f"copy{i}.so" for i in range(4)]
    for copy in copies:
        shutil.copy(library, copy)
    report = _run(SHARED, *copies[:2])
    assert report["host"] == 2
    assert report["both"] == 2  # the same two threads ran both libraries' kernels
    assert (report["set_3_through_other"], report["host_after"]) == (3, 3)  # one pool: one count
    report = _run(UNLOADING, *copies)
    assert report["counts"] == [3, 3, 3, 3]
    # the host cannot be unloaded (other libraries' launches run on its workers); the others can
    assert report["mapped"] == [True, False, False, False]


def test_neo_local_thread_pool_tvm_hands_every_launch_to_tvms_pool(library):
    script = RUN[:RUN.index('lib["%s"](1)' % SET_THREADS)] + "print(json.dumps(report))\n"
    report = _run(script, library, NEO_LOCAL_THREAD_POOL="tvm")
    # TVM's pool runs the kernels: the library's own count does not reach them
    assert (report["default"], report["set_3"], report["after_set_3"]) == (2, 3, 2)
