"""The TVM runtime scripts/setup-armhf-runtime.sh cross-builds for armv7 hard-float Linux: ELF
libraries a loader can link and load on a Raspberry Pi-class board, exporting the C API of the
x86 wheel's libraries, and (run under qemu-arm-static) registering the runtime globals that the
x86 wheel's libtvm_runtime.so registers, RPC and LLM serving aside."""

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neo_local.targets import emulation
from test_pipeline_arm import _readelf

RUNTIME = emulation.armhf_runtime_dir()
LIBS = ("libtvm_ffi.so", "libtvm_runtime.so")
# the x86 wheels' packages, located and not imported (importing tvm takes seconds)
FFI = Path(importlib.util.find_spec("tvm_ffi").origin).parent
WHEEL_LIBS = {"libtvm_ffi.so": FFI / "lib",
              "libtvm_runtime.so": Path(importlib.util.find_spec("tvm").origin).parent / "lib"}
# not built for armhf: RPC (no RPC server runs on the emulated target), the LLM-serving VM builtins
# (KV cache, RNN state, sampling: no neo-local model calls them) and the fp16 fallbacks of
# builtin_fp16.cc (on ARM, gcc links libgcc's __gnu_f2h_ieee/__gnu_h2f_ieee into each artifact)
LEFT_OUT_GLOBALS = re.compile(
    r"^(rpc\.|tvm\.rpc\.|device_api\.rpc$|runtime\.RPCTimeEvaluator$|cache_flush_cpu_non_first_arg$"
    r"|vm\.builtin\.(attention_kv_cache_|paged_attention_kv_cache_|kv_cache_disagg_|kv_state_|rnn_state_"
    r"|apply_(presence_and_frequency|repetition)_penalty$|apply_softmax_with_temperature$"
    r"|multinomial_from_uniform$|sample_top_p_))"
)
LEFT_OUT_SYMBOLS = {"__gnu_f2h_ieee", "__gnu_h2f_ieee", "__truncdfhf2"}

pytestmark = pytest.mark.skipif(
    not (RUNTIME / "READY").is_file(),
    reason=f"the armhf runtime is not built in {RUNTIME} (scripts/setup-armhf-runtime.sh)",
)


def _exported_c_functions(library: Path) -> set[str]:
    """Defined, visible, unmangled function symbols of a shared library (any ELF architecture)."""
    names = set()
    for line in _readelf("--dyn-syms", library).splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[3] == "FUNC" and fields[4] in ("GLOBAL", "WEAK") and fields[6] != "UND":
            name = fields[7].split("@")[0]
            if not name.startswith("_Z"):
                names.add(name)
    return names


@pytest.mark.parametrize("name", LIBS)
def test_library_is_hard_float_armv7_neon(name):
    library = RUNTIME / "lib" / name
    header = _readelf("-h", library)
    assert "Class:                             ELF32" in header
    assert "Machine:                           ARM" in header
    assert "Version5 EABI, hard-float ABI" in header
    assert "DYN (Shared object file)" in header
    attributes = _readelf("-A", library)
    for tag in ("Tag_CPU_arch: v7", "Tag_Advanced_SIMD_arch: NEONv1", "Tag_ABI_VFP_args: VFP registers"):
        assert tag in attributes
    assert f"Library soname: [{name}]" in _readelf("-d", library)


def test_runtime_needs_tvm_ffi_beside_it():
    dynamic = _readelf("-d", RUNTIME / "lib" / "libtvm_runtime.so")
    assert "Shared library: [libtvm_ffi.so]" in dynamic
    assert "Library runpath: [$ORIGIN]" in dynamic


# what a loader calls, and what TVM-generated kernels resolve when the library is loaded
NEEDED_SYMBOLS = {
    "libtvm_ffi.so": {"TVMFFIFunctionGetGlobal", "TVMFFIFunctionCall", "TVMFFITensorFromDLPack", "TVMFFIObjectDecRef",
                      "TVMFFIErrorMoveFromRaised", "TVMFFIErrorSetRaisedFromCStrParts"},
    "libtvm_runtime.so": {"TVMBackendAllocWorkspace", "TVMBackendFreeWorkspace", "TVMBackendParallelLaunch",
                          "TVMBackendParallelBarrier"},
}


@pytest.mark.parametrize("name", LIBS)
def test_library_exports_the_c_api_of_the_x86_wheel(name):
    wheel = _exported_c_functions(WHEEL_LIBS[name] / name)
    armhf = _exported_c_functions(RUNTIME / "lib" / name)
    assert NEEDED_SYMBOLS[name] <= wheel
    assert NEEDED_SYMBOLS[name] <= armhf
    assert wheel - LEFT_OUT_SYMBOLS <= armhf, sorted(wheel - LEFT_OUT_SYMBOLS - armhf)


def _x86_runtime_globals() -> set[str]:
    """The globals the x86 wheel's libtvm_runtime.so registers (in a fresh process: this one may
    have loaded it already)."""
    script = (
        "import ctypes, sys, tvm_ffi\n"
        "before = set(tvm_ffi.registry.list_global_func_names())\n"
        "ctypes.CDLL(sys.argv[1], ctypes.RTLD_GLOBAL)\n"
        "print('\\n'.join(sorted(set(tvm_ffi.registry.list_global_func_names()) - before)))\n"
    )
    library = WHEEL_LIBS["libtvm_runtime.so"] / "libtvm_runtime.so"
    out = subprocess.run([sys.executable, "-c", script, str(library)], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.skipif(
    shutil.which("arm-linux-gnueabihf-gcc") is None or shutil.which("qemu-arm-static") is None,
    reason="arm-linux-gnueabihf-gcc and qemu-arm-static are needed (scripts/setup.sh installs them as root)",
)
def test_runtime_registers_the_x86_runtime_globals_under_qemu(tmp_path):
    program = tmp_path / "list_globals"
    subprocess.run(
        ["arm-linux-gnueabihf-gcc", "-O1", "-o", str(program), str(Path(__file__).with_name("armhf_list_globals.c")),
         f"-I{FFI / 'include'}", f"-I{FFI / '3rdparty/dlpack/include'}", f"-L{RUNTIME / 'lib'}", "-ltvm_ffi", "-ldl"],
        check=True, capture_output=True, text=True,
    )
    run = subprocess.run(
        ["qemu-arm-static", "-L", "/usr/arm-linux-gnueabihf", str(program), "libtvm_runtime.so"],
        env={"LD_LIBRARY_PATH": str(RUNTIME / "lib")}, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    armhf = set(run.stdout.split())
    expected = {name for name in _x86_runtime_globals() if not LEFT_OUT_GLOBALS.match(name)}
    assert expected <= armhf, sorted(expected - armhf)
    # the Relax VM path: load the DSO, read its executable, run builtins on the thread pool
    assert {"ffi.ModuleLoadFromFile", "ffi.Module.load_from_file.so", "ffi.Module.load_from_bytes.relax.VMExecutable",
            "vm.builtin.alloc_storage", "vm.builtin.match_shape", "runtime.config_threadpool"} <= armhf
