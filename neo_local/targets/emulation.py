"""Running artifacts built for another OS or CPU architecture than this host's.

``find_emulator(os, arch, mcpu)`` looks the pair up in ``RUNNERS`` and returns a Runner, or the
reason this host has none:

- LINUX/ARM64: ``qemu-aarch64-static`` with Debian's arm64 python3.11 and the aarch64 TVM runtime
  wheels (``scripts/setup-aarch64-emulation.sh``); ``python -m neo_local.runtime.check`` runs from
  a copy of the runtime part of neo-local only (what a device needs), in TVM's runtime-only mode.
- WINDOWS/X86_64: no Windows Python is at hand, so ``neo_run`` (``runtime/native/neo_run.c``),
  built with mingw-w64, runs under wine64 with tvm_runtime.dll and tvm_ffi.dll from the win_amd64
  wheels (``scripts/setup-windows-runtime.sh``).
- LINUX/ARM_EABIHF: no armv7 wheel exists, so ``neo_run``, built with arm-linux-gnueabihf-gcc, runs
  under ``qemu-arm-static`` with the TVM runtime cross-built by ``scripts/setup-armhf-runtime.sh``.

``neo_run`` runs TVM Relax VM libraries only; tree models are built for x86 Linux alone.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Protocol

import numpy as np

from neo_local.runtime.model import extract_artifact, read_meta
from neo_local.runtime.threads import thread_env
from neo_local.targets.cpu_features import ARCH_MACHINES, host_os

REPO = Path(__file__).resolve().parents[2]
#: where scripts/setup-aarch64-emulation.sh puts the arm64 python and the aarch64 wheels
ENV_DIR = "NEO_LOCAL_AARCH64_EMULATION"
DEFAULT_DIR = REPO / ".cache" / "aarch64-emulation"
SETUP = "scripts/setup-aarch64-emulation.sh"
#: where scripts/setup-windows-runtime.sh puts the Windows TVM runtime DLLs and the wine prefix
WINDOWS_ENV_DIR = "NEO_LOCAL_WINDOWS_RUNTIME"
WINDOWS_DEFAULT_DIR = REPO / ".cache" / "windows-x86_64" / "runtime"
#: where scripts/setup-armhf-runtime.sh puts the armhf TVM runtime (lib/libtvm_runtime.so, lib/libtvm_ffi.so)
ARMHF_ENV_DIR = "NEO_LOCAL_ARMHF_RUNTIME"
ARMHF_DEFAULT_DIR = REPO / ".cache" / "armhf-runtime"
ARMHF_SYSROOT = Path("/usr/arm-linux-gnueabihf")
#: built neo_run executables, one per source version and compiler
LOADER_CACHE = REPO / ".cache" / "native-loader"
LOADER_SOURCE = Path(__file__).resolve().parents[1] / "runtime" / "native" / "neo_run.c"
#: compilers neo_run is built with, and their Debian packages
LOADER_COMPILERS = {"x86_64-w64-mingw32-gcc": "gcc-mingw-w64-x86-64-win32", "arm-linux-gnueabihf-gcc": "gcc-arm-linux-gnueabihf"}


def host_runs(os: str, arch: str) -> bool:
    """Whether this machine loads ``os`` libraries and its CPU runs ``arch`` code natively."""
    return host_os() == os and platform.machine().lower() in ARCH_MACHINES.get(arch, ())


@dataclass(frozen=True)
class Invocation:
    """A command that runs an artifact on saved inputs, and where it leaves the outputs."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path | None
    #: an .npz of arr_0, arr_1, ... (neo_local.runtime.check) or a folder of output_<i>.npy (neo_run)
    outputs: Path

    def read_outputs(self) -> list[np.ndarray]:
        if self.outputs.suffix == ".npz":
            with np.load(self.outputs) as data:
                return [data[f"arr_{i}"] for i in range(len(data.files))]
        count = len(list(self.outputs.glob("output_*.npy")))
        return [np.load(self.outputs / f"output_{i}.npy") for i in range(count)]


class Runner(Protocol):
    """A way to run an artifact in a fresh process."""

    def describe(self) -> str: ...

    def invocation(self, artifact: Path, feeds: Mapping[str, np.ndarray], workdir: Path) -> Invocation: ...


def _check_invocation(
    python: tuple[str, ...], env: Mapping[str, str], cwd: Path | None, artifact: Path,
    feeds: Mapping[str, np.ndarray], workdir: Path,
) -> Invocation:
    """``python -m neo_local.runtime.check ARTIFACT INPUTS.npz OUTPUTS.npz``."""
    inputs, outputs = workdir / "verify-inputs.npz", workdir / "verify-outputs.npz"
    np.savez(inputs, **feeds)
    argv = (*python, "-m", "neo_local.runtime.check", str(artifact.resolve()), str(inputs.resolve()),
            str(outputs.resolve()))
    return Invocation(argv, env, cwd, outputs)


