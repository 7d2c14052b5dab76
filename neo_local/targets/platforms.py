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
    #: how a compiled artifact is checked on this project's x86_64 build machines
    check: str = ""
    #: the same in a few words, for the device rows of the README matrix
    check_summary: str = ""


PLATFORMS: dict[tuple[str, str, str | None], Platform] = {
    (p.os, p.arch, p.accelerator): p
    for p in (
        # generic x86-64 runs on any 64-bit x86 CPU; pass mcpu for the machine's vector units
        Platform(
            "LINUX", "X86_64", "x86_64-linux-gnu", "x86-64",
            check="run on the host and compared (refused with the reason where the host CPU lacks "
                  "the target's features, e.g. AVX-512)",
            check_summary="run on the host, compared",
        ),
        # generic armv8-a (+neon) runs on every 64-bit ARM CPU; cross-linked with Debian's
        # gcc-aarch64-linux-gnu against glibc (installed by scripts/setup.sh)
        Platform(
            "LINUX", "ARM64", "aarch64-linux-gnu", "generic",
            linker="aarch64-linux-gnu-gcc",
            check="run under qemu-aarch64 with the device's CPU model and compared; ELF check where qemu is not set up",
            check_summary="run under qemu-aarch64, compared",
        ),
    )
}
