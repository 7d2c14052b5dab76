"""Linux aarch64 end to end: cross-compiled and cross-linked on this host, checked structurally,
and run under qemu-aarch64 with the aarch64 TVM runtime where scripts/setup.sh prepared it."""

import json
import platform
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

import neo_local
from neo_local.api.errors import JobFailure
from example_archives import built
from neo_local.runtime import ArtifactError, DLRModel
from neo_local.targets import emulation
from neo_local.verify import compare, run_artifact

pytestmark = pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-gcc") is None,
    reason="aarch64-linux-gnu-gcc is not installed (scripts/setup.sh installs gcc-aarch64-linux-gnu as root)",
)


def _compile(example, out: Path, **output) -> Path:
    uri = neo_local.compile(
        InputConfig={"S3Uri": f"file://{example.archive}", "Framework": example.framework,
                     "DataInputConfig": example.data_input_config},
        OutputConfig={"S3OutputLocation": str(out), **output},
    )
    return Path(uri)


def _unpack(artifact: Path, dest: Path) -> dict:
    with tarfile.open(artifact) as tar:
        assert sorted(tar.getnames()) == ["compiled.meta", "compiled.so"]
        tar.extractall(dest, filter="data")
    return json.loads((dest / "compiled.meta").read_text())


def _compile_platform(tmp_path: Path, os: str, arch: str, options: str | None = None) -> dict:
    """The tiny two-input CNN compiled for TargetPlatform ``os``/``arch``; returns its compiled.meta,
    the artifact unpacked into ``tmp_path / "a"``."""
    extra = {"CompilerOptions": options} if options else {}
    artifact = _compile(
        built("two_input_net", "onnx"), tmp_path / "out", TargetPlatform={"Os": os, "Arch": arch}, **extra
    )
    assert artifact.name == f"two_input_net-{os}_{arch}.tar.gz"
    return _unpack(artifact, tmp_path / "a")


def _readelf(flag: str, library: Path) -> str:
    return subprocess.run(["readelf", "-W", flag, str(library)], capture_output=True, text=True, check=True).stdout


def _assert_aarch64_library(library: Path) -> None:
    assert "Machine:                           AArch64" in _readelf("-h", library)
    assert "DYN (Shared object file)" in _readelf("-h", library)
    # glibc's libraries only: libpthread.so.0 and libdl.so.2 for the thread pool on glibcs before 2.34
    # (targets.glibc), libm where a kernel calls it (gcc links it --as-needed)
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", _readelf("-d", library)))
    pool = {"libc.so.6", "libpthread.so.0", "libdl.so.2"}
    assert pool <= needed <= pool | {"libm.so.6"}, needed


def _emulator(mcpu: str):
    found = emulation.find_emulator("LINUX", "ARM64", mcpu)
    return None if isinstance(found, str) else found


def test_ml_c6g_cross_linked_and_run_under_qemu(tmp_path):
    example = built("resnet_like", "torchscript")
    artifact = _compile(example, tmp_path / "out", TargetDevice="ml_c6g")
    assert artifact.name == "resnet_like-ml_c6g.tar.gz"
    meta = _unpack(artifact, tmp_path / "a")
    _assert_aarch64_library(tmp_path / "a" / "compiled.so")
    assert meta["Target"]["Arch"] == "ARM64"
    assert meta["Target"]["TVMTarget"] == {
        "kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "neoverse-n1", "mattr": ["+neon"]
    }
    assert meta["Target"]["CpuFeatures"] == ["asimd", "asimddp", "asimdhp", "asimdrdm", "fp"]
    verification = meta["Verification"]
    if _emulator("neoverse-n1") is None:
        assert verification["status"] == "structural", verification
        assert verification["detail"].startswith("not run: this host is ")
    else:
        assert verification["status"] == "passed", verification
        assert verification["detail"].startswith(
            "ran under qemu-aarch64-static -cpu neoverse-n1 with Debian's arm64 python3.11 and the aarch64 TVM "
            "runtime (ELF64 AArch64 shared library, NEEDED libpthread.so.0, libdl.so.2, libc.so.6;"  # the pool's
        )
        assert "undefined symbols only from glibc/libgcc (at most GLIBC_2.17) and the TVM runtime" in (
            verification["detail"]
        )
        assert verification["max_rel_error"] < 1e-4  # against torch (the archive is TorchScript)
        # an emulated Cortex-A53 lacks the dot-product and fp16 extensions: the runtime refuses
        with pytest.raises(JobFailure) as err:
            run_artifact(tmp_path / "a", example.load_inputs(), tmp_path / "a53", _emulator("cortex-a53"))
        assert (
            "ArtifactError: artifact was compiled for ml_c6g (mcpu neoverse-n1) and uses CPU features this machine "
            "lacks: asimddp, asimdhp, asimdrdm. Running it here would crash with an illegal instruction; compile for "
            "a target this CPU supports (e.g. TargetPlatform LINUX/ARM64 with its mcpu)."
        ) in err.value.reason
    if platform.machine() == "x86_64":
        with pytest.raises(ArtifactError, match="compiled for ml_c6g .* cannot run on this x86_64 machine"):
            DLRModel(artifact)


