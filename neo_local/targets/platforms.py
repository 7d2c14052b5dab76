"""TargetPlatform rules: (Os, Arch, Accelerator) -> LLVM triple and default CPU."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    os: str
    arch: str
    mtriple: str
    default_mcpu: str
    accelerator: str | None = None
    #: C compiler driver that links the shared library; None: the host's cc (native builds)
    linker: str | None = None


PLATFORMS: dict[tuple[str, str, str | None], Platform] = {
    (p.os, p.arch, p.accelerator): p
    for p in (
        # generic x86-64 runs on any 64-bit x86 CPU; pass mcpu for the machine's vector units
        Platform("LINUX", "X86_64", "x86_64-linux-gnu", "x86-64"),
        # generic armv8-a (+neon) runs on every 64-bit ARM CPU; cross-linked with Debian's
        # gcc-aarch64-linux-gnu against glibc (installed by scripts/setup.sh)
        Platform(
            "LINUX", "ARM64", "aarch64-linux-gnu", "generic",
            linker="aarch64-linux-gnu-gcc",
        ),
    )
}
