"""Linux armv7 hard-float (rasp3b, sitara_am57x, TargetPlatform LINUX/ARM_EABIHF) and 32-bit x86
(LINUX/X86) end to end: cross-compiled, cross-linked and checked structurally. No TVM runtime
exists for either, so nothing is run; the job must say so."""

import platform
import shutil

import pytest

from example_archives import built
from neo_local.runtime import ArtifactError, DLRModel
from test_pipeline_arm import _compile, _compile_platform, _readelf, _unpack


def _needs(linker: str):
    return pytest.mark.skipif(
        shutil.which(linker) is None, reason=f"{linker} is not installed (scripts/setup.sh installs it as root)"
    )


@_needs("arm-linux-gnueabihf-gcc")
def test_rasp3b_is_a_hard_float_armv7_library_checked_structurally(tmp_path):
    example = built("resnet_like", "onnx")
    artifact = _compile(example, tmp_path / "out", TargetDevice="rasp3b")
    meta = _unpack(artifact, tmp_path / "a")
    library = tmp_path / "a" / "compiled.so"
    header = _readelf("-h", library)
    assert "Class:                             ELF32" in header
    assert "Machine:                           ARM" in header
    assert "Version5 EABI, hard-float ABI" in header
    assert meta["Target"]["TVMTarget"] == {
        "kind": "llvm", "mtriple": "armv7l-linux-gnueabihf", "mcpu": "cortex-a53", "mattr": ["+neon"],
        "mfloat-abi": "hard",
    }
    assert meta["Target"]["Arch"] == "ARM_EABIHF"
    assert meta["Target"]["Notes"][1].startswith("no prebuilt TVM runtime exists for 32-bit ARM Linux")
    verification = meta["Verification"]
    assert verification["status"] == "structural"
    assert "the artifact is for LINUX ARM_EABIHF, and nothing on this host runs LINUX ARM_EABIHF libraries" in (
        verification["detail"]
    )
    assert "Structural check passed: ELF32 ARM (Version5 EABI, hard-float ABI) shared library, NEEDED " in (
        verification["detail"]
    )
    assert verification["detail"].endswith("and the TVM FFI (TVMFFIErrorSetRaisedFromCStrParts)")
    if platform.machine() == "x86_64":
        with pytest.raises(ArtifactError, match="compiled for rasp3b .* cannot run on this x86_64 machine"):
            DLRModel(artifact)


@_needs("arm-linux-gnueabihf-gcc")
def test_platform_arm_eabihf_spec_example(tmp_path):
    meta = _compile_platform(tmp_path, "LINUX", "ARM_EABIHF", "{'mattr': ['+neon']}")
    assert meta["Target"]["TVMTarget"]["mcpu"] == "generic"
    assert meta["Verification"]["status"] == "structural"


@_needs("i686-linux-gnu-gcc")
def test_platform_x86_is_an_i686_library_checked_structurally(tmp_path):
    meta = _compile_platform(tmp_path, "LINUX", "X86")
    header = _readelf("-h", tmp_path / "a" / "compiled.so")
    assert "ELF32" in header and "Intel 80386" in header
    assert meta["Target"]["TVMTarget"] == {"kind": "llvm", "mtriple": "i686-linux-gnu", "mcpu": "i686"}
    assert "no i686 wheel" in meta["Target"]["Notes"][0]
    assert meta["Verification"]["status"] == "structural"
    assert "Structural check passed: ELF32 Intel 80386 shared library" in meta["Verification"]["detail"]
