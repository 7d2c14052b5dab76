"""Checks of artifacts built for another CPU architecture than this host's.

- ``structural_check``: the library's ELF header, dynamic section and undefined symbols
  (``readelf``), so a wrongly linked library is caught even where it cannot be run.
- ``find_emulator``: a way to run an aarch64 artifact on an x86_64 host: ``qemu-aarch64-static``
  with Debian's arm64 python3.11 and the aarch64 TVM runtime wheels, prepared by
  ``scripts/setup-aarch64-emulation.sh`` under ``.cache/aarch64-emulation``. The artifact is
  run by ``python -m neo_local.runtime.check`` from a copy of the runtime part of neo-local
  only (what a device needs), in TVM's runtime-only mode.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from neo_local.api.errors import internal_error
from neo_local.targets.cpu_features import ARCH_MACHINES

#: where scripts/setup-aarch64-emulation.sh puts the arm64 python and the aarch64 wheels
ENV_DIR = "NEO_LOCAL_AARCH64_EMULATION"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / ".cache" / "aarch64-emulation"
SETUP = "scripts/setup-aarch64-emulation.sh"
QEMU = {"ARM64": "qemu-aarch64-static"}


@dataclass(frozen=True)
class ElfFormat:
    """What readelf must say of a shared library for one Arch."""

    machine: str                 # "Machine:"
    elf_class: str               # "Class:" (ELF32 | ELF64)
    flags: tuple[str, ...] = ()  # words the "Flags:" line must contain (the ARM float ABI)

    def describe(self) -> str:
        flags = f" ({', '.join(self.flags)})" if self.flags else ""
        return f"{self.elf_class} {self.machine}{flags}"


ELF_FORMATS = {
    "X86_64": ElfFormat("Advanced Micro Devices X86-64", "ELF64"),
    "ARM64": ElfFormat("AArch64", "ELF64"),
    "ARM_EABIHF": ElfFormat("ARM", "ELF32", ("Version5 EABI", "hard-float ABI")),
    "X86": ElfFormat("Intel 80386", "ELF32"),
}
#: the shared libraries a glibc Linux system provides that TVM code may need
GLIBC_LIBRARIES = frozenset({"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "libgcc_s.so.1"})


def host_runs(arch: str) -> bool:
    """Whether this machine's CPU runs ``arch`` code natively."""
    return platform.machine().lower() in ARCH_MACHINES.get(arch, ())


@dataclass(frozen=True)
class Emulator:
    qemu: str
    cpu: str
    root: Path

    @property
    def sysroot(self) -> Path:
        return self.root / "sysroot"

    def python(self) -> list[str]:
        """argv that starts the emulated python3.11."""
        return [self.qemu, "-cpu", self.cpu, "-L", str(self.sysroot), str(self.sysroot / "usr/bin/python3.11")]

    def environment(self, runtime_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "LD_"))}
        env.update(
            PYTHONPATH=f"{runtime_dir}{os.pathsep}{self.root / 'site'}",
            PYTHONNOUSERSITE="1",
            PYTHONDONTWRITEBYTECODE="1",
            TVM_USE_RUNTIME_LIB="1",
        )
        return env

    def describe(self) -> str:
        return f"{Path(self.qemu).name} -cpu {self.cpu} with Debian's arm64 python3.11 and the aarch64 TVM runtime"


def emulation_dir() -> Path:
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR)


def find_emulator(arch: str, mcpu: str) -> Emulator | str:
    """An Emulator for ``arch`` code, or the reason there is none on this host."""
    qemu_name = QEMU.get(arch)
    if qemu_name is None:
        return f"no TVM runtime for {arch} exists to run it with (see the target's notes)"
    qemu = shutil.which(qemu_name)
    if qemu is None:
        return f"{qemu_name} is not installed (Debian package qemu-user-static; scripts/setup.sh installs it)"
    root = emulation_dir()
    if not (root / "READY").is_file() or not (root / "sysroot/usr/bin/python3.11").is_file():
        return f"the aarch64 python and TVM runtime are not prepared in {root} (run {SETUP})"
    cpus = _qemu_cpus(qemu)
    return Emulator(qemu, mcpu if mcpu in cpus else "max", root)


