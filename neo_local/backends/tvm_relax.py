"""Build with Apache TVM (Relax): IRModule -> compiled.so holding kernels and the VM program."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
from pathlib import Path
from typing import Iterator

from neo_local.api.errors import JobFailure, client_error, exception_line, internal_error, tvm_error_line
from neo_local.backends.base import BuiltModel
from neo_local.frontends.base import ImportedModel
from neo_local.targets.options import FLOAT32, TuningOptions
from neo_local.targets.spec import TargetSpec

RUNTIME = "tvm-relax-vm"

log = logging.getLogger(__name__)

#: set to 0 to build with TVM's plain pipeline (no schedules), e.g. for a before/after benchmark
CPU_SCHEDULE_ENV = "NEO_LOCAL_CPU_SCHEDULE"


def _compile(mod, tvm_target, spec: TargetSpec | None = None) -> tuple[object, str]:
    """GPU targets: dlight's GPU schedules. CPU targets: our scheduled CPU pipeline where it
    applies (tuned first when ``spec.tuning`` gives a budget); TVM's plain pipeline otherwise,
    or when ours fails on this model (slow, but never no answer) unless the request asked for a
    precision only ours builds (the job then fails saying so). Returns the executable and
    which pipeline built it, which the job log and compiled.meta report: never a silent fallback."""
    import tvm
    from tvm import relax

    # the frontends' recurrence functions (RECURRENCE_ATTR), for the builds with no kernel of their own
    inlined = relax.transform.InlinePrivateFunctions()(mod)
    if "host" in tvm_target:
        from neo_local.backends.gpu_schedule import compile_gpu

        return compile_gpu(inlined, tvm_target)
    target = tvm.target.Target(dict(tvm_target))
    if os.environ.get(CPU_SCHEDULE_ENV, "1") == "0":
        return tvm.compile(inlined, target=target), f"TVM default (unscheduled; {CPU_SCHEDULE_ENV}=0)"
    from neo_local.backends import cpu_schedule

    if not cpu_schedule.applies_to(tvm_target):
        return tvm.compile(inlined, target=target), "TVM default (unscheduled: no neo-local schedules for this target)"
    try:
        with _measurer(spec) as measurer:
            executable, stats = cpu_schedule.compile_cpu(mod, tvm_target, _tuning(spec, measurer), measurer,
                                                         precision=spec.precision if spec else FLOAT32)
    except JobFailure:
        raise  # the request asked for what cannot be done (tuning without a device to time on)
    except Exception as exc:  # noqa: BLE001 (TVM raises its own types from C++)
        reason = tvm_error_line(exc)
        if spec is not None and spec.precision != FLOAT32:
            # the plain build is float32: an artifact labelled bfloat16 would be neither
            raise internal_error(f"the {spec.precision} build failed ({reason}). Compile without CompilerOptions "
                                 "precision for a float32 build.") from None
        log.warning("scheduled CPU pipeline failed (%s); building unscheduled", reason)
        return tvm.compile(inlined, target=target), f"TVM default (unscheduled: the scheduled pipeline failed: {reason})"
    return executable, f"neo-local scheduled CPU pipeline ({stats})"


def _tuning(spec: TargetSpec | None, measurer: object | None) -> TuningOptions | None:
    """The spec's tuning options; only its records database where nothing can time candidates."""
    tuning = spec.tuning if spec is not None else None
    if tuning is not None and measurer is None:
        return TuningOptions(records=tuning.records)
    return tuning


