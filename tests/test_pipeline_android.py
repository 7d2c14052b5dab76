"""Android arm64 (qcs605, qcs603, TargetPlatform ANDROID/ARM64 with ANDROID_PLATFORM) end to end:
linked against generated bionic stub libraries, never glibc, and checked structurally."""

import re
import shutil

import pytest

from example_archives import built
from neo_local.runtime import ArtifactError, DLRModel
from test_pipeline_arm import _compile, _compile_platform, _readelf, _unpack

pytestmark = pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-gcc") is None,
    reason="aarch64-linux-gnu-gcc is not installed (scripts/setup.sh installs gcc-aarch64-linux-gnu as root)",
)

BIONIC = {"libc.so", "libm.so", "libdl.so", "libtvm_ffi.so"}


def _assert_bionic_library(library):
    dynamic = _readelf("-d", library)
    needed = {line.split("[")[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line}
    assert "libtvm_ffi.so" in needed and needed <= BIONIC, needed
    assert "(HASH)" in dynamic and "(GNU_HASH)" in dynamic  # API levels below 23 need DT_HASH
    assert "GLIBC" not in _readelf("--dyn-syms", library) + _readelf("-V", library)
    assert "Machine:                           AArch64" in _readelf("-h", library)


def test_qcs605_is_a_bionic_library_without_x18(tmp_path):
    example = built("resnet_like", "onnx")
    artifact = _compile(example, tmp_path / "out", TargetDevice="qcs605")
    meta = _unpack(artifact, tmp_path / "a")
    _assert_bionic_library(tmp_path / "a" / "compiled.so")
    assert meta["Target"]["Os"] == "ANDROID"
    assert meta["Target"]["TVMTarget"] == {
        "kind": "llvm", "mtriple": "aarch64-linux-android21", "mcpu": "cortex-a75", "mattr": ["+reserve-x18"]
    }
    notes = meta["Target"]["Notes"]
    assert notes[0].startswith("CPU only: tuned for the QCS605's Kryo 300 Gold")
    assert notes[1].startswith("an Android (bionic) library for API level 21 and later: it needs libtvm_ffi.so")
    verification = meta["Verification"]
    assert verification["status"] == "structural"
    # libc.so is NEEDED where a kernel calls memset or memcpy (a conv padding per row; a small
    # kernel's copy, serial since small_kernels, which LLVM makes a memcpy call)
    assert re.search(r"Structural check passed: ELF64 AArch64 shared library, NEEDED (libc\.so, )?libtvm_ffi\.so; "
                     r"undefined symbols only from bionic and the TVM runtime \(TVMFFIErrorSetRaisedFromCStrParts\)",
                     verification["detail"]), verification["detail"]
    with pytest.raises(ArtifactError, match=r"compiled for qcs605 \(ANDROID\) and cannot be loaded on this LINUX"):
        DLRModel(artifact)


def test_platform_android_arm64_at_api_level_29(tmp_path):
    meta = _compile_platform(tmp_path, "ANDROID", "ARM64", "{'ANDROID_PLATFORM': 29}")
    _assert_bionic_library(tmp_path / "a" / "compiled.so")
    assert meta["Target"]["TVMTarget"]["mtriple"] == "aarch64-linux-android29"
    assert "API level 29 and later" in meta["Target"]["Notes"][0]
    assert meta["Verification"]["status"] == "structural"
