"""Instruction-set extensions a CPU target may use, in /proc/cpuinfo spelling.

Computed at compile time with LLVM and written to compiled.meta, so that the runtime can
refuse a library whose code this CPU cannot execute instead of dying with SIGILL.
"""

from __future__ import annotations

#: platform.machine() names (lower case) of the CPUs that run each TargetPlatform Arch's code
ARCH_MACHINES = {
    "X86_64": ("x86_64", "amd64"),
    "ARM64": ("aarch64", "arm64"),
    "ARM_EABIHF": ("armv7l", "armv8l"),
    "X86": ("i686", "i386"),
}



def physical_cores() -> int:
    """Physical cores of this machine: the TVM runtime's thread count (it starts one thread on VMs
    that report hyperthreads oddly unless TVM_NUM_THREADS says otherwise). psutil may be absent on
    a device with the runtime alone; then every logical CPU counts."""
    import os

    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def host_cpu_name() -> str:
    """LLVM's name for this machine's CPU (znver5, skylake-avx512, ...): the mcpu to compile for it."""
    from tvm.target import codegen

    return str(codegen.llvm_get_system_cpu())


def host_os() -> str:
    """This machine's OS in TargetPlatform's spelling (LINUX, ANDROID; WINDOWS, DARWIN beyond it)."""
    import platform
    import sys

    if hasattr(sys, "getandroidapilevel"):
        return "ANDROID"
    return platform.system().upper()


# LLVM feature name -> Linux /proc/cpuinfo flag, for the extensions generated code uses.
X86_FEATURES = {
    "sse4.1": "sse4_1",
    "sse4.2": "sse4_2",
    "avx": "avx",
    "avx2": "avx2",
    "fma": "fma",
    "f16c": "f16c",
    "bmi": "bmi1",
    "bmi2": "bmi2",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx512dq": "avx512dq",
    "avx512vl": "avx512vl",
    "avx512cd": "avx512cd",
    "avx512vnni": "avx512_vnni",
    "avx512bf16": "avx512_bf16",
    "avxvnni": "avx_vnni",
}


# LLVM feature name -> the aarch64 Linux hwcap name (/proc/cpuinfo "Features"), for the
# extensions numeric code can use. Crypto (aes, sha2), crc and lse atomics are left out on
# purpose: generated kernels do not use them, and some devices (the Raspberry Pi 4's
# Cortex-A72) lack the crypto extension that LLVM's CPU model enables.
AARCH64_FEATURES = {
    "fp-armv8": "fp",
    "neon": "asimd",
    "fullfp16": "asimdhp",
    "rdm": "asimdrdm",
    "dotprod": "asimddp",
    "fp16fml": "asimdfhm",
    "i8mm": "i8mm",
    "bf16": "bf16",
    "sve": "sve",
    "sve2": "sve2",
}

# LLVM feature name -> the 32-bit ARM Linux hwcap name (/proc/cpuinfo "Features"); crypto and
# crc are left out as for aarch64
ARM_FEATURES = {
    "neon": "neon",
    "vfp3": "vfpv3",
    "vfp4": "vfpv4",
    "d32": "vfpd32",
    "hwdiv-arm": "idiva",
}

# aarch64 hwcap bits (linux/arch/arm64/include/uapi/asm/hwcap.h) of the names above
_AARCH64_HWCAP = {"fp": 0, "asimd": 1, "asimdhp": 10, "asimdrdm": 12, "asimddp": 20, "sve": 22, "asimdfhm": 23}
_AARCH64_HWCAP2 = {"sve2": 1, "i8mm": 13, "bf16": 14}
_AT_HWCAP, _AT_HWCAP2 = 16, 26


def _feature_table(tvm_target: dict) -> dict[str, str]:
    triple = str(tvm_target.get("mtriple", ""))
    if triple.startswith(("aarch64", "arm64")):
        return AARCH64_FEATURES
    return ARM_FEATURES if triple.startswith(("arm", "thumb")) else X86_FEATURES


def llvm_cpu_features(tvm_target: dict) -> set[str]:
    """LLVM's feature names for the target's mcpu (its mattr not applied)."""
    import tvm
    from tvm.target import codegen

    return {str(f).lstrip("+") for f in codegen.llvm_get_cpu_features(tvm.target.Target(tvm_target))}


def required_features(tvm_target: dict) -> tuple[str, ...]:
    """The cpuinfo flags that code generated for ``tvm_target`` may need."""
    features = llvm_cpu_features(tvm_target)
    features |= {str(a).lstrip("+") for a in tvm_target.get("mattr", ()) if str(a).startswith("+")}
    table = _feature_table(tvm_target)
    return tuple(sorted({flag for llvm, flag in table.items() if llvm in features}))


#: the x86-64 psABI levels, lowest first, by the LLVM features each adds to the one below
_X86_LEVELS = (
    ("x86-64-v2", {"cx16", "popcnt", "sahf", "sse3", "sse4.1", "sse4.2", "ssse3"}),
    ("x86-64-v3", {"avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave"}),
    ("x86-64-v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
)


def x86_level(tvm_target: dict) -> str | None:
    """The highest x86-64 level (x86-64, -v2, -v3, -v4) whose every feature the target's CPU has:
    what a C compiler that does not know the CPU yet (gcc 12 and znver5) can be told instead.
    None where LLVM does not know the CPU either."""
    import tvm
    from tvm.target import codegen

    known = {str(c) for c in codegen.llvm_get_cpu_archlist(tvm.target.Target(tvm_target))}
    if str(tvm_target.get("mcpu", "")) not in known:
        return None
    features = llvm_cpu_features(tvm_target)
    level = "x86-64"
    for name, needs in _X86_LEVELS:
        if not needs <= features:
            break
        level = name
    return level


def host_cpu_flags() -> frozenset[str] | None:
    """This machine's CPU flags, or None where it cannot tell.

    x86: the "flags" line of /proc/cpuinfo. aarch64: the kernel's hwcaps (getauxval), which
    qemu-user also reports for the CPU it emulates (its /proc/cpuinfo is the host's), else the
    "Features" line of /proc/cpuinfo."""
    import platform

    if platform.machine().lower() in ("aarch64", "arm64"):
        return _aarch64_hwcaps() or _cpuinfo_line("Features")
    return _cpuinfo_line("flags")


def _cpuinfo_line(key: str) -> frozenset[str] | None:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.split(":", 1)[0].strip() == key:
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def _aarch64_hwcaps() -> frozenset[str] | None:
    try:
        import ctypes

        getauxval = ctypes.CDLL(None).getauxval
        getauxval.restype = ctypes.c_ulong
        getauxval.argtypes = [ctypes.c_ulong]
        hwcap, hwcap2 = getauxval(_AT_HWCAP), getauxval(_AT_HWCAP2)
    except (OSError, AttributeError):
        return None
    if not hwcap:
        return None
    names = {n for n, bit in _AARCH64_HWCAP.items() if hwcap >> bit & 1}
    names |= {n for n, bit in _AARCH64_HWCAP2.items() if hwcap2 >> bit & 1}
    return frozenset(names)


def missing_on_host(required: tuple[str, ...]) -> tuple[str, ...]:
    """The required flags this CPU lacks (empty when it can run the code or cannot tell)."""
    flags = host_cpu_flags()
    if flags is None:
        return ()
    return tuple(f for f in required if f not in flags)
