"""Linking for Android (bionic) without the NDK: stub libraries to link against.

An Android library must name bionic's ``libc.so``, ``libm.so``, ``libdl.so`` (and the app's
``libtvm_ffi.so``) as DT_NEEDED, with unversioned symbols: a library linked against glibc's
``libc.so.6`` does not load there. No NDK can be had here, so neo-local writes stub libraries
whose only use is the link: each defines, under the real soname, the functions generated code
may call (``libtvm_ffi.so``: the C API the installed tvm-ffi exports). The cross gcc then links
with ``-nostdlib`` (nothing of glibc enters) and ``-z defs`` (a call to anything outside the
stubs is a link error, not a library that fails to load on the phone).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from neo_local.api.errors import internal_error
from neo_local.targets import binutils

_MATH = (
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "pow", "sqrt", "cbrt", "sin", "cos", "tan",
    "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "erf", "erfc",
    "tgamma", "lgamma", "floor", "ceil", "round", "trunc", "rint", "nearbyint", "fmod", "fabs", "fmin",
    "fmax", "fma", "hypot", "ldexp", "frexp", "copysign", "remainder", "lround", "lrint", "sincos",
)

#: the functions each bionic library provides to TVM-generated code (C99 math in float and double)
SYSTEM_FUNCTIONS = {
    "libc.so": (
        "memcpy", "memmove", "memset", "memcmp", "malloc", "calloc", "realloc", "free", "abort", "strlen",
        "strcmp", "__cxa_finalize", "__cxa_atexit", "__stack_chk_fail",
    ),
    "libm.so": tuple(f"{name}{suffix}" for name in _MATH for suffix in ("", "f")),
    "libdl.so": ("dlopen", "dlsym", "dlclose", "dlerror"),
}
TVM_FFI = "libtvm_ffi.so"

#: how every Android library is linked (options come before the objects)
LINK_OPTIONS = (
    "-nostdlib",
    "-Wl,-z,defs",
    "-Wl,-z,now",
    "-Wl,--hash-style=both",          # DT_HASH for API levels below 23, DT_GNU_HASH for later ones
    "-Wl,-z,max-page-size=16384",     # loads on 16 KiB-page devices too
)


def tvm_ffi_functions() -> tuple[str, ...]:
    """The TVMFFI* functions the installed libtvm_ffi exports (the C API, the same on every OS)."""
    import tvm_ffi

    library = Path(tvm_ffi.__file__).parent / "lib" / "libtvm_ffi.so"
    names = {s.name for s in binutils.symbols(library) if s.defined}
    return tuple(sorted(n for n in names if re.fullmatch(r"TVMFFI\w+", n)))


def stub_libraries(cache: Path, cc: str) -> tuple[str, ...]:
    """Build (once per symbol set and compiler) the stub libraries under ``cache``; their paths."""
    libraries = {**SYSTEM_FUNCTIONS, TVM_FFI: tvm_ffi_functions()}
    key = hashlib.sha256(repr((cc, sorted(libraries.items()))).encode()).hexdigest()[:16]
    folder = cache / "android-stubs" / key
    paths = tuple(str(folder / name) for name in libraries)
    if all(Path(p).is_file() for p in paths):
        return paths
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=folder.parent))
    for name, functions in libraries.items():
        source = partial / f"{name}.c"
        source.write_text("".join(f"void {f}(void) {{}}\n" for f in functions))
        proc = subprocess.run(
            [cc, "-shared", "-fPIC", "-nostdlib", f"-Wl,-soname,{name}", "-o", str(partial / name), str(source)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise internal_error(f"{cc} could not build the stub {name} for the Android link: {proc.stderr[-300:]}")
        source.unlink()
    try:
        partial.rename(folder)
    except OSError:  # another job built the same stubs meanwhile
        shutil.rmtree(partial, ignore_errors=True)
    return paths
