"""Checks of foreign libraries on an x86_64 host: structure (readelf), the runners' setup (qemu,
wine, the native loader), stopping a run that hangs, and the runtime's refusal of a library for
another architecture."""

import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from neo_local import verify
from neo_local.api.errors import JobFailure
from neo_local.runtime import ArtifactError, DLRModel
from neo_local.targets import emulation
from neo_local.targets.binaries import structural_check

CROSS = "aarch64-linux-gnu-gcc"
ARMHF = "arm-linux-gnueabihf-gcc"


def _needs(cc: str):
    return pytest.mark.skipif(shutil.which(cc) is None, reason=f"{cc} is not installed (scripts/setup.sh)")


needs_cross = _needs(CROSS)


def _cross_library(tmp_path, source: str, cc: str = CROSS, *flags: str):
    c = tmp_path / "lib.c"
    c.write_text(source)
    out = tmp_path / "lib.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(out), str(c), *flags], check=True)
    return out


@needs_cross
def test_structural_check_of_an_aarch64_library(tmp_path):
    lib = _cross_library(
        tmp_path,
        "#include <stdio.h>\nint TVMFFIErrorSetRaisedFromCStrParts(const char*, const char**, int);\n"
        "int f(const char* s) { puts(s); return TVMFFIErrorSetRaisedFromCStrParts(s, 0, 0); }\n",
    )
    summary = structural_check(lib, "LINUX", "ARM64")
    assert summary.startswith("ELF64 AArch64 shared library, NEEDED libc.so.6;")
    assert "(TVMFFIErrorSetRaisedFromCStrParts)" in summary
    with pytest.raises(JobFailure, match="lib.so is an ELF64 AArch64 file, not ELF64 Advanced Micro Devices X86-64"):
        structural_check(lib, "LINUX", "X86_64")


@_needs(ARMHF)
def test_structural_check_of_an_armv7_library_checks_the_float_abi(tmp_path):
    lib = _cross_library(tmp_path, "float f(float x) { return x * 2.0f; }\n", ARMHF)
    assert structural_check(lib, "LINUX", "ARM_EABIHF").startswith(
        "ELF32 ARM (Version5 EABI, hard-float ABI) shared library, NEEDED "
    )
    with pytest.raises(JobFailure, match="is an ELF32 ARM file, not ELF64 AArch64"):
        structural_check(lib, "LINUX", "ARM64")
    # a soft-float library (no hard-float flag) cannot be linked with armhf code
    soft = _cross_library(tmp_path, "int g(int x) { return x; }\n", ARMHF, "-mfloat-abi=softfp", "-nostdlib")
    with pytest.raises(JobFailure, match="has ELF flags '0x5000200, Version5 EABI, soft-float ABI', without hard-float ABI"):
        structural_check(soft, "LINUX", "ARM_EABIHF")


@needs_cross
def test_structural_check_refuses_foreign_needed_libraries(tmp_path):
    (tmp_path / "foo").mkdir()
    _cross_library(tmp_path / "foo", "int foo(int x) { return x; }\n").rename(tmp_path / "libfoo.so")
    lib = _cross_library(tmp_path, "int foo(int);\nint f(int x) { return foo(x); }\n", CROSS, f"-L{tmp_path}", "-lfoo")
    with pytest.raises(JobFailure, match="needs libraries glibc/libgcc do not provide: libfoo.so"):
        structural_check(lib, "LINUX", "ARM64")


@needs_cross
def test_structural_check_refuses_unknown_undefined_symbols(tmp_path):
    lib = _cross_library(tmp_path, "int missing_helper(int);\nint f(int x) { return missing_helper(x); }\n")
    with pytest.raises(JobFailure, match="needs symbols neither glibc/libgcc nor the TVM runtime provides: missing_helper"):
        structural_check(lib, "LINUX", "ARM64")


def test_missing_emulation_runtime_is_said(tmp_path, monkeypatch):
    monkeypatch.setenv(emulation.ENV_DIR, str(tmp_path / "none"))
    found = emulation.find_emulator("LINUX", "ARM64", "cortex-a72")
    assert isinstance(found, str)
    if shutil.which("qemu-aarch64-static"):
        assert found == (
            f"the aarch64 python and TVM runtime are not prepared in {tmp_path / 'none'} "
            "(run scripts/setup-aarch64-emulation.sh)"
        )
    assert emulation.find_emulator("LINUX", "X86", "i686") == (
        "nothing on this host runs LINUX X86 libraries (see the target's notes)"
    )


