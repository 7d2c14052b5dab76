"""The one place that maps TargetDevice / TargetPlatform + CompilerOptions to a TargetSpec."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Mapping
from pathlib import Path

from neo_local.api.errors import client_error, internal_error
from neo_local.api.requests import OutputConfig
from neo_local.api.validation import NEURON_DEVICES
from neo_local.targets import android
from neo_local.targets.cpu_features import required_features
from neo_local.targets.devices import CONVERTED, DEVICES, REFUSED
from neo_local.targets.gpus import GPU_CODES, GpuCode
from neo_local.targets.options import FLOAT32, CompilerOptions
from neo_local.targets.platforms import PLATFORMS, Platform
from neo_local.targets.spec import TargetSpec

#: the CPU platform (triple, linker) of each (Os, Arch) a device row can name
CPU_PLATFORMS = {(p.os, p.arch): p for p in PLATFORMS.values() if p.accelerator is None}

#: where scripts/setup.sh caches what cross links need (the Windows import library)
TOOLCHAIN_CACHE_ENV = "NEO_LOCAL_TOOLCHAIN_CACHE"
_DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache"

#: the API level of an Android target without CompilerOptions ANDROID_PLATFORM: the lowest
#: Neo accepts, so the library loads on every Android version it can name
DEFAULT_ANDROID_API = 21

#: TargetPlatform (Os, Arch) pairs of the API that are not built, and why
_PLATFORMS_REFUSED = {
    ("ANDROID", "ARM_EABI"): (
        "32-bit Android (armeabi-v7a, soft-float calling convention) is not built: its code calls the __aeabi_* "
        "helper functions of the NDK's compiler-rt builtins, which cannot be had here without the NDK. For 64-bit "
        "Android devices use TargetPlatform Os=ANDROID, Arch=ARM64"
    ),
}



@dataclass(frozen=True)
class GpuChoice:
    """The GPU a target's kernels are built for: its code generator, name and architecture."""

    code: GpuCode
    name: str
    #: the architecture the kernels are machine code for (CUDA: "sm_72"); "" for source kernels
    arch: str = ""
    details: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def resolve_target(output: OutputConfig, options: CompilerOptions) -> TargetSpec:
    """Resolve the request's target; raises JobFailure naming what is wrong and the choices."""
    if options.neuron_flags is not None and output.target_device not in NEURON_DEVICES:
        raise client_error(
            "OutputConfiguration",
            f"CompilerOptions {options.neuron_flags!r} is a string of Neuron compiler flags, which only "
            f"{', '.join(sorted(NEURON_DEVICES))} take; give a JSON object such as {{\"mcpu\": \"...\"}}",
        )
    if output.target_device:
        return _from_device(output.target_device, options)
    assert output.target_platform is not None
    return _from_platform(output, options)


def _from_device(name: str, options: CompilerOptions) -> TargetSpec:
    if name in REFUSED:
        checked = f" (CompilerOptions checked: Neuron flags {options.neuron_flags})" if options.neuron_flags else ""
        raise client_error("OutputConfiguration", f"TargetDevice {name}: {REFUSED[name].message()}{checked}")
    converter = CONVERTED.get(name)
    if converter is not None:
        return TargetSpec(
            name=name, os=converter.os, arch="ANY", tvm_target={}, backend=converter.backend, notes=converter.notes
        )
    device = DEVICES.get(name)
    if device is None:  # a value a newer service model added
        raise client_error(
            "OutputConfiguration",
            f"TargetDevice {name} is unknown to neo-local. Supported TargetDevice values: {', '.join(sorted(DEVICES))}",
        )
    mcpu = options.mcpu or device.mcpu
    mattr = device.mattr + options.mattr
    platform = CPU_PLATFORMS[(device.os, device.arch)]
    gpu = _gpu_choice(name, GPU_CODES[device.accelerator], device.gpu, options, device.gpu_code) \
        if device.accelerator else None
    return _spec(name, device.os, device.arch, platform, mcpu, mattr, device.accelerator, options, device.notes, gpu)


