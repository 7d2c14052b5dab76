"""Default CPU pipeline for llvm x86 and ARM targets: blocked-layout conv2d with hand-written TIR schedules.

``compile_cpu(mod, target)`` runs the Relax rewrites (``passes``), schedules every kernel
(``schedules``), has the producers of a concatenation's inputs write its result in place where they
can (``concat_in_place``) and builds with TVM's pipeline plus ours (``tir_pipeline``: small kernels
off the thread pool, small buffers on the stack). ``applies_to(target)`` says which targets it is
for, and ``vector_config`` with which vector width and register budget: x86 AVX2 (8-lane blocks, 12
of its 16 ymm registers as accumulators), AVX-512 (16 lanes, 16 of 32 zmm), aarch64 NEON (4 lanes,
20 of 32 v registers: a 4x5 tile's 4 weight vectors and 5 input scalars, which ``fmla`` by element
reads in place of a broadcast, fit beside them; a 4x6 tile spills), armv7 NEON (4 lanes, 8 of 16 q
registers: ``vfma`` has no by-element form, so a 4x2 tile needs 4 weight vectors and 2 broadcasts
beside its 8 accumulators). Others (SSE-only x86, ARM without NEON) keep TVM's plain pipeline. The
ARM budgets come from register counts and the generated assembly (no spills in the reduction
loops); ARM artifacts are checked for numbers under qemu only, so no ARM speed has been measured.
Channel counts that do not divide by the vector width (24, 40, 280 at 16 lanes: MobileNets,
EfficientNet, DenseNet) are padded with zero channels (``channel_padding``). An AVX-512 target
whose model shuffles channels in groups of 8 (ShuffleNetV2) compiles that model in 8-lane blocks
instead (``model_vector_config``), its dense convs computed on zmm registers two blocks at a time
(``passes._direct_conv``). A bfloat16 build (CompilerOptions precision) runs the blocked float
convs and the dense layers on AVX512_BF16's dot product (``bf16_dot``, ``dot_matmul``), int8 QDQ
convs take the target's int8 one (``quantized``, ``int8_dot``).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Mapping

from neo_local.targets.options import BFLOAT16, FLOAT32, TuningOptions

log = logging.getLogger(__name__)


def vm_exec_mode(tvm_target: Mapping[str, Any]) -> str:
    """How the Relax VM runs a model's main function. "compiled" makes it native code that calls
    the kernels, where "bytecode" interprets it instruction by instruction. Measured in one process
    (Zen 5, 2 threads): MobileNetV2-style 64x64 0.091 -> 0.085 ms, ShuffleNetV2 0.577 -> 0.564 ms,
    SqueezeNet 1.72 -> 1.71 ms. Compiled code calls two functions of libtvm_runtime
    (TVMBackendAnyList*). An Android library names only libtvm_ffi.so, and bionic's loader was
    not tried on such a library here, so Android keeps the bytecode."""
    return "bytecode" if "android" in str(tvm_target.get("mtriple", "")) else "compiled"


_AVX512_CPUS = {
    "skylake-avx512", "cascadelake", "cooperlake", "icelake-server", "icelake-client", "tigerlake",
    "sapphirerapids", "emeraldrapids", "graniterapids", "graniterapids-d", "znver4", "znver5",
    "cannonlake", "rocketlake", "knl", "knm", "x86-64-v4", "alderlake-avx512",
}


def vector_config(tvm_target: Mapping[str, Any]) -> tuple[int, int] | None:
    """(lanes, max accumulators) for an llvm target this pipeline schedules, None for the others."""
    if tvm_target.get("kind") != "llvm":
        return None
    triple = str(tvm_target.get("mtriple", ""))
    if triple.startswith(("aarch64", "arm64")):
        return (4, 20) if "neon" in _features(tvm_target) else None
    if triple.startswith(("arm", "thumb")):
        return (4, 8) if "neon" in _features(tvm_target) else None
    if not (triple.startswith("x86_64") or triple == ""):
        return None
    features = _features(tvm_target)
    if "avx512f" in features or str(tvm_target.get("mcpu", "")) in _AVX512_CPUS:
        return 16, 16
    if "avx2" in features or "fma" in features:
        return 8, 12
    return None


def _features(tvm_target: Mapping[str, Any]) -> set[str]:
    """LLVM's features of the target's mcpu with its mattr additions ("+x") and removals ("-x")."""
    from neo_local.targets.cpu_features import llvm_cpu_features

    try:
        features = llvm_cpu_features(dict(tvm_target))
    except Exception:  # noqa: BLE001
        features = set()
    mattr = [str(a) for a in tvm_target.get("mattr", ())]
    return (features | {a.lstrip("+") for a in mattr if not a.startswith("-")}) - {a[1:] for a in mattr if a.startswith("-")}


def dots_for(tvm_target: Mapping[str, Any], lanes: int, precision: str = FLOAT32):
    """The dot instructions of the target's convs in ``lanes``-wide blocks (``passes.Dots``): its
    int8 one (``int8_dot``; none: int8 convs keep float kernels) and, for a bfloat16 build, its
    bfloat16 one (``bf16_dot``), which such a build cannot do without."""
    from neo_local.backends.cpu_schedule import bf16_dot, int8_dot
    from neo_local.backends.cpu_schedule.passes import Dots

    features = _features(tvm_target)
    bf16 = bf16_dot.for_target(lanes, features) if precision == BFLOAT16 else None
    if precision == BFLOAT16 and bf16 is None:
        raise ValueError(f"precision {BFLOAT16} needs AVX512_BF16 (and AVX-512VL for {lanes}-lane blocks); "
                         f"the target {dict(tvm_target)} has not")
    return Dots(int8_dot.for_target(lanes, features), bf16)


def model_vector_config(mod, tvm_target: Mapping[str, Any]) -> tuple[int, int]:
    """``vector_config`` for this model: an AVX-512 target whose model shuffles channels in
    8-lane groups (``passes.block_lanes``: ShuffleNetV2) runs in 8-lane blocks, with AVX-512's
    budget of 16 accumulators, since all 32 registers are there (measured against AVX2's 12 on
    znver5, in one process: 2.7-6% faster). Its depthwise convs and elementwise kernels run on ymm
    registers (AVX-512VL); ``optimize`` has its dense convs computed on zmm registers anyway."""
    from neo_local.backends.cpu_schedule.passes import block_lanes

    lanes, max_acc = vector_config(tvm_target)
    return (block_lanes(mod, lanes) if lanes == 16 else lanes), max_acc


def applies_to(tvm_target: Mapping[str, Any]) -> bool:
    return vector_config(tvm_target) is not None


def optimize(mod, tvm_target: Mapping[str, Any], tuning: TuningOptions | None = None,
             measurer: Any = None, progress: Callable[[str], None] | None = None, precision: str = FLOAT32):
    """Relax rewrites + schedules; returns (module ready for tvm.compile, stats). ``precision``
    BFLOAT16 runs the blocked float convs and dense layers on bfloat16 inputs and weights
    (``bf16_dot``, ``dot_matmul``). Every kernel
    takes its config from the tuning records when they have one for this target (``stats["tuned"]``
    counts them); with a tuning budget, the kernels without one are tuned first (timed by
    ``measurer``: on this machine by default)."""
    import tvm

    from neo_local.backends.cpu_schedule import quantized
    from neo_local.backends.cpu_schedule.concat_in_place import write_concats_in_place
    from neo_local.backends.cpu_schedule.passes import relax_passes
    from neo_local.backends.cpu_schedule.records import Records, records_path, target_key
    from neo_local.backends.cpu_schedule.schedules import schedule_module

    lanes, max_acc = model_vector_config(mod, tvm_target)
    target = tvm.target.Target(dict(tvm_target))
    dots = dots_for(tvm_target, lanes, precision)
    mod, quantized_stats = quantized.rewrite_with_stats(mod, dots.int8)
    mod = relax_passes(mod, lanes, max_acc, dots, vector_config(tvm_target)[0])
    records = Records(records_path(tuning.records if tuning else None), target_key(tvm_target, lanes))
    summary = None
    if tuning is not None and tuning.enabled:
        from neo_local.backends.cpu_schedule.builder import first_line
        from neo_local.backends.cpu_schedule.tuning import Measurer, stderr_progress, tune

        say = progress or stderr_progress
        try:
            with contextlib.nullcontext(measurer) if measurer else Measurer(tvm_target) as timing:
                summary = tune(mod, records.target, lanes, max_acc, tuning, records, timing, say)
        except Exception as exc:  # noqa: BLE001 (TVM raises its own types): a tuning fault costs the tuning only
            say(f"tuning failed ({first_line(exc)}); building with the records' and the default configs")
    mod, stats = schedule_module(mod, target, lanes, max_acc, records.lookup)
    mod, stats["concats_in_place"] = write_concats_in_place(mod)
    stats.update(lanes=lanes, max_acc=max_acc, **quantized_stats.as_stats(), **(summary.as_stats() if summary else {}))
    if dots.bf16 is not None:
        stats.update(precision=precision, bf16_dot=dots.bf16.name)
    return mod, stats


def compile_cpu(mod, tvm_target: Mapping[str, Any], tuning: TuningOptions | None = None,
                measurer: Any = None, progress: Callable[[str], None] | None = None, precision: str = FLOAT32):
    import tvm
    from tvm import relax

    from neo_local.backends.cpu_schedule.tir_pipeline import pipeline

    opt, stats = optimize(mod, tvm_target, tuning, measurer, progress, precision)
    log.info("cpu_schedule: %s", stats)
    executable = relax.build(opt, tvm.target.Target(dict(tvm_target)), tir_pipeline=pipeline(),
                             exec_mode=vm_exec_mode(tvm_target))
    return executable, stats
