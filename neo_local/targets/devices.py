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
    #: what a user must know about the artifact (e.g. an accelerator it does not use); goes to
    #: compiled.meta's Target.Notes
    notes: tuple[str, ...] = ()


DEVICES: dict[str, Device] = {
    d.name: d
    for d in (
        Device("ml_c4", "LINUX", "X86_64", "core-avx2", description="EC2 C4 (Haswell, AVX2)"),
        Device("ml_m4", "LINUX", "X86_64", "core-avx2", description="EC2 M4 (Broadwell/Haswell, AVX2)"),
        Device("ml_c5", "LINUX", "X86_64", "skylake-avx512", description="EC2 C5 (Skylake-SP, AVX-512)"),
        Device("ml_m5", "LINUX", "X86_64", "skylake-avx512", description="EC2 M5 (Skylake-SP, AVX-512)"),
        Device("lambda", "LINUX", "X86_64", "haswell", description="AWS Lambda x86_64 (AVX2)"),
        Device("sbe_c", "LINUX", "X86_64", "core-avx2", description="Snowball Edge compute (AVX2)"),
        Device("ml_c6g", "LINUX", "ARM64", "neoverse-n1", ("+neon",), description="EC2 C6g (Graviton2, Neoverse N1)"),
        Device("ml_m6g", "LINUX", "ARM64", "neoverse-n1", ("+neon",), description="EC2 M6g (Graviton2, Neoverse N1)"),
        Device(
            "rasp4b", "LINUX", "ARM64", "cortex-a72", description="Raspberry Pi 4 B (BCM2711, Cortex-A72)",
            notes=("Raspberry Pi 4 B with a 64-bit (aarch64) OS, as Neo's rasp4b; a 32-bit Raspberry Pi OS "
                   "cannot load it",),
        ),
        Device(
            "imx8qm", "LINUX", "ARM64", "cortex-a53", description="NXP i.MX 8QuadMax (2x Cortex-A72 + 4x Cortex-A53)",
            notes=("tuned for the Cortex-A53 cores; the code runs on the A72 cores as well",),
        ),
        Device(
            "jacinto_tda4vm", "LINUX", "ARM64", "cortex-a72", description="TI Jacinto 7 TDA4VM (Cortex-A72)",
            notes=("CPU only: runs on the Cortex-A72 cores; the C7x DSP / MMA accelerator needs TI's TIDL "
                   "tools and is not used",),
        ),
    )
}

#: devices whose defining accelerator neo-local cannot generate code for yet: refused with the
#: reason and the CPU-only alternative, never compiled for the CPU behind the user's back
REFUSED: dict[str, str] = {
    name: (
        f"its {gpu} GPU needs OpenCL (Mali) code, which neo-local does not generate yet. To run the model on "
        f"the board's {cpu} CPU cores instead, use TargetPlatform Os=LINUX, Arch=ARM64 with CompilerOptions "
        f'{{"mcpu": "{mcpu}"}}'
    )
    for name, gpu, cpu, mcpu in (
        ("rk3399", "Mali-T860", "Cortex-A72/A53", "cortex-a72"),
        ("aisage", "Mali-T860 (RK3399)", "Cortex-A72/A53", "cortex-a72"),
    )
}

#: TargetDevice values of the API that have no row yet, with what a user should know.
NOT_YET = (
    "neo-local does not compile for this device yet (x86_64 and aarch64 Linux devices and "
    "TargetPlatform LINUX/X86_64, LINUX/ARM64 are supported today)"
)
