"""Running artifacts built for another CPU architecture than this host's.

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
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from neo_local.targets.cpu_features import ARCH_MACHINES, host_os

#: where scripts/setup-aarch64-emulation.sh puts the arm64 python and the aarch64 wheels
ENV_DIR = "NEO_LOCAL_AARCH64_EMULATION"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / ".cache" / "aarch64-emulation"
SETUP = "scripts/setup-aarch64-emulation.sh"
QEMU = {("LINUX", "ARM64"): "qemu-aarch64-static"}


def host_runs(os: str, arch: str) -> bool:
    """Whether this machine loads ``os`` libraries and its CPU runs ``arch`` code natively."""
    return host_os() == os and platform.machine().lower() in ARCH_MACHINES.get(arch, ())


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


def find_emulator(os: str, arch: str, mcpu: str) -> Emulator | str:
    """An Emulator for ``os``/``arch`` libraries, or the reason there is none on this host."""
    qemu_name = QEMU.get((os, arch))
    if qemu_name is None:
        return f"nothing on this host runs {os} {arch} libraries (see the target's notes)"
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