def test_missing_native_runtimes_are_said(tmp_path, monkeypatch):
    monkeypatch.setenv(emulation.WINDOWS_ENV_DIR, str(tmp_path / "no-windows"))
    monkeypatch.setenv(emulation.ARMHF_ENV_DIR, str(tmp_path / "no-armhf"))
    windows = emulation.find_emulator("WINDOWS", "X86_64", "x86-64")
    if shutil.which("wine64") or shutil.which("/usr/lib/wine/wine64"):
        assert windows == (
            f"the Windows TVM runtime DLLs and wine prefix are not prepared in {tmp_path / 'no-windows'} "
            "(run scripts/setup-windows-runtime.sh)"
        )
    else:
        assert windows == "wine64 is not installed (Debian package wine64; scripts/setup.sh installs it as root)"
    if shutil.which("qemu-arm-static"):
        assert emulation.find_emulator("LINUX", "ARM_EABIHF", "cortex-a7") == (
            f"the armhf TVM runtime is not built in {tmp_path / 'no-armhf'} (run scripts/setup-armhf-runtime.sh)"
        )


def test_every_emulated_pair_has_a_runner():
    assert set(emulation.RUNNERS) == {("LINUX", "ARM64"), ("WINDOWS", "X86_64"), ("LINUX", "ARM_EABIHF")}


@_needs("x86_64-w64-mingw32-gcc")
def test_native_loader_builds_once_per_source(tmp_path, monkeypatch):
    monkeypatch.setattr(emulation, "LOADER_CACHE", tmp_path)
    exe = emulation.build_loader("x86_64-w64-mingw32-gcc", ".exe")
    assert exe == emulation.build_loader("x86_64-w64-mingw32-gcc", ".exe")
    assert [p.name for p in tmp_path.iterdir()] == [exe.name]
    dump = subprocess.run(["objdump", "-p", str(exe)], capture_output=True, text=True, check=True).stdout
    # the TVM libraries are opened at run time: the loader imports only Windows system DLLs
    assert "(PE32+)" in dump and "tvm" not in dump.lower()


@dataclass(frozen=True)
class _Sleeper:
    """A runner whose program never finishes and leaves a child behind (as wine's helpers do)."""

    pid_file: Path

    def describe(self) -> str:
        return "under a sleeper"

    def invocation(self, artifact, feeds, workdir) -> emulation.Invocation:
        script = f"sleep 60 & echo $! > {self.pid_file}; wait"
        return emulation.Invocation(("sh", "-c", script), dict(os.environ), None, workdir / "out")


def test_a_run_that_hangs_is_stopped_with_its_children(tmp_path, monkeypatch):
    monkeypatch.setattr(verify, "TIMEOUT_S", 1)
    with pytest.raises(JobFailure, match=r"InternalError: the compiled artifact did not finish within 1 s under a sleeper"):
        verify.run_artifact(tmp_path, {}, tmp_path / "run", _Sleeper(tmp_path / "pid"))
    stat = Path(f"/proc/{int((tmp_path / 'pid').read_text())}/stat")
    time.sleep(0.2)
    assert not stat.exists() or stat.read_text().split(") ")[1].startswith("Z")  # gone, or a zombie left to init


def test_emulator_picks_the_qemu_cpu_model():
    found = emulation.find_emulator("LINUX", "ARM64", "cortex-a72")
    if isinstance(found, str):
        pytest.skip(f"no aarch64 emulation here: {found}")
    assert found.cpu == "cortex-a72"
    assert emulation.find_emulator("LINUX", "ARM64", "neoverse-n1").cpu == "neoverse-n1"
    assert emulation.find_emulator("LINUX", "ARM64", "generic").cpu == "max"


def test_staged_runtime_is_the_runtime_only(tmp_path):
    root = emulation.stage_runtime(tmp_path / "stage")
    files = {p.relative_to(root).as_posix() for p in root.rglob("*.py")}
    assert "neo_local/runtime/check.py" in files and "neo_local/targets/cpu_features.py" in files
    assert not any(f.startswith(("neo_local/api", "neo_local/frontends", "neo_local/backends")) for f in files)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="checks the refusal on an x86_64 host")
def test_x86_64_host_refuses_an_aarch64_artifact(tmp_path):
    meta = {
        "Requirements": {"TargetDevice": "ml_c6g", "TargetDeviceType": "cpu"},
        "Model": {"Inputs": [], "Outputs": []},
        "Target": {"Os": "LINUX", "Arch": "ARM64", "TVMTarget": {"mcpu": "neoverse-n1"}, "CpuFeatures": ["asimd"]},
        "Runtime": {"Kind": "tvm-relax-vm", "Library": "compiled.so"},
        "Compiler": {},
    }
    (tmp_path / "compiled.meta").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError) as err:
        DLRModel(tmp_path)
    assert str(err.value) == (
        "artifact was compiled for ml_c6g (LINUX ARM64, aarch64 CPUs) and cannot run on this x86_64 machine; "
        "run it on an aarch64 device, or compile for this machine's architecture"
    )
