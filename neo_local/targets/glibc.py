"""The oldest glibc a Linux library may need (``FLOOR``), and the renaming at link time that
keeps it there.

Why: a library linked on a build host binds each C library function to the newest version of it
that host's glibc has: on Debian 12 (glibc 2.36) ``expf@GLIBC_2.27`` and, for the thread pool,
``pthread_create@GLIBC_2.34``. Such a library does not load where glibc is older (Amazon Linux 2:
2.26; Ubuntu 18.04 and JetPack 4: 2.27; Raspberry Pi OS Buster: 2.28; Ubuntu 20.04: 2.31), though
TVM's runtime runs there (its wheels are manylinux2014: glibc 2.17). glibc keeps every older
version of a function it re-versions, so each reference in the objects is renamed, before the
link, to the newest version at or below the floor (``objcopy --redefine-sym expf=expf@GLIBC_2.2.5``:
the linker reads a versioned name as a reference to that version).

Functions glibc 2.34 moved from libpthread.so.0 and libdl.so.2 into libc.so.6 are found by
version, not by file, so a library that names their old versions also needs those two libraries
(``SPLIT_LIBRARIES``) for glibcs older than 2.34, where they still live.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from neo_local.api.errors import internal_error
from neo_local.targets import binutils

#: glibc 2.17, as manylinux2014 (TVM's runtime wheels)
FLOOR = (2, 17)
#: the system libraries whose versioned functions kernels and the thread pool call
LIBRARIES = ("libc.so.6", "libm.so.6")
#: link inputs that make libpthread.so.0 and libdl.so.2 NEEDED (the thread pool's pthread_* and
#: dl* functions, on glibcs before 2.34), even by a linker that drops unused libraries
SPLIT_LIBRARIES = ("-Wl,--push-state,--no-as-needed", "-l:libpthread.so.0", "-l:libdl.so.2", "-Wl,--pop-state")

_VERSIONED = re.compile(r"^(\w+)@@?GLIBC_([\d.]+)$")


def links_glibc(tvm_target: Mapping[str, Any]) -> bool:
    """Whether a library whose host code is for ``tvm_target`` links against glibc: llvm code for
    Linux (``*-linux-gnu*``; Android's triple is ``*-linux-android*``)."""
    return tvm_target.get("kind") == "llvm" and "-linux-gnu" in str(tvm_target.get("mtriple", ""))


def parse(version: str) -> tuple[int, ...]:
    """``"2.2.5"`` -> ``(2, 2, 5)``."""
    return tuple(int(part) for part in version.split("."))


def spell(version: tuple[int, ...]) -> str:
    return "GLIBC_" + ".".join(map(str, version))


def exported(compiler: str | Sequence[str]) -> Mapping[str, tuple[tuple[int, ...], ...]]:
    """The glibc versions of each function of ``LIBRARIES`` as ``compiler`` (a command) links them
    (the host's or a cross toolchain's), from their dynamic symbol tables."""
    return _exported(_command(compiler))


@lru_cache(maxsize=None)
def _exported(compiler: tuple[str, ...]) -> Mapping[str, tuple[tuple[int, ...], ...]]:
    versions: dict[str, set[tuple[int, ...]]] = {}
    for name in LIBRARIES:
        path = binutils.run(*compiler, f"-print-file-name={name}").strip()
        if not Path(path).is_file():
            raise internal_error(
                f"{' '.join(compiler)} finds no {name} (it printed '{path}'): cannot link against glibc"
            )
        for symbol in binutils.symbols(path):
            match = _VERSIONED.match(symbol.name) if symbol.defined else None
            if match:
                versions.setdefault(match[1], set()).add(parse(match[2]))
    return {symbol: tuple(sorted(found)) for symbol, found in versions.items()}


def renames(undefined: Iterable[str], versions: Mapping[str, tuple[tuple[int, ...], ...]]) -> dict[str, str]:
    """``{symbol: symbol@GLIBC_x}`` for the functions whose newest version is above ``FLOOR``;
    raises InternalError for one glibc has only above it."""
    out = {}
    for symbol in sorted(set(undefined)):
        found = versions.get(symbol, ())
        if not found or found[-1] <= FLOOR:
            continue
        old = [v for v in found if v <= FLOOR]
        if not old:
            raise internal_error(
                f"the library calls {symbol}, which glibc has only from {spell(found[0])} on: it would not load where "
                f"glibc is older than that, and the floor for Linux libraries is {spell(FLOOR)} (TVM's runtime's)"
            )
        out[symbol] = f"{symbol}@{spell(old[-1])}"
    return out


def pin_objects(objects: Iterable[str], compiler: str | Sequence[str], workdir: Path) -> list[str]:
    """Copies of ``objects`` in ``workdir`` whose references to glibc functions name versions at or
    below ``FLOOR`` (the objcopy of ``compiler``'s toolchain renames them). Inputs that are not ELF
    objects (a C file TVM packs GPU kernels into, a library) are passed on as they are: the
    structural check (``binaries``) still refuses a library they make need a newer glibc."""
    command = _command(compiler)
    versions = _exported(command)
    objcopy = _objcopy(command[-1])
    pinned = []
    for i, obj in enumerate(objects):
        if not _is_elf(obj):
            pinned.append(obj)
            continue
        out = workdir / f"{i}-{Path(obj).name}"
        names = renames({s.name for s in binutils.symbols(obj, dynamic=False) if not s.defined and "@" not in s.name},
                        versions)
        if names:
            table = workdir / f"{i}.redefine"
            table.write_text("".join(f"{old} {new}\n" for old, new in names.items()))
            binutils.run(objcopy, f"--redefine-syms={table}", obj, out)
        else:
            out.write_bytes(Path(obj).read_bytes())
        pinned.append(str(out))
    return pinned


def too_new(symbols: Iterable[str]) -> list[str]:
    """The versioned names (``expf@GLIBC_2.27``) among ``symbols`` that are above ``FLOOR``."""
    return sorted(s for s in symbols if (m := _VERSIONED.match(s)) and parse(m[2]) > FLOOR)


def _command(compiler: str | Sequence[str]) -> tuple[str, ...]:
    return (compiler,) if isinstance(compiler, str) else tuple(compiler)


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:  # a linker option or library name ("-lm"), not a file
        return False


def _objcopy(compiler: str) -> str:
    """The toolchain's objcopy: ``aarch64-linux-gnu-gcc`` -> ``aarch64-linux-gnu-objcopy``; the
    host's compilers (g++, cc, gcc) -> objcopy."""
    match = re.match(r"^(.*-)?(gcc|g\+\+|cc|c\+\+|clang)(-[\d.]+)?$", Path(compiler).name)
    return ((match[1] or "") if match else "") + "objcopy"

