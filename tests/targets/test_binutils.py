"""binutils: readelf's symbol tables parsed once, for the glibc floor and the library checks."""

from __future__ import annotations

import subprocess

import pytest

from neo_local.api.errors import JobFailure
from neo_local.targets import binutils

SOURCE = """
#include <math.h>
extern int maybe(void) __attribute__((weak));
int table[7] = {1};
float grow(float x) { return expf(x) + (maybe ? maybe() : 0); }
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("binutils")
    (work / "k.c").write_text(SOURCE)
    subprocess.run(["gcc", "-c", "-fPIC", "-O2", "-o", str(work / "k.o"), str(work / "k.c")], check=True)
    subprocess.run(["gcc", "-shared", "-o", str(work / "k.so"), str(work / "k.o"), "-lm"], check=True)
    return work


def test_a_library_s_dynamic_symbols_name_their_versions_binds_and_sizes(built):
    found = {s.name.split("@")[0]: s for s in binutils.symbols(built / "k.so")}
    assert not found["expf"].defined and found["expf"].name.startswith("expf@GLIBC_")
    assert not found["maybe"].defined and found["maybe"].bind == "WEAK"
    assert found["grow"].defined and found["grow"].bind == "GLOBAL" and found["grow"].value > 0
    assert found["table"].size == 7 * 4


def test_an_object_s_symbols_are_unversioned(built):
    undefined = {s.name for s in binutils.symbols(built / "k.o", dynamic=False) if not s.defined}
    assert {"expf", "maybe"} <= undefined


def test_a_missing_or_failing_tool_is_an_internal_error(tmp_path):
    with pytest.raises(JobFailure, match="no-such-readelf is not installed"):
        binutils.run("no-such-readelf", "-h", tmp_path)
    (tmp_path / "not-elf").write_text("text")
    with pytest.raises(JobFailure, match="readelf failed on not-elf"):
        binutils.run("readelf", "-W", "-h", tmp_path / "not-elf")