@dataclass(frozen=True)
class HostPython:
    """This interpreter, in a fresh process, with the TVM runtime alone (as on a device)."""

    python: str

    def describe(self) -> str:
        return "in a fresh process"

    def invocation(self, artifact: Path, feeds: Mapping[str, np.ndarray], workdir: Path) -> Invocation:
        env = {**os.environ, "TVM_USE_RUNTIME_LIB": "1"}
        return _check_invocation((self.python,), env, None, artifact, feeds, workdir)


@dataclass(frozen=True)
class Emulator:
    """Debian's arm64 python3.11 under qemu-user, with the aarch64 TVM runtime wheels."""

    qemu: str
    cpu: str
    root: Path

    @property
    def sysroot(self) -> Path:
        return self.root / "sysroot"

    def python(self) -> tuple[str, ...]:
        """argv that starts the emulated python3.11."""
        return (self.qemu, "-cpu", self.cpu, "-L", str(self.sysroot), str(self.sysroot / "usr/bin/python3.11"))

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
        return f"under {Path(self.qemu).name} -cpu {self.cpu} with Debian's arm64 python3.11 and the aarch64 TVM runtime"

    def invocation(self, artifact: Path, feeds: Mapping[str, np.ndarray], workdir: Path) -> Invocation:
        # run from the staged copy: ``-m`` puts the working directory first on sys.path
        staged = stage_runtime(workdir / "device-runtime")
        return _check_invocation(self.python(), self.environment(staged), staged, artifact, feeds, workdir)


@dataclass(frozen=True)
class NativeLoader:
    """``neo_run`` built for the target, started by ``launcher`` (wine64, qemu-arm) with the target's
    TVM runtime libraries in ``runtime_dir``."""

    launcher: tuple[str, ...]
    loader: Path
    runtime_dir: Path
    env: Mapping[str, str]
    label: str
    #: how the launched program spells a host path (wine: Z:\\...)
    guest_path: Callable[[Path], str] = field(default=str)

    def describe(self) -> str:
        return f"under {self.label}"

    def invocation(self, artifact: Path, feeds: Mapping[str, np.ndarray], workdir: Path) -> Invocation:
        folder = _artifact_folder(artifact, workdir)
        meta = read_meta(folder)
        inputs_dir, outputs = workdir / "native-inputs", workdir / "native-outputs"
        for d in (inputs_dir, outputs):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        inputs = []
        for i, spec in enumerate(meta["Model"]["Inputs"]):  # the order of the VM's main arguments
            inputs.append(inputs_dir / f"input_{i}.npy")
            np.save(inputs[-1], np.ascontiguousarray(feeds[spec["name"]]))
        paths = (self.runtime_dir, folder / meta["Runtime"]["Library"], outputs, *inputs)
        argv = (*self.launcher, str(self.loader), *(self.guest_path(p.resolve()) for p in paths))
        return Invocation(argv, {**os.environ, **self.env}, None, outputs)


def emulation_dir() -> Path:
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR)


def windows_runtime_dir() -> Path:
    return Path(os.environ.get(WINDOWS_ENV_DIR) or WINDOWS_DEFAULT_DIR)


def armhf_runtime_dir() -> Path:
    return Path(os.environ.get(ARMHF_ENV_DIR) or ARMHF_DEFAULT_DIR)


def _aarch64_python(mcpu: str) -> Runner | str:
    qemu = shutil.which("qemu-aarch64-static")
    if qemu is None:
        return _missing("qemu-aarch64-static", "qemu-user-static")
    root = emulation_dir()
    if not (root / "READY").is_file() or not (root / "sysroot/usr/bin/python3.11").is_file():
        return f"the aarch64 python and TVM runtime are not prepared in {root} (run {SETUP})"
    return Emulator(qemu, _qemu_cpu(qemu, mcpu), root)


def _windows_loader(mcpu: str) -> Runner | str:
    wine = shutil.which("wine64") or shutil.which("/usr/lib/wine/wine64")  # Debian's wine64 alone has no wrapper
    if wine is None:
        return _missing("wine64", "wine64")
    root = windows_runtime_dir()
    if not all((root / f).is_file() for f in ("READY", "tvm_runtime.dll", "tvm_ffi.dll", "wineprefix/system.reg")):
        return f"the Windows TVM runtime DLLs and wine prefix are not prepared in {root} (run scripts/setup-windows-runtime.sh)"
    loader = build_loader("x86_64-w64-mingw32-gcc", ".exe")
    if isinstance(loader, str):
        return loader
    env = {
        "WINEPREFIX": str(root / "wineprefix"),
        "WINEDEBUG": "-all",
        "WINEDLLOVERRIDES": "mscoree,mshtml=;winemenubuilder.exe=d",
        **thread_env(),
    }
    label = "wine64 through neo_run (built with mingw-w64) with tvm_runtime.dll and tvm_ffi.dll from the win_amd64 wheels"
    return NativeLoader((wine,), loader, root, env, label, _wine_path)


