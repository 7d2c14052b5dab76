"""Default CPU pipeline for llvm x86 targets: blocked-layout conv2d with hand-written TIR schedules.

``compile_cpu(mod, target)`` runs the Relax rewrites (``passes``), schedules every kernel
(``schedules``) and builds with ``tvm.compile``. ``applies_to(target)`` says which targets it is
for: llvm targets on x86 (AVX2: 8-lane blocks, 12 accumulators; AVX-512: 16-lane blocks,
16 accumulators). Others keep TVM's plain pipeline.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

log = logging.getLogger(__name__)

_AVX512_CPUS = {
    "skylake-avx512", "cascadelake", "cooperlake", "icelake-server", "icelake-client", "tigerlake",
    "sapphirerapids", "emeraldrapids", "graniterapids", "graniterapids-d", "znver4", "znver5",
    "cannonlake", "rocketlake", "knl", "knm", "x86-64-v4", "alderlake-avx512",
}


def vector_config(tvm_target: Mapping[str, Any]) -> tuple[int, int] | None:
    """(lanes, max accumulators) for an x86 llvm target, None where this pipeline does not apply."""
    if tvm_target.get("kind") != "llvm":
        return None
    triple = str(tvm_target.get("mtriple", ""))
    if not (triple.startswith("x86_64") or triple == ""):
        return None
    import tvm

    target = tvm.target.Target(dict(tvm_target))
    try:
        features = {str(k).lstrip("+") for k in tvm.target.codegen.llvm_get_cpu_features(target)}
    except Exception:  # noqa: BLE001
        features = set()
    mcpu = str(tvm_target.get("mcpu", ""))
    attrs = {str(a).lstrip("+") for a in tvm_target.get("mattr", ())}
    if "avx512f" in features | attrs or mcpu in _AVX512_CPUS:
        return 16, 16
    if "avx2" in features | attrs or "fma" in features:
        return 8, 12
    return None


def applies_to(tvm_target: Mapping[str, Any]) -> bool:
    return vector_config(tvm_target) is not None


def optimize(mod, tvm_target: Mapping[str, Any]):
    """Relax rewrites + schedules; returns (module ready for tvm.compile, stats)."""
    import tvm

    from neo_local.backends.cpu_schedule.passes import relax_passes
    from neo_local.backends.cpu_schedule.schedules import schedule_module

    lanes, max_acc = vector_config(tvm_target)
    target = tvm.target.Target(dict(tvm_target))
    mod = relax_passes(mod, lanes)
    mod, stats = schedule_module(mod, target, lanes, max_acc)
    stats.update(lanes=lanes, max_acc=max_acc)
    return mod, stats


def compile_cpu(mod, tvm_target: Mapping[str, Any]):
    import tvm

    opt, stats = optimize(mod, tvm_target)
    log.info("cpu_schedule: %s", stats)
    return tvm.compile(opt, target=tvm.target.Target(dict(tvm_target))), stats
