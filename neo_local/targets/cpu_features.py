"""Instruction-set extensions a CPU target may use, in /proc/cpuinfo spelling.

Computed at compile time with LLVM and written to compiled.meta, so that the runtime can
refuse a library whose code this CPU cannot execute instead of dying with SIGILL.
"""

from __future__ import annotations

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


def required_features(tvm_target: dict) -> tuple[str, ...]:
    """The cpuinfo flags that code generated for ``tvm_target`` may need."""
    import tvm
    from tvm.target import codegen

    features = codegen.llvm_get_cpu_features(tvm.target.Target(tvm_target))
    return tuple(sorted(flag for llvm, flag in X86_FEATURES.items() if llvm in features))


def host_cpu_flags() -> frozenset[str] | None:
    """This machine's CPU flags, or None where /proc/cpuinfo cannot tell."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def missing_on_host(required: tuple[str, ...]) -> tuple[str, ...]:
    """The required flags this CPU lacks (empty when it can run the code or cannot tell)."""
    flags = host_cpu_flags()
    if flags is None:
        return ()
    return tuple(f for f in required if f not in flags)
