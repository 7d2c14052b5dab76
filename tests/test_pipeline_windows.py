"""Windows x64 (x86_win64) end to end: a DLL cross-linked with mingw against the win_amd64 tvm_ffi
import library, checked structurally, and run under wine64 by neo_run (runtime/native/neo_run.c)
with the TVM runtime DLLs of the win_amd64 wheels where scripts/setup-windows-runtime.sh prepared them."""

import json
import shutil
import subprocess
import tarfile

import pytest

from cross_runs import corrupt_library_reason, rerun_error_vs_torch
from example_archives import built
from neo_local.api.errors import JobFailure
from neo_local.runtime import ArtifactError, DLRModel
from neo_local.targets import emulation
from neo_local.targets.binaries import structural_check
from test_pipeline_arm import _compile

pytestmark = pytest.mark.skipif(
    shutil.which("x86_64-w64-mingw32-gcc") is None,
    reason="x86_64-w64-mingw32-gcc is not installed (scripts/setup.sh installs gcc-mingw-w64-x86-64-win32 as root)",
)

STRUCTURE = (
    "PE32+ pei-x86-64 DLL exporting __tvm_ffi__library_bin; imports tvm_ffi.dll, kernel32.dll, msvcrt.dll; from "
    "tvm_ffi.dll only the TVM FFI (TVMFFIErrorSetRaisedFromCStrParts)"
)


@pytest.fixture(scope="module")
def win64(tmp_path_factory):
    """resnet_like compiled for x86_win64 once: (tarball, unpacked folder, compiled.meta)."""
    tmp = tmp_path_factory.mktemp("win64")
    artifact = _compile(built("resnet_like", "onnx"), tmp / "out", TargetDevice="x86_win64")
    with tarfile.open(artifact) as tar:
        assert sorted(tar.getnames()) == ["compiled.dll", "compiled.meta"]
        tar.extractall(tmp / "a", filter="data")
    return artifact, tmp / "a", json.loads((tmp / "a" / "compiled.meta").read_text())


def _wine():
    found = emulation.find_emulator("WINDOWS", "X86_64", "x86-64")
    if isinstance(found, str):
        pytest.skip(f"no run under wine here: {found}")
    return found


def test_x86_win64_is_a_dll_importing_only_tvm_ffi_and_system_dlls(win64):
    artifact, folder, meta = win64
    assert artifact.name == "resnet_like-x86_win64.tar.gz"
    assert meta["Target"]["Os"] == "WINDOWS" and meta["Runtime"]["Library"] == "compiled.dll"
    assert meta["Target"]["TVMTarget"] == {"kind": "llvm", "mtriple": "x86_64-pc-windows-gnu", "mcpu": "x86-64"}
    assert meta["Target"]["Notes"][0].startswith("a Windows x64 DLL for the Windows build of apache-tvm-ffi 0.1.14")
    dump = subprocess.run(["objdump", "-p", str(folder / "compiled.dll")], capture_output=True, text=True,
                          check=True).stdout
    assert "file format pei-x86-64" in dump and "(PE32+)" in dump
    assert "DLL Name: tvm_ffi.dll" in dump
    verification = meta["Verification"]
    found = emulation.find_emulator("WINDOWS", "X86_64", "x86-64")
    if isinstance(found, str):  # without wine (or its setup) the job says why and checks the DLL
        assert verification["status"] == "structural"
        assert verification["detail"] == (
            f"not run: this host is LINUX x86_64, the artifact is for WINDOWS X86_64, and {found}. "
            f"Structural check passed: {STRUCTURE}"
        )
    else:
        assert verification["status"] == "passed"
        assert f"({STRUCTURE})" in verification["detail"]
    with pytest.raises(ArtifactError, match=r"compiled for x86_win64 \(WINDOWS\) and cannot be loaded on this LINUX"):
        DLRModel(artifact)


def test_x86_win64_runs_under_wine_and_matches_torch(win64, tmp_path):
    artifact, folder, meta = win64
    wine = _wine()
    verification = meta["Verification"]
    assert verification["status"] == "passed", verification
    assert verification["detail"].startswith(
        "ran under wine64 through neo_run (built with mingw-w64) with tvm_runtime.dll and tvm_ffi.dll from the "
        f"win_amd64 wheels ({STRUCTURE}) and matched "
    )
    assert verification["max_rel_error"] < 1e-4
    assert rerun_error_vs_torch(artifact, wine, tmp_path, "x86_win64 under wine") < 1e-4  # the tarball, unpacked first


def test_a_corrupt_dll_fails_under_wine_with_the_loader_s_reason(win64, tmp_path):
    _, folder, _ = win64
    reason = corrupt_library_reason(folder, "compiled.dll", b"MZ", _wine(), tmp_path)
    assert reason.startswith(
        "InternalError: the compiled artifact failed to run under wine64 through neo_run (built with mingw-w64) "
        "with tvm_runtime.dll and tvm_ffi.dll from the win_amd64 wheels: neo_run: loading the library failed: "
    ), reason


def test_pe_check_refuses_an_elf_library_and_a_foreign_import(tmp_path):
    elf = tmp_path / "x.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(elf), "-x", "c", "-"], input="int f(void){return 0;}",
                   text=True, check=True)
    with pytest.raises(JobFailure, match="x.so is a elf64-x86-64 file, not pei-x86-64"):
        structural_check(elf, "WINDOWS", "X86_64")
    source = tmp_path / "m.c"
    source.write_text("#include <winsock2.h>\nconst char __tvm_ffi__library_bin[] = \"x\";\n"
                      "__declspec(dllexport) int f(void) { return WSAGetLastError(); }\n")
    dll = tmp_path / "m.dll"
    subprocess.run(["x86_64-w64-mingw32-gcc", "-shared", "-o", str(dll), str(source), "-lws2_32",
                    "-Wl,--export-all-symbols"], check=True)
    with pytest.raises(JobFailure, match="m.dll needs libraries Windows system DLLs do not provide: ws2_32.dll"):
        structural_check(dll, "WINDOWS", "X86_64")