def _armhf_loader(mcpu: str) -> Runner | str:
    qemu = shutil.which("qemu-arm-static")
    if qemu is None:
        return _missing("qemu-arm-static", "qemu-user-static")
    root = armhf_runtime_dir()
    if not all((root / f).is_file() for f in ("READY", "lib/libtvm_runtime.so", "lib/libtvm_ffi.so")):
        return f"the armhf TVM runtime is not built in {root} (run scripts/setup-armhf-runtime.sh)"
    if not (ARMHF_SYSROOT / "lib/libstdc++.so.6").is_file():
        return f"the armhf C++ runtime is not in {ARMHF_SYSROOT} (Debian package libstdc++6-armhf-cross)"
    loader = build_loader("arm-linux-gnueabihf-gcc", "", "-ldl")
    if isinstance(loader, str):
        return loader
    cpu = _qemu_cpu(qemu, mcpu)
    launcher = (qemu, "-cpu", cpu, "-L", str(ARMHF_SYSROOT), "-E", f"LD_LIBRARY_PATH={root / 'lib'}")
    label = f"qemu-arm-static -cpu {cpu} through neo_run with the TVM runtime cross-built for armhf"
    return NativeLoader(launcher, loader, root / "lib", thread_env(), label)


#: (Os, Arch) -> finder of a Runner for that pair's libraries (or the reason there is none)
RUNNERS: dict[tuple[str, str], Callable[[str], Runner | str]] = {
    ("LINUX", "ARM64"): _aarch64_python,
    ("WINDOWS", "X86_64"): _windows_loader,
    ("LINUX", "ARM_EABIHF"): _armhf_loader,
}


def find_emulator(os: str, arch: str, mcpu: str) -> Runner | str:
    """A Runner for ``os``/``arch`` libraries, or the reason there is none on this host."""
    finder = RUNNERS.get((os, arch))
    if finder is None:
        return f"nothing on this host runs {os} {arch} libraries (see the target's notes)"
    return finder(mcpu)


def build_loader(cc: str, suffix: str, *libs: str) -> Path | str:
    """neo_run built with ``cc`` (cached per source and compiler), or why it could not be built."""
    if shutil.which(cc) is None:
        return _missing(cc, LOADER_COMPILERS[cc])
    source = LOADER_SOURCE.read_bytes()
    key = hashlib.sha256(source + cc.encode()).hexdigest()[:16]
    exe = LOADER_CACHE / f"neo_run-{cc}-{key}{suffix}"
    if exe.is_file():
        return exe
    import tvm_ffi.libinfo

    LOADER_CACHE.mkdir(parents=True, exist_ok=True)
    partial = exe.with_name(f"{exe.name}.{os.getpid()}.partial")
    argv = [cc, "-O2", "-std=gnu11", "-Wall", "-o", str(partial), str(LOADER_SOURCE),
            f"-I{tvm_ffi.libinfo.find_include_path()}", f"-I{tvm_ffi.libinfo.find_dlpack_include_path()}", *libs]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return f"building neo_run with {cc} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
    os.replace(partial, exe)  # atomic: concurrent jobs see a whole executable or none
    return exe


def _wine_path(path: Path) -> str:
    """A host path as Windows programs under wine see it (drive Z: is the host's root)."""
    return "Z:" + str(path).replace("/", "\\")


def _missing(tool: str, package: str) -> str:
    return f"{tool} is not installed (Debian package {package}; scripts/setup.sh installs it as root)"


def _qemu_cpu(qemu: str, mcpu: str) -> str:
    return mcpu if mcpu in _qemu_cpus(qemu) else "max"


@functools.lru_cache(maxsize=None)
def _qemu_cpus(qemu: str) -> frozenset[str]:
    try:
        out = subprocess.run([qemu, "-cpu", "help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(w for line in out.splitlines()[1:] for w in line.split())


def _artifact_folder(artifact: Path, workdir: Path) -> Path:
    """The artifact's folder; a tarball is unpacked into ``workdir`` first."""
    if artifact.is_dir():
        return artifact
    folder = workdir / "artifact"
    extract_artifact(artifact, folder)
    return folder


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
