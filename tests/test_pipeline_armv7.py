"""Linux armv7 hard-float (rasp3b, sitara_am57x, TargetPlatform LINUX/ARM_EABIHF) and 32-bit x86
(LINUX/X86) end to end: cross-compiled, cross-linked and checked structurally. No prebuilt TVM
runtime exists for either; armv7 artifacts run under qemu-arm by neo_run (runtime/native/neo_run.c)
with the runtime scripts/setup-armhf-runtime.sh cross-builds, where it was built."""

import platform
import shutil

import pytest

from cross_runs import corrupt_library_reason, rerun_error_vs_torch
from example_archives import built
from neo_local.runtime import ArtifactError, DLRModel
from neo_local.targets import emulation
from test_pipeline_arm import _compile, _compile_platform, _readelf, _unpack


def _needs(linker: str):
    return pytest.mark.skipif(
        shutil.which(linker) is None, reason=f"{linker} is not installed (scripts/setup.sh installs it as root)"
    )


@pytest.fixture(scope="module")
def rasp3b(tmp_path_factory):
    """resnet_like compiled for rasp3b once: (tarball, unpacked folder, compiled.meta)."""
    tmp = tmp_path_factory.mktemp("rasp3b")
    artifact = _compile(built("resnet_like", "onnx"), tmp / "out", TargetDevice="rasp3b")
    return artifact, tmp / "a", _unpack(artifact, tmp / "a")


def _qemu_arm():
    found = emulation.find_emulator("LINUX", "ARM_EABIHF", "cortex-a53")
    if isinstance(found, str):
        pytest.skip(f"no run under qemu-arm here: {found}")
    return found


@_needs("arm-linux-gnueabihf-gcc")
def test_rasp3b_is_a_hard_float_armv7_library(rasp3b):
    artifact, folder, meta = rasp3b
    header = _readelf("-h", folder / "compiled.so")
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
    found = emulation.find_emulator("LINUX", "ARM_EABIHF", "cortex-a53")
    if isinstance(found, str):  # without the armhf runtime the job says why and checks the library
        assert verification["status"] == "structural"
        assert f"the artifact is for LINUX ARM_EABIHF, and {found}. Structural check passed: " in (
            verification["detail"]
        )
    else:
        assert verification["status"] == "passed"
    assert "ELF32 ARM (Version5 EABI, hard-float ABI) shared library, NEEDED " in verification["detail"]
    assert ("and the TVM runtime (TVMBackendAnyListMoveFromPackedReturn, TVMBackendAnyListSetPackedArg, "
            "TVMBackendParallelLaunch, TVMFFIErrorMoveFromRaised, TVMFFIErrorSetRaised, "
            "TVMFFIErrorSetRaisedFromCStrParts, TVMFFIObjectDecRef)") in verification["detail"]
    if platform.machine() == "x86_64":
        with pytest.raises(ArtifactError, match="compiled for rasp3b .* cannot run on this x86_64 machine"):
            DLRModel(artifact)


@_needs("arm-linux-gnueabihf-gcc")
def test_rasp3b_runs_under_qemu_arm_and_matches_torch(rasp3b, tmp_path):
    artifact, folder, meta = rasp3b
    qemu = _qemu_arm()
    verification = meta["Verification"]
    assert verification["status"] == "passed", verification
    assert verification["detail"].startswith(
        "ran under qemu-arm-static -cpu max through neo_run with the TVM runtime cross-built for armhf (ELF32 ARM "
    )
    assert verification["max_rel_error"] < 1e-4
    assert rerun_error_vs_torch(folder, qemu, tmp_path, "rasp3b under qemu-arm") < 1e-4


@_needs("arm-linux-gnueabihf-gcc")
def test_a_corrupt_library_fails_under_qemu_arm_with_the_loader_s_reason(rasp3b, tmp_path):
    _, folder, _ = rasp3b
    reason = corrupt_library_reason(folder, "compiled.so", b"\x7fELF", _qemu_arm(), tmp_path)
    assert reason.startswith(
        "InternalError: the compiled artifact failed to run under qemu-arm-static -cpu max through neo_run with the "
        "TVM runtime cross-built for armhf: neo_run: loading the library failed: "
    ), reason


@_needs("arm-linux-gnueabihf-gcc")
def test_platform_arm_eabihf_spec_example(tmp_path):
    meta = _compile_platform(tmp_path, "LINUX", "ARM_EABIHF", "{'mattr': ['+neon']}")
    assert meta["Target"]["TVMTarget"]["mcpu"] == "generic"
    runs = not isinstance(emulation.find_emulator("LINUX", "ARM_EABIHF", "generic"), str)
    assert meta["Verification"]["status"] == ("passed" if runs else "structural")


@_needs("i686-linux-gnu-gcc")
def test_platform_x86_is_an_i686_library_checked_structurally(tmp_path):
    meta = _compile_platform(tmp_path, "LINUX", "X86")
    header = _readelf("-h", tmp_path / "a" / "compiled.so")
    assert "ELF32" in header and "Intel 80386" in header
    assert meta["Target"]["TVMTarget"] == {"kind": "llvm", "mtriple": "i686-linux-gnu", "mcpu": "i686"}
    assert "no i686 wheel" in meta["Target"]["Notes"][0]
    assert meta["Verification"]["status"] == "structural"
    assert "Structural check passed: ELF32 Intel 80386 shared library" in meta["Verification"]["detail"]
