"""The one place that maps TargetDevice / TargetPlatform + CompilerOptions to a TargetSpec."""

from __future__ import annotations

import difflib

from neo_local.api.errors import client_error
from neo_local.api.requests import OutputConfig
from neo_local.targets.cpu_features import required_features
from neo_local.targets.devices import DEVICES, NOT_YET
from neo_local.targets.options import CompilerOptions
from neo_local.targets.platforms import PLATFORMS, Platform
from neo_local.targets.spec import TargetSpec

#: the LLVM triple of each (Os, Arch) a device row can name
_TRIPLES = {(p.os, p.arch): p.mtriple for p in PLATFORMS.values()}


def resolve_target(output: OutputConfig, options: CompilerOptions) -> TargetSpec:
    """Resolve the request's target; raises JobFailure naming what is wrong and the choices."""
    if output.target_device:
        return _from_device(output.target_device, options)
    assert output.target_platform is not None
    return _from_platform(output, options)


def _from_device(name: str, options: CompilerOptions) -> TargetSpec:
    device = DEVICES.get(name)
    if device is None:
        raise client_error(
            "OutputConfiguration",
            f"TargetDevice {name}: {NOT_YET}. Supported TargetDevice values: {', '.join(sorted(DEVICES))}",
        )
    mcpu = options.mcpu or device.mcpu
    mattr = device.mattr + options.mattr
    return _spec(name, device.os, device.arch, _TRIPLES[(device.os, device.arch)], mcpu, mattr, device.accelerator)


def _from_platform(output: OutputConfig, options: CompilerOptions) -> TargetSpec:
    tp = output.target_platform
    assert tp is not None
    platform: Platform | None = PLATFORMS.get((tp.os, tp.arch, tp.accelerator))
    if platform is None:
        wanted = f"Os={tp.os}, Arch={tp.arch}" + (f", Accelerator={tp.accelerator}" if tp.accelerator else "")
        choices = "; ".join(
            f"Os={p.os}, Arch={p.arch}" + (f", Accelerator={p.accelerator}" if p.accelerator else "")
            for p in PLATFORMS.values()
        )
        raise client_error(
            "OutputConfiguration",
            f"TargetPlatform {wanted} is not supported by neo-local yet. Supported: {choices}",
        )
    mcpu = options.mcpu or platform.default_mcpu
    return _spec(output.target_name, tp.os, tp.arch, platform.mtriple, mcpu, options.mattr, tp.accelerator)


def _spec(
    name: str, os: str, arch: str, mtriple: str, mcpu: str, mattr: tuple[str, ...], accelerator: str | None
) -> TargetSpec:
    _check_mcpu(mtriple, mcpu)
    target: dict = {"kind": "llvm", "mtriple": mtriple, "mcpu": mcpu}
    if mattr:
        target["mattr"] = list(mattr)
    return TargetSpec(
        name=name,
        os=os,
        arch=arch,
        tvm_target=target,
        accelerator=accelerator,
        cpu_features=required_features(target),
    )


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
