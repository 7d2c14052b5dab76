"""TargetPlatform rules: (Os, Arch, Accelerator) -> LLVM triple, default CPU, linker and check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from neo_local.targets import android


@dataclass(frozen=True)
class Platform:
    os: str
    arch: str
    mtriple: str
    default_mcpu: str
    accelerator: str | None = None
    #: C compiler driver that links the shared library; None: the host's cc (native builds)
    linker: str | None = None
    #: more TVM llvm target keys the platform's ABI needs (e.g. the float ABI)
    tvm_options: Mapping[str, str] = field(default_factory=dict)
    #: how a compiled artifact is checked on this project's x86_64 build machines
    check: str = ""
    #: the same in a few words, for the device rows of the README matrix
    check_summary: str = ""
    #: what every artifact for this platform must say (compiled.meta Target.Notes, job log)
    notes: tuple[str, ...] = ()
    #: import libraries to link against, under the toolchain cache that scripts/setup.sh fills
    link_files: tuple[str, ...] = ()
    library: str = "compiled.so"
    #: whether a TargetPlatform can name it (the API's Os has no WINDOWS: TargetDevice only)
    api: bool = True
    #: mattr every target of the platform gets (its ABI's reserved registers)
    mattr: tuple[str, ...] = ()
    #: linker options before the objects
    link_options: tuple[str, ...] = ()
    #: links against generated stub libraries of Android's bionic (neo_local.targets.android)
    android: bool = False


def _no_runtime(what: str, wheel: str, checked: str = "it was checked structurally here, not run") -> str:
    """The note of a platform no prebuilt TVM runtime exists for."""
    return (
        f"no prebuilt TVM runtime exists for {what} (no {wheel} wheel of apache-tvm or apache-tvm-ffi): the device "
        f"needs tvm-ffi and the TVM runtime built from source to load this library; {checked}"
    )


_STRUCTURAL = "ELF check (class, machine, ABI flags, NEEDED libraries, undefined symbols); not run: {}"

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
        # generic armv7-a, hard-float ABI (without mfloat-abi LLVM emits soft-float calls, which
        # ld refuses to link with the hard-float libc); Debian's gcc-arm-linux-gnueabihf links
        Platform(
            "LINUX", "ARM_EABIHF", "armv7l-linux-gnueabihf", "generic",
            linker="arm-linux-gnueabihf-gcc",
            tvm_options={"mfloat-abi": "hard"},
            check="run under qemu-arm through neo_run with the TVM runtime cross-built for armhf "
                  "(scripts/setup-armhf-runtime.sh) and compared; ELF check where that runtime is not built",
            check_summary="run under qemu-arm (TVM runtime cross-built for armhf), compared",
            notes=(_no_runtime("32-bit ARM Linux", "armv7", "the job runs it under qemu-arm with such a runtime where "
                               "scripts/setup-armhf-runtime.sh built one (Verification says whether it ran)"),),
        ),
        # Windows x64 DLL (windows-gnu: the -msvc triple fails on _fltused), linked by mingw against
        # the import library of the win_amd64 apache-tvm-ffi wheel (scripts/setup.sh caches it)
        Platform(
            "WINDOWS", "X86_64", "x86_64-pc-windows-gnu", "x86-64",
            linker="x86_64-w64-mingw32-gcc",
            check="run under wine64 through neo_run with tvm_runtime.dll and tvm_ffi.dll of the win_amd64 wheels "
                  "and compared; PE check (PE32+ x86-64 DLL, exports the module blob, imports only tvm_ffi.dll's C "
                  "API and Windows system DLLs) where wine is not set up",
            check_summary="run under wine64 (TVM runtime of the win_amd64 wheels), compared",
            notes=("a Windows x64 DLL for the Windows build of apache-tvm-ffi {tvm_ffi} (it imports tvm_ffi.dll); "
                   "the job runs it under wine64 with the win_amd64 TVM runtime where scripts/setup-windows-runtime.sh "
                   "prepared one (Verification says whether it ran)",),
            link_files=("windows-x86_64/apache-tvm-ffi-{tvm_ffi}/tvm_ffi.lib",),
            library="compiled.dll",
            api=False,
        ),
        # Android arm64 (bionic), at the API level of CompilerOptions ANDROID_PLATFORM; the cross
        # gcc links with -nostdlib against stub bionic libraries, never glibc. Android reserves x18.
        Platform(
            "ANDROID", "ARM64", "aarch64-linux-android{api}", "generic",
            linker="aarch64-linux-gnu-gcc",
            mattr=("+reserve-x18",),
            link_options=android.LINK_OPTIONS,
            android=True,
            check="ELF check (AArch64, NEEDED only libtvm_ffi.so and bionic's libc.so/libm.so/libdl.so, unversioned "
                  "symbols from them only, no use of x18); not run: no Android system or Android TVM runtime here",
            check_summary="structural ELF check for bionic (not run)",
            notes=("an Android (bionic) library for API level {api} and later: it needs libtvm_ffi.so, packaged "
                   "with the app; no prebuilt Android build of the TVM runtime exists (build tvm-ffi and the TVM "
                   "runtime with the NDK); checked structurally here, not run",),
        ),
        # generic i686 (no SSE assumed: pass mcpu, e.g. pentium4, for the machine's vector units)
        Platform(
            "LINUX", "X86", "i686-linux-gnu", "i686",
            linker="i686-linux-gnu-gcc",
            check=_STRUCTURAL.format("no TVM runtime exists for 32-bit x86"),
            check_summary="structural ELF check (no i686 TVM runtime to run it)",
            notes=(_no_runtime("32-bit x86 Linux", "i686"),),
        ),
    )
}