def _from_platform(output: OutputConfig, options: CompilerOptions) -> TargetSpec:
    tp = output.target_platform
    assert tp is not None
    gpu = GPU_CODES.get(tp.accelerator or "")
    if gpu is not None:
        return _gpu_platform(output, gpu, options)
    platform: Platform | None = PLATFORMS.get((tp.os, tp.arch, tp.accelerator))
    if platform is None and (tp.os, tp.arch) in _PLATFORMS_REFUSED:
        raise client_error(
            "OutputConfiguration", f"TargetPlatform Os={tp.os}, Arch={tp.arch}: {_PLATFORMS_REFUSED[(tp.os, tp.arch)]}"
        )
    if platform is None:
        wanted = f"Os={tp.os}, Arch={tp.arch}" + (f", Accelerator={tp.accelerator}" if tp.accelerator else "")
        choices = "; ".join(
            f"Os={p.os}, Arch={p.arch}" + (f", Accelerator={p.accelerator}" if p.accelerator else "")
            for p in PLATFORMS.values()
            if p.api
        )
        raise client_error(
            "OutputConfiguration",
            f"TargetPlatform {wanted} is not supported by neo-local yet. Supported: {choices}",
        )
    mcpu = options.mcpu or platform.default_mcpu
    return _spec(output.target_name, tp.os, tp.arch, platform, mcpu, options.mattr, tp.accelerator, options)


def _gpu_platform(output: OutputConfig, gpu: GpuCode, options: CompilerOptions) -> TargetSpec:
    """A TargetPlatform with a GPU accelerator: its kernels, hosted by one of the CPU platforms it pairs with."""
    tp = output.target_platform
    assert tp is not None
    if (tp.os, tp.arch) not in gpu.platforms:
        pairs = " or ".join(f"Os={os}, Arch={arch}" for os, arch in gpu.platforms)
        raise client_error(
            "OutputConfiguration",
            f"TargetPlatform Accelerator={tp.accelerator} is built with a host CPU of {pairs}, not Os={tp.os}, "
            f"Arch={tp.arch}",
        )
    platform = CPU_PLATFORMS[(tp.os, tp.arch)]
    mcpu = options.mcpu or platform.default_mcpu
    choice = _gpu_choice(output.target_name, gpu, f"{gpu.family} GPU", options)
    return _spec(output.target_name, tp.os, tp.arch, platform, mcpu, options.mattr, tp.accelerator, options, gpu=choice)


def _gpu_choice(name: str, code: GpuCode, gpu: str, options: CompilerOptions, device_arch: str = "") -> GpuChoice:
    """The GPU's kernels; a CUDA GPU's architecture comes from the device row or CompilerOptions
    gpu-code (they must agree) and must be one NVRTC builds for."""
    if not code.per_architecture:
        return GpuChoice(code, gpu)
    arch = options.gpu_code or device_arch
    if not arch:
        raise client_error(
            "OutputConfiguration",
            f"TargetPlatform Accelerator={code.accelerator} needs CompilerOptions gpu-code, the GPU's architecture "
            "as sm_XX, e.g. {'gpu-code': 'sm_72'} for a Jetson AGX Xavier or 'sm_75' for a T4",
        )
    if device_arch and arch != device_arch:
        raise client_error(
            "OutputConfiguration",
            f"TargetDevice {name}'s GPU ({gpu}) is {device_arch}, but CompilerOptions gpu-code names {arch}: leave "
            f"gpu-code out or give '{device_arch}'",
        )
    from neo_local.backends.nvrtc import NvrtcError, nvrtc

    try:
        compiler = nvrtc()
    except NvrtcError as exc:
        raise internal_error(f"{name}'s CUDA kernels cannot be compiled on this host: {exc}") from None
    if int(arch[3:]) not in compiler.architectures:
        known = ", ".join(f"sm_{a}" for a in compiler.architectures)
        raise client_error(
            "OutputConfiguration",
            f"CompilerOptions gpu-code '{arch}' is not an architecture NVRTC {compiler.version} (CUDA's compiler, "
            f"which neo-local uses) builds for. It builds for: {known}",
        )
    given = {"CudaVersion": options.cuda_ver, "TensorRTVersion": options.trt_ver}
    note = (
        f"kernels compiled by NVRTC {compiler.version} into a cubin for {arch}; the device's driver must load cubins "
        f"of CUDA {compiler.version} (not verified here for older CUDA, e.g. JetPack 4's 10.2). TensorRT is not "
        "used: trt-ver and cuda-ver are recorded, not acted on"
    )
    return GpuChoice(
        code, gpu, arch, {"Architecture": arch, "Compiler": f"NVRTC {compiler.version}",
                          **{k: v for k, v in given.items() if v}}, (note,),
    )