@functools.lru_cache(maxsize=None)
def _qemu_cpus(qemu: str) -> frozenset[str]:
    try:
        out = subprocess.run([qemu, "-cpu", "help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(w for line in out.splitlines()[1:] for w in line.split())


def stage_runtime(dest: Path) -> Path:
    """Copy the runtime part of neo-local (DLRModel and what it imports) into ``dest``."""
    package = Path(__file__).resolve().parents[1]
    target = dest / "neo_local"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(package / "runtime", target / "runtime", ignore=shutil.ignore_patterns("__pycache__"))
    (target / "targets").mkdir(parents=True)
    shutil.copy2(package / "targets" / "cpu_features.py", target / "targets" / "cpu_features.py")
    (target / "targets" / "__init__.py").write_text("")
    from neo_local import __version__

    (target / "__init__.py").write_text(
        f'"""neo-local, the runtime part only (staged for an emulated run)."""\n__version__ = "{__version__}"\n'
    )
    return dest


# undefined dynamic symbols a TVM library may have: the tvm-ffi runtime's C API (resolved from
# the already loaded libtvm_ffi), glibc's and libgcc's versioned functions (ARM unwinding helpers)
_ALLOWED_UNDEFINED = re.compile(
    r"^(TVMFFI\w+|\w+@GLIBC_[\d.]+|\w+@GCC_[\d.]+|__gmon_start__|_ITM_\w+|__cxa_finalize(@\S+)?)$"
)


def structural_check(library: Path, arch: str) -> str:
    """Check the ELF file is a shared library for ``arch`` (machine, class, float ABI) that needs
    only glibc and the TVM FFI; returns a one-line summary, raises InternalError naming what is wrong."""
    header = _readelf("-h", library)
    wanted = ELF_FORMATS.get(arch)
    found = ElfFormat(_field(header, "Machine"), _field(header, "Class"))
    if wanted is None or (found.machine, found.elf_class) != (wanted.machine, wanted.elf_class):
        raise internal_error(
            f"{library.name} is an {found.describe()} file, not {wanted.describe() if wanted else arch}"
        )
    flags = _field(header, "Flags")
    missing = [f for f in wanted.flags if f not in flags]
    if missing:
        raise internal_error(f"{library.name} has ELF flags '{flags}', without {', '.join(missing)}")
    kind = _field(header, "Type")
    if not kind.startswith("DYN"):
        raise internal_error(f"{library.name} is not a shared library (ELF type {kind})")
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _readelf("-d", library))
    foreign = sorted(set(needed) - GLIBC_LIBRARIES)
    if foreign:
        raise internal_error(f"{library.name} needs libraries a glibc system does not provide: {', '.join(foreign)}")
    undefined = set()
    for line in _readelf("--dyn-syms", library).splitlines():
        cols = line.split()
        if len(cols) >= 8 and cols[6] == "UND" and cols[4] != "WEAK":
            undefined.add(cols[7])
    unexpected = sorted(s for s in undefined if not _ALLOWED_UNDEFINED.match(s))
    if unexpected:
        raise internal_error(
            f"{library.name} needs symbols neither libc nor the TVM runtime provides: {', '.join(unexpected[:10])}"
        )
    tvm = sorted(s for s in undefined if s.startswith("TVMFFI"))
    return (
        f"{wanted.describe()} shared library, NEEDED {', '.join(needed) or 'nothing'}; undefined symbols only from "
        f"glibc/libgcc and the TVM FFI ({', '.join(tvm) or 'none'})"
    )


def _readelf(flag: str, library: Path) -> str:
    readelf = shutil.which("readelf")
    if readelf is None:
        raise internal_error("readelf (binutils) is not installed: the library cannot be checked")
    proc = subprocess.run([readelf, "-W", flag, str(library)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise internal_error(f"readelf cannot read {library.name}: {proc.stderr.strip()[:200]}")
    return proc.stdout


def _field(text: str, name: str) -> str:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return "unknown"
