"""GPU kernels (OpenCL for Mali and Intel graphics) scheduled with dlight's GPU rules.

TVM builds a GPU kernel only once every loop is bound to GPU threads; dlight's default rules do
that without tuning and without a GPU at hand: fused operators are legalized to TIR (Relax's
"zero" pipeline), each kernel is given to the first rule that matches it, and ``tvm.compile``
splits every function into the kernels for the device (embedded in the library as OpenCL
source) and the host code that launches them.
"""

from __future__ import annotations

from typing import Any, Mapping

#: dlight's GPU rules, tried in this order for every kernel (Fallback binds any loop nest)
RULES = ("Matmul", "GEMV", "Reduction", "GeneralReduction", "Fallback")


def compile_gpu(mod, build_target: Mapping[str, Any]) -> tuple[object, str]:
    """Build ``mod`` for a GPU target with its CPU host; returns the executable and how it was scheduled."""
    import tvm
    from tvm import relax
    from tvm.s_tir import dlight

    target = tvm.target.Target(dict(build_target))
    with target:
        mod = relax.get_pipeline("zero")(mod)
        mod = dlight.ApplyDefaultSchedule(*(getattr(dlight.gpu, rule)() for rule in RULES))(mod)
    functions = sum(isinstance(f, tvm.tirx.PrimFunc) for f in mod.functions.values())
    executable = tvm.compile(mod, target=target)
    kind = build_target["kind"]
    device = build_target.get("device", kind)
    return executable, f"dlight GPU rules ({', '.join(RULES)}) for {kind} ({device}): {functions} TIR function(s)"