def _spec(
    name: str,
    os: str,
    arch: str,
    platform: Platform,
    mcpu: str,
    mattr: tuple[str, ...],
    accelerator: str | None,
    options: CompilerOptions,
    notes: tuple[str, ...] = (),
    gpu: GpuChoice | None = None,
) -> TargetSpec:
    values = {"tvm_ffi": metadata.version("apache-tvm-ffi"), "api": _android_api(name, platform, options)}
    mtriple = platform.mtriple.format(**values)
    _check_mcpu(mtriple, mcpu)
    mattr = platform.mattr + mattr
    target: dict = {"kind": "llvm", "mtriple": mtriple, "mcpu": mcpu}
    if mattr:
        target["mattr"] = list(mattr)
    target.update(platform.tvm_options)
    _check_precision(name, target, options.precision, gpu)
    if gpu is None and options.nvidia():
        raise client_error(
            "OutputConfiguration",
            f"CompilerOptions {', '.join(options.nvidia())} apply to NVIDIA GPU targets (TargetPlatform "
            f"Accelerator=NVIDIA, ml_p3, ml_g4dn, jetson_*), not {name}",
        )
    return TargetSpec(
        name=name,
        os=os,
        arch=arch,
        tvm_target=target,
        accelerator=accelerator,
        cpu_features=required_features(target),
        linker=platform.linker,
        link_options=platform.link_options,
        link_files=_link_files(name, platform, values),
        library=platform.library,
        notes=notes + tuple(n.format(**values) for n in platform.notes) + ((gpu.code.note(), *gpu.notes) if gpu else ()),
        device_type="gpu" if gpu else "cpu",
        gpu_target=gpu.code.tvm_target(gpu.arch) if gpu else None,
        gpu=gpu.name if gpu else "",
        gpu_details=gpu.details if gpu else {},
        tuning=options.tuning,
        precision=options.precision,
    )


#: the CPUs LLVM knows with AVX512_BF16, for the message of a bfloat16 build elsewhere
BF16_CPUS = ("cooperlake", "sapphirerapids", "emeraldrapids", "graniterapids", "znver4", "znver5")


def _check_precision(name: str, target: dict, precision: str, gpu: GpuChoice | None) -> None:
    """A bfloat16 build (CompilerOptions precision) needs an x86 CPU target with AVX512_BF16:
    its convs run on that instruction set's dot product (``cpu_schedule.bf16_dot``)."""
    if precision == FLOAT32:
        return
    if gpu is None and str(target["mtriple"]).startswith("x86_64") and "avx512_bf16" in required_features(target):
        return
    reason = f"{name} builds for a GPU" if gpu else f"{name}'s CPU ({target['mcpu']}) has no AVX512_BF16"
    raise client_error(
        "OutputConfiguration",
        f"CompilerOptions precision '{precision}' needs an x86 CPU with AVX512_BF16, and {reason}. Name a "
        f"CPU that has it (TargetPlatform Os=LINUX, Arch=X86_64 with CompilerOptions mcpu one of "
        f"{', '.join(BF16_CPUS)}, or mattr ['+avx512bf16']), or leave precision out (float32)",
    )


def _android_api(name: str, platform: Platform, options: CompilerOptions) -> int | None:
    """The Android API level (CompilerOptions ANDROID_PLATFORM) of an Android target; refused elsewhere."""
    if platform.android:
        return options.android_platform or DEFAULT_ANDROID_API
    if options.android_platform is not None:
        raise client_error(
            "OutputConfiguration",
            f"CompilerOptions ANDROID_PLATFORM applies to Android targets (TargetPlatform Os=ANDROID, qcs605, "
            f"qcs603), not {name}",
        )
    return None


def _link_files(name: str, platform: Platform, values: dict) -> tuple[str, ...]:
    """The platform's import libraries in the toolchain cache (or Android's generated stubs); a
    clear error where setup did not prepare them (they come from a wheel downloaded at setup
    time, never at compile time)."""
    cache = Path(os.environ.get(TOOLCHAIN_CACHE_ENV) or _DEFAULT_CACHE)
    if platform.android:
        return android.stub_libraries(cache, str(platform.linker))
    files = tuple(cache / f.format(**values) for f in platform.link_files)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise client_error(
            "OutputConfiguration",
            f"{name} links against {', '.join(missing)}, which is not prepared on this host: run scripts/setup.sh "
            "(it takes the import library from the matching apache-tvm-ffi wheel)",
        )
    return tuple(map(str, files))


def _check_mcpu(mtriple: str, mcpu: str) -> None:
    """LLVM warns and falls back to a generic CPU on an unknown mcpu; we refuse instead."""
    import tvm
    from tvm.target import codegen

    if codegen.llvm_is_valid_cpu(mcpu, mtriple):
        return
    probe = tvm.target.Target({"kind": "llvm", "mtriple": mtriple})
    known = [str(c) for c in codegen.llvm_get_cpu_archlist(probe)]
    close = difflib.get_close_matches(mcpu, known, n=5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise client_error(
        "OutputConfiguration",
        f"CompilerOptions mcpu '{mcpu}' is not a CPU that LLVM knows for {mtriple}.{hint} "
        f"Known CPUs: {', '.join(sorted(known))}",
    )
