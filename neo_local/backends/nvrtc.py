"""CUDA C to cubin with NVIDIA's NVRTC library, so a CUDA artifact needs no compiler on the device.

TVM 0.27 keeps a CUDA kernel module as CUDA C source (format "cuda") and compiles it when the
library is loaded, through ``tvm_callback_cuda_compile``, on a machine with a driver and NVRTC.
Jetsons and inference hosts have neither a guaranteed NVRTC nor the headers; a Neo artifact holds
machine code. So the source is compiled here, for the device's sm_XX, by the NVRTC of the
``nvidia-cuda-nvrtc-cu12`` wheel (loaded with ctypes: no driver or GPU is needed), against the
CUDA headers of the ``nvidia-cuda-runtime-cu12`` and ``nvidia-cuda-cccl-cu12`` wheels that TVM's
source includes (``cuda/std/cstdint``, ``cuda_fp16.h``).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

#: the wheel directories (under the ``nvidia`` namespace package) that hold the library and headers
_LIBRARY = ("cuda_nvrtc", "lib", "libnvrtc.so.12")
_HEADERS = (("cuda_runtime", "include"), ("cuda_cccl", "include"))
#: device code only: TVM's generated source guards its host includes with __CUDACC_RTC__
_OPTIONS = ("-std=c++17", "-default-device")


class NvrtcError(Exception):
    """NVRTC is missing or refused the source or the architecture; the message says which."""


@dataclass(frozen=True)
class Nvrtc:
    """A loaded NVRTC: its version and the real architectures (sm numbers) it compiles for."""

    version: str
    architectures: tuple[int, ...]


def _nvidia_dir() -> Path:
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        raise NvrtcError("NVRTC is not installed (the nvidia-cuda-nvrtc-cu12 wheel; pip install -e . installs it)")
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL:
    path = _nvidia_dir().joinpath(*_LIBRARY)
    if not path.is_file():
        raise NvrtcError(f"NVRTC is not installed: {path} is missing (the nvidia-cuda-nvrtc-cu12 wheel)")
    return ctypes.CDLL(str(path))


@functools.lru_cache(maxsize=1)
def nvrtc() -> Nvrtc:
    """The installed NVRTC; raises NvrtcError where it is missing."""
    lib = _library()
    major, minor, count = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    _call(lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    _call(lib.nvrtcGetNumSupportedArchs(ctypes.byref(count)), "nvrtcGetNumSupportedArchs")
    archs = (ctypes.c_int * count.value)()
    _call(lib.nvrtcGetSupportedArchs(archs), "nvrtcGetSupportedArchs")
    return Nvrtc(f"{major.value}.{minor.value}", tuple(archs))


def compile_cubin(source: str, sm: int) -> bytes:
    """Compile CUDA C ``source`` to a cubin for sm_``sm``; NvrtcError carries NVRTC's log."""
    lib = _library()
    include = [f"-I{_nvidia_dir().joinpath(*h)}" for h in _HEADERS]
    options = [*_OPTIONS, f"--gpu-architecture=sm_{sm}", *include]
    program = ctypes.c_void_p()
    _call(lib.nvrtcCreateProgram(ctypes.byref(program), source.encode(), b"kernels.cu", 0, None, None),
          "nvrtcCreateProgram")
    try:
        argv = (ctypes.c_char_p * len(options))(*(o.encode() for o in options))
        if lib.nvrtcCompileProgram(program, len(options), argv) != 0:
            raise NvrtcError(f"NVRTC {nvrtc().version} cannot compile the kernels for sm_{sm}: {_log(lib, program)}")
        size = ctypes.c_size_t()
        _call(lib.nvrtcGetCUBINSize(program, ctypes.byref(size)), "nvrtcGetCUBINSize")
        cubin = ctypes.create_string_buffer(size.value)
        _call(lib.nvrtcGetCUBIN(program, cubin), "nvrtcGetCUBIN")
        return cubin.raw
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(program))


def _log(lib: ctypes.CDLL, program: ctypes.c_void_p) -> str:
    """NVRTC's program log: its first errors, on one line."""
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(program, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(program, log)
    errors = [line.strip() for line in log.value.decode(errors="replace").splitlines() if "error" in line]
    return "; ".join(errors[:3]) or log.value.decode(errors="replace").strip()[:300]


def _call(result: int, name: str) -> None:
    if result != 0:
        lib = _library()
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        raise NvrtcError(f"{name} failed: {lib.nvrtcGetErrorString(result).decode()}")
