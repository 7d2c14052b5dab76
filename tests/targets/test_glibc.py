"""The glibc floor: references renamed to old versions before the link, with each toolchain this
host has, and the linked library still working (host) and naming nothing newer than the floor."""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from neo_local.api.errors import JobFailure
from neo_local.targets import binutils, glibc

# expf and pthread_create: both re-versioned by glibc (2.27, 2.34), as the kernels' and the pool's
SOURCE = """
#include <math.h>
#include <pthread.h>
static void* run(void* p) { *(float*)p = expf(*(float*)p); return 0; }
float exp_on_thread(float x) {
  pthread_t t;
  if (pthread_create(&t, 0, run, &x) != 0) return -1;
  pthread_join(t, 0);
  return x;
}
"""

TOOLCHAINS = ["gcc", "aarch64-linux-gnu-gcc", "arm-linux-gnueabihf-gcc", "i686-linux-gnu-gcc"]


def test_renames_take_the_newest_version_at_or_below_the_floor():
    versions = {"expf": ((2, 2, 5), (2, 27)), "memset": ((2, 2, 5),), "pow": ((2, 0), (2, 1), (2, 29))}
    assert glibc.renames(["expf", "memset", "TVMFFIErrorSetRaised", "pow"], versions) == {
        "expf": "expf@GLIBC_2.2.5", "pow": "pow@GLIBC_2.1",
    }


def test_a_function_only_newer_than_the_floor_is_refused():
    with pytest.raises(JobFailure, match=r"calls arc4random, which glibc has only from GLIBC_2.36 on: .*GLIBC_2.17"):
        glibc.renames(["arc4random"], {"arc4random": ((2, 36),)})


def test_too_new_names_versions_above_the_floor():
    assert glibc.too_new(["expf@GLIBC_2.27", "expf@GLIBC_2.2.5", "memset@GLIBC_2.17", "TVMFFIObjectDecRef"]) == [
        "expf@GLIBC_2.27"
    ]


@pytest.mark.parametrize("compiler,objcopy", [
    ("g++", "objcopy"), ("/usr/bin/gcc", "objcopy"), ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-objcopy"),
    ("x86_64-linux-gnu-gcc-12", "x86_64-linux-gnu-objcopy"), ("arm-linux-gnueabihf-g++", "arm-linux-gnueabihf-objcopy"),
])
def test_each_toolchain_renames_with_its_own_objcopy(compiler, objcopy):
    assert glibc._objcopy(compiler) == objcopy


def _link(compiler: str, obj: Path, out: Path) -> set[str]:
    """Link ``obj`` as the link step does (libpthread.so.0 and libdl.so.2 needed, libm); the library's
    undefined symbols."""
    subprocess.run([compiler, "-shared", "-o", str(out), str(obj), *glibc.SPLIT_LIBRARIES, "-lm"], check=True)
    return {s.name for s in binutils.symbols(out) if not s.defined}


@pytest.mark.parametrize("compiler", TOOLCHAINS)
def test_pinned_objects_link_to_versions_at_or_below_the_floor(compiler, tmp_path):
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed (scripts/setup.sh installs the cross toolchains as root)")
    source = tmp_path / "calls.c"
    source.write_text(SOURCE)
    obj = tmp_path / "calls.o"
    subprocess.run([compiler, "-c", "-fPIC", "-O2", str(source), "-o", str(obj)], check=True)
    (tmp_path / "pin").mkdir()
    [pinned] = glibc.pin_objects([str(obj)], compiler, tmp_path / "pin")

    plain = _link(compiler, obj, tmp_path / "plain.so")
    fixed = _link(compiler, Path(pinned), tmp_path / "pinned.so")
    assert glibc.too_new(fixed) == []
    assert {s.split("@")[0] for s in fixed} >= {"expf", "pthread_create", "pthread_join"}
    newest = glibc.exported(compiler)["pthread_create"][-1]
    if newest > glibc.FLOOR:  # a glibc of 2.34 or later: the plain link names the new version
        assert f"pthread_create@{glibc.spell(newest)}" in plain
    needed = subprocess.run(["readelf", "-d", str(tmp_path / "pinned.so")], capture_output=True, text=True).stdout
    assert all(f"[{name}]" in needed for name in ("libpthread.so.0", "libdl.so.2", "libm.so.6"))
    if compiler == "gcc":  # the host's: the pinned library runs
        lib = ctypes.CDLL(str(tmp_path / "pinned.so"))
        lib.exp_on_thread.restype = ctypes.c_float
        lib.exp_on_thread.argtypes = [ctypes.c_float]
        assert lib.exp_on_thread(1.0) == pytest.approx(math.e, rel=1e-6)


def test_a_compiler_without_glibc_is_an_internal_error():
    with pytest.raises(JobFailure, match="no-such-compiler-gcc is not installed"):
        glibc.exported("no-such-compiler-gcc")


def test_inputs_that_are_not_objects_pass_unchanged(tmp_path):
    """A C file TVM packs GPU kernels into (compiled by the link itself) and linker options."""
    source = tmp_path / "devc.c"
    source.write_text("const char blob[] = {1, 2, 3};\n")
    (tmp_path / "pin").mkdir()
    assert glibc.pin_objects([str(source), "-lm"], "gcc", tmp_path / "pin") == [str(source), "-lm"]
