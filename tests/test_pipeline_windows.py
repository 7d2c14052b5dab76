"""Windows x64 (x86_win64) end to end: a DLL cross-linked with mingw against the win_amd64
tvm_ffi import library, checked structurally (nothing runs Windows code on these Linux hosts)."""

import json
import shutil
import subprocess
import tarfile

import pytest

from example_archives import built
from neo_local.api.errors import JobFailure
from neo_local.runtime import ArtifactError, DLRModel
from neo_local.targets.binaries import structural_check
from test_pipeline_arm import _compile

pytestmark = pytest.mark.skipif(
    shutil.which("x86_64-w64-mingw32-gcc") is None,
    reason="x86_64-w64-mingw32-gcc is not installed (scripts/setup.sh installs gcc-mingw-w64-x86-64-win32 as root)",
)


def test_x86_win64_is_a_dll_importing_only_tvm_ffi_and_system_dlls(tmp_path):
    example = built("resnet_like", "onnx")
    artifact = _compile(example, tmp_path / "out", TargetDevice="x86_win64")
    assert artifact.name == "resnet_like-x86_win64.tar.gz"
    with tarfile.open(artifact) as tar:
        assert sorted(tar.getnames()) == ["compiled.dll", "compiled.meta"]
        tar.extractall(tmp_path / "a", filter="data")
    meta = json.loads((tmp_path / "a" / "compiled.meta").read_text())
    assert meta["Target"]["Os"] == "WINDOWS" and meta["Runtime"]["Library"] == "compiled.dll"
    assert meta["Target"]["TVMTarget"] == {"kind": "llvm", "mtriple": "x86_64-pc-windows-gnu", "mcpu": "x86-64"}
    assert meta["Target"]["Notes"][0].startswith("a Windows x64 DLL for the Windows build of apache-tvm-ffi 0.1.14")
    dump = subprocess.run(["objdump", "-p", str(tmp_path / "a" / "compiled.dll")], capture_output=True, text=True,
                          check=True).stdout
    assert "file format pei-x86-64" in dump and "(PE32+)" in dump
    assert "DLL Name: tvm_ffi.dll" in dump
    verification = meta["Verification"]
    assert verification["status"] == "structural"
    assert verification["detail"].startswith(
        "not run: this host is LINUX x86_64, the artifact is for WINDOWS X86_64, and nothing on this host runs "
        "WINDOWS X86_64 libraries (see the target's notes). Structural check passed: PE32+ pei-x86-64 DLL exporting "
        "__tvm_ffi__library_bin; imports tvm_ffi.dll, kernel32.dll, msvcrt.dll; from tvm_ffi.dll only the TVM FFI "
        "(TVMFFIErrorSetRaisedFromCStrParts)"
    )
    with pytest.raises(ArtifactError, match=r"compiled for x86_win64 \(WINDOWS\) and cannot be loaded on this LINUX"):
        DLRModel(artifact)


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
