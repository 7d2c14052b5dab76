"""The device table: every TargetDevice neo-local compiles for, as data.

A row says which OS, architecture and CPU the device has; `registry.resolve_target` turns a
row (or a TargetPlatform) into a TargetSpec. Devices of the API's enum that are not rows here
are refused with a reason from ``NOT_YET``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Device:
    name: str
    os: str
    arch: str
    mcpu: str
    mattr: tuple[str, ...] = ()
    accelerator: str | None = None
    description: str = ""


DEVICES: dict[str, Device] = {
    d.name: d
    for d in (
        Device("ml_c4", "LINUX", "X86_64", "core-avx2", description="EC2 C4 (Haswell, AVX2)"),
        Device("ml_m4", "LINUX", "X86_64", "core-avx2", description="EC2 M4 (Broadwell/Haswell, AVX2)"),
        Device("ml_c5", "LINUX", "X86_64", "skylake-avx512", description="EC2 C5 (Skylake-SP, AVX-512)"),
        Device("ml_m5", "LINUX", "X86_64", "skylake-avx512", description="EC2 M5 (Skylake-SP, AVX-512)"),
        Device("lambda", "LINUX", "X86_64", "haswell", description="AWS Lambda x86_64 (AVX2)"),
        Device("sbe_c", "LINUX", "X86_64", "core-avx2", description="Snowball Edge compute (AVX2)"),
    )
}

#: TargetDevice values of the API that have no row yet, with what a user should know.
NOT_YET = (
    "neo-local does not compile for this device yet (x86_64 Linux devices and "
    "TargetPlatform LINUX/X86_64 are supported today)"
)
