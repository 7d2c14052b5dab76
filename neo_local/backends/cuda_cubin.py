"""Embed CUDA kernels in the library as a cubin, not as the CUDA C source TVM 0.27 leaves there.

Without a CUDA driver TVM's ``target.build.cuda`` keeps the kernels as source (module format
"cuda"), for the device's TVM runtime to compile through ``tvm_callback_cuda_compile`` when the
library is loaded. That needs NVRTC and the CUDA headers on the device, and compiles on every
load. Instead, ``export_library`` is given ``pack_with_cubin`` as its ``fpack_imports``: the
serialized modules are taken from TVM, the CUDA module's source is compiled by NVRTC for the
target's sm_XX and stored as format "cubin" (which TVM's CUDA runtime loads with
cuModuleLoadData), and the blob is written as the C array TVM's own packer writes.
"""

from __future__ import annotations

import os
from typing import Callable

from neo_local.backends import nvrtc
from neo_local.targets.binaries import LIBRARY_BLOB, DeviceModule, blob_modules, pack_blob

#: what TVM calls the serialized CUDA module, and the format of the machine code we store
KIND = "cuda"
CUBIN = "cubin"


def pack_with_cubin(arch: str) -> Callable[..., str]:
    """An ``fpack_imports`` for ``export_library`` that embeds the CUDA kernels as a cubin for ``arch`` (sm_XX)."""

    def pack(module, is_system_lib: bool, prefix: str, workspace_dir: str) -> str:
        import tvm_ffi

        if is_system_lib or prefix:
            raise ValueError("system-library CUDA builds are not supported")
        blob = tvm_ffi.get_global_func("runtime.ModulePackImportsToTensor")(module).numpy().tobytes()
        path = os.path.join(workspace_dir, "devc.c")
        with open(path, "w") as f:
            f.write(_c_array(compile_cuda_modules(blob, int(arch.removeprefix("sm_")))))
        return path

    return pack


def compile_cuda_modules(blob: bytes, sm: int) -> bytes:
    """The module blob with every CUDA source module replaced by its cubin for sm_``sm``."""
    tree, modules = blob_modules(blob)
    return pack_blob(tree, [(kind, _cubin(data, sm) if kind == KIND else data) for kind, data in modules])


def _cubin(payload: bytes, sm: int) -> bytes:
    module = DeviceModule.parse(payload)
    if module.format != KIND:
        raise ValueError(f"the CUDA module holds {module.format!r}, not CUDA C source")
    cubin = nvrtc.compile_cubin(module.data.decode(), sm)
    return DeviceModule(CUBIN, module.kernels, module.table, cubin).to_bytes()


def _c_array(blob: bytes) -> str:
    """C source that exports the blob under the symbol TVM's loader reads."""
    rows = ",\n".join(",".join(str(b) for b in blob[i: i + 32]) for i in range(0, len(blob), 32))
    return (
        f"extern const unsigned char {LIBRARY_BLOB}[];\n"
        f"const unsigned char {LIBRARY_BLOB}[{len(blob)}] = {{\n{rows}\n}};\n"
    )