@contextlib.contextmanager
def _measurer(spec: TargetSpec | None) -> Iterator[object | None]:
    """Where tuning times its candidates: the ``tuning.rpc`` device, or this machine when it can
    run the target's code; None without a tuning budget. A budget with neither is the request's
    error: the job fails saying so rather than hand back an untuned artifact that was asked to be
    tuned. Cross-compiled code is never timed on this machine."""
    tuning = spec.tuning if spec is not None else None
    if tuning is None or not tuning.enabled:
        yield None
        return
    from neo_local.backends.cpu_schedule.tuning import Measurer, RemoteMeasurer

    if tuning.rpc is None:
        why = _not_runnable_here(spec)
        if why:
            raise client_error("OutputConfiguration", f"CompilerOptions tuning: {why}; give tuning rpc (or "
                               "--tune-rpc) HOST:PORT of a neo-local rpc-server on the device to tune there, "
                               "or leave tuning out")
        with Measurer(spec.tvm_target) as measurer:
            yield measurer
        return
    from neo_local.rpc import RpcError, connect, parse_endpoint

    try:
        session, remote = connect(parse_endpoint(tuning.rpc))
    except RpcError as exc:
        raise client_error("OutputConfiguration", f"CompilerOptions tuning rpc {tuning.rpc}: {exc}") from None
    with RemoteMeasurer(spec.tvm_target, session, remote.where, spec.linker) as measurer:
        yield measurer


def _not_runnable_here(spec: TargetSpec) -> str:
    """Why this machine cannot time code built for ``spec`` ("" when it can)."""
    from neo_local.targets.cpu_features import missing_on_host

    triple = str(spec.tvm_target.get("mtriple", "")) or "x86_64"
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("arm64", "aarch64")
    if not triple.startswith(machine):
        return f"{spec.name} code ({triple}) cannot run on this {machine} machine"
    missing = missing_on_host(spec.cpu_features)
    return f"this CPU lacks {', '.join(missing)}, which {spec.name} code uses" if missing else ""


def export_library(executable, target: TargetSpec, path: Path) -> None:
    """Link the library: the host's cc, or the target's cross cc (``TargetSpec.linker``); CUDA
    kernels go in as a cubin for the target's architecture (``cuda_cubin``); Linux CPU libraries
    get neo-local's parallel launcher and a glibc floor (``link``)."""
    from neo_local.backends import link

    options = {}
    gpu = target.gpu_target or {}
    if gpu.get("kind") == "cuda":
        from neo_local.backends.cuda_cubin import pack_with_cubin

        options["fpack_imports"] = pack_with_cubin(str(gpu["arch"]))
    fcompile = link.fcompile(target.tvm_target, target.linker, gpu=target.gpu_target is not None,
                             options=target.link_options, files=target.link_files)
    executable.export_library(str(path), fcompile=fcompile, **options)


def _check_linker(target: TargetSpec) -> None:
    import shutil

    if target.linker is not None and shutil.which(target.linker) is None:
        raise internal_error(
            f"the cross linker {target.linker} for {target.name} is not installed on this host; "
            "run scripts/setup.sh as root (it installs Debian's cross linkers)"
        )


def _details(pipeline: str, guarded: int, gpu: bool) -> dict[str, str]:
    details = {"Pipeline": pipeline}
    if guarded and gpu:
        details["IndexChecks"] = (
            f"none: {guarded} runtime-indexed lookup(s) run unchecked in GPU kernels, which cannot raise errors; "
            "feed only indices inside the tables"
        )
    elif guarded:
        details["IndexChecks"] = f"out-of-range indices stop the run with an error at {guarded} runtime-indexed lookup(s)"
    return details


def build(model: ImportedModel, target: TargetSpec, out_dir: Path) -> BuiltModel:
    import tvm
    import tvm_ffi

    from neo_local.backends.index_guard import guard_takes

    _check_linker(target)
    try:
        ir, guarded = guard_takes(model.ir)
        # the guard's checking kernel raises from CPU code only: GPU builds keep the model as it is
        executable, pipeline = _compile(model.ir if target.gpu_target else ir, target.build_target, target)
        out_dir.mkdir(parents=True, exist_ok=True)
        export_library(executable, target, out_dir / target.library)
    except Exception as exc:  # TVM raises its own error types from C++
        raise internal_error(f"TVM could not build the model for {target.name}: {exception_line(exc)}") from exc
    return BuiltModel(
        library=target.library,
        runtime=RUNTIME,
        compiler_versions={
            "tvm": tvm.__version__,
            "tvm-ffi": getattr(tvm_ffi, "__version__", "unknown"),
            "llvm": str(tvm.target.codegen.llvm_version_major()),
        },
        details=_details(pipeline, guarded, target.gpu_target is not None),
    )
