"""Structural checks: for Android, bionic only and the register Android reserves left alone; for
Linux, no glibc function newer than the floor."""

import shutil
import subprocess

import pytest

from neo_local.api.errors import JobFailure
from neo_local.targets import android, glibc
from neo_local.targets.binaries import structural_check

CC = "aarch64-linux-gnu-gcc"
pytestmark = pytest.mark.skipif(shutil.which(CC) is None, reason=f"{CC} is not installed (scripts/setup.sh)")


def _library(tmp_path, source, *link):
    c = tmp_path / "lib.c"
    c.write_text(source)
    out = tmp_path / "lib.so"
    subprocess.run([CC, "-shared", "-fPIC", "-O1", "-o", str(out), str(c), *link], check=True)
    return out


def _android_library(tmp_path, source):
    stubs = android.stub_libraries(tmp_path / "cache", CC)
    return _library(tmp_path, source, *android.LINK_OPTIONS, *stubs)


def test_a_stub_linked_library_passes(tmp_path):
    lib = _android_library(tmp_path, "#include <string.h>\nvoid f(char* p, int n) { memset(p, 0, n); }\n")
    assert structural_check(lib, "ANDROID", "ARM64").startswith("ELF64 AArch64 shared library, NEEDED libc.so;")


def test_a_glibc_library_is_not_an_android_one(tmp_path):
    lib = _library(tmp_path, "#include <string.h>\nvoid f(char* p, int n) { memset(p, 0, n); }\n")
    with pytest.raises(JobFailure, match="needs libraries bionic do not provide: libc.so.6"):
        structural_check(lib, "ANDROID", "ARM64")


def test_code_touching_x18_is_refused(tmp_path):
    lib = _android_library(tmp_path, "void f(long x) { __asm__ volatile(\"mov x18, %0\" :: \"r\"(x)); }\n")
    with pytest.raises(JobFailure, match=r"lib.so uses register x18/w18, which the OS reserves: .*mov\s+x18"):
        structural_check(lib, "ANDROID", "ARM64")


def test_the_stub_link_refuses_functions_bionic_stubs_lack(tmp_path):
    with pytest.raises(subprocess.CalledProcessError):
        _android_library(tmp_path, "int pthread_yield(void);\nint f(void) { return pthread_yield(); }\n")


def test_a_linux_library_naming_a_glibc_function_newer_than_the_floor_is_refused(tmp_path):
    lib = _library(tmp_path, "#include <math.h>\nfloat f(float x) { return expf(x); }\n", "-lm")
    newest = glibc.exported(CC)["expf"][-1]
    if newest <= glibc.FLOOR:
        pytest.skip(f"{CC}'s glibc has expf only at {glibc.spell(newest)}: nothing newer to refuse")
    with pytest.raises(JobFailure, match=rf"lib.so needs glibc functions newer than GLIBC_2.17, .*: expf@{glibc.spell(newest)}$"):
        structural_check(lib, "LINUX", "ARM64")