def test_rasp4b_matches_torch_under_qemu(tmp_path):
    example = built("resnet_like", "onnx")
    artifact = _compile(example, tmp_path / "out", TargetDevice="rasp4b")
    meta = _unpack(artifact, tmp_path / "a")
    _assert_aarch64_library(tmp_path / "a" / "compiled.so")
    assert meta["Target"]["TVMTarget"]["mcpu"] == "cortex-a72"
    assert meta["Target"]["CpuFeatures"] == ["asimd", "fp"]
    assert "64-bit (aarch64) OS" in meta["Target"]["Notes"][0]
    emulator = _emulator("cortex-a72")
    if emulator is None:
        pytest.skip(f"numeric check needs the aarch64 emulation: {emulation.find_emulator('LINUX', 'ARM64', 'cortex-a72')}")
    assert meta["Verification"]["status"] == "passed"
    assert "qemu-aarch64-static -cpu cortex-a72" in meta["Verification"]["detail"]
    # the unpacked folder: Debian 12's python 3.11.2 has no tarfile extraction filters, which
    # DLRModel uses to open a tarball
    actual = run_artifact(tmp_path / "a", example.load_inputs(), tmp_path / "run", emulator)
    max_abs, max_rel = compare(example.load_outputs(), actual)
    print(f"rasp4b under qemu vs torch: max abs error {max_abs:.3g}, max rel error {max_rel:.3g}")
    assert max_rel < 1e-4


def test_platform_arm64_without_emulation_is_checked_structurally(tmp_path, monkeypatch):
    monkeypatch.setenv(emulation.ENV_DIR, str(tmp_path / "no-emulation"))
    meta = _compile_platform(tmp_path, "LINUX", "ARM64", '{"mcpu": "cortex-a53"}')
    _assert_aarch64_library(tmp_path / "a" / "compiled.so")
    verification = meta["Verification"]
    assert verification["status"] == "structural"
    assert "the artifact is for LINUX ARM64, and " in verification["detail"]
    assert verification["detail"].endswith(
        "Structural check passed: ELF64 AArch64 shared library, NEEDED libpthread.so.0, libdl.so.2, libc.so.6; "
        "undefined symbols only from glibc/libgcc (at most GLIBC_2.17) and the TVM runtime "
        "(TVMBackendAnyListMoveFromPackedReturn, TVMBackendAnyListSetPackedArg, TVMBackendParallelLaunch, "
        "TVMFFIErrorMoveFromRaised, TVMFFIErrorSetRaised, TVMFFIErrorSetRaisedFromCStrParts, TVMFFIObjectDecRef)"
    )


@pytest.mark.parametrize("arch,mcpu,linker,config", [
    ("ARM64", "cortex-a72", "aarch64-linux-gnu-gcc", "'lanes': 4, 'max_acc': 20"),  # 32 v registers
    ("ARM_EABIHF", "cortex-a53", "arm-linux-gnueabihf-gcc", "'lanes': 4, 'max_acc': 8"),  # 16 q registers
])
def test_arm_takes_the_neon_schedules_and_matches_under_qemu(tmp_path, arch, mcpu, linker, config):
    """The scheduled CPU pipeline with 4-lane (NEON) blocks builds ARM artifacts (depthwise convs
    included), and the job's verification runs them under qemu (aarch64: the arm64 python and TVM
    runtime; armv7: the cross-built armhf runtime) and compares them with onnxruntime on the same
    input. No ARM timings: emulation says nothing about speed."""
    if shutil.which(linker) is None:
        pytest.skip(f"{linker} is not installed (scripts/setup.sh installs it as root)")
    example = built("mobilenet_like", "onnx")
    artifact = _compile(example, tmp_path / "out", TargetPlatform={"Os": "LINUX", "Arch": arch},
                        CompilerOptions=json.dumps({"mcpu": mcpu}))
    meta = _unpack(artifact, tmp_path / "a")
    pipeline = meta["Build"]["Pipeline"]
    assert pipeline.startswith("neo-local scheduled CPU pipeline ("), pipeline
    assert "'depthwise': 7" in pipeline and "'unscheduled': 0" in pipeline and config in pipeline, pipeline
    emulator = emulation.find_emulator("LINUX", arch, mcpu)
    verification = meta["Verification"]
    if isinstance(emulator, str):
        assert verification["status"] == "structural", verification
        pytest.skip(f"numeric check needs the emulation: {emulator}")
    assert verification["status"] == "passed", verification
    assert verification["max_rel_error"] < 1e-4
