"""Compile-check OpenCL C kernel source with clang's front end (libclang), as OpenCL C 1.2.

No OpenCL device or driver is needed: clang parses and type-checks the source a GPU driver
would compile, so a kernel with a syntax error, an undeclared builtin or mismatched types is
caught here. The libclang wheel (a dependency of tensorflow) has no resource headers, so the
few declarations of clang's opencl-c-base.h that TVM's kernels use are given as a prelude
(clang's -fdeclare-opencl-builtins declares the builtin functions themselves).
"""

from __future__ import annotations

#: OpenCL C 1.2: what the Mali Midgard GPUs and Intel Gen9 drivers compile
STANDARD = "CL1.2"
_SCALARS = {"char": "char", "uchar": "unsigned char", "short": "short", "ushort": "unsigned short", "int": "int",
            "uint": "unsigned int", "long": "long", "ulong": "unsigned long", "float": "float", "double": "double",
            "half": "half"}
#: opencl-c-base.h's type names and memory fence flags (values as in that header)
PRELUDE = "\n".join(
    [f"typedef {c} {name};" for name, c in _SCALARS.items() if name != c]
    + [f"typedef {t} {t}{n} __attribute__((ext_vector_type({n})));" for t in _SCALARS for n in (2, 3, 4, 8, 16)]
    + ["typedef uint cl_mem_fence_flags;", "#define CLK_LOCAL_MEM_FENCE 0x01", "#define CLK_GLOBAL_MEM_FENCE 0x02", ""]
)


def compile_errors(source: str) -> list[str] | None:
    """clang's errors for ``source`` as OpenCL C (``[]``: it compiles); None where libclang is missing."""
    try:
        from clang import cindex
    except ImportError:
        return None
    unit = cindex.Index.create().parse(
        "kernels.cl",
        args=["-x", "cl", f"-cl-std={STANDARD}", "-cl-no-stdinc", "-Xclang", "-fdeclare-opencl-builtins"],
        unsaved_files=[("kernels.cl", PRELUDE + source)],
    )
    offset = PRELUDE.count("\n")
    return [
        f"line {d.location.line - offset}: {d.spelling}"
        for d in unit.diagnostics
        if d.severity >= cindex.Diagnostic.Error
    ]
