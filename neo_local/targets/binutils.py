"""Running binutils (readelf, objdump, objcopy) and a toolchain's queries, and reading readelf's
symbol tables: what the glibc floor (``glibc``) and the library checks (``binaries``) share."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from neo_local.api.errors import internal_error


def run(name: str, *args: str | Path) -> str:
    """The standard output of the tool ``name`` run with ``args``; InternalError when it is not
    installed or fails (its stderr in the message)."""
    path = shutil.which(name)
    if path is None:
        raise internal_error(f"{name} is not installed (binutils or a cross toolchain: scripts/setup.sh installs them)")
    try:
        proc = subprocess.run([path, *map(str, args)], capture_output=True, text=True)
    except OSError as exc:
        raise internal_error(f"{name} cannot run: {exc}") from None
    if proc.returncode != 0:
        raise internal_error(f"{name} failed on {Path(str(args[-1])).name if args else 'no input'}: "
                             f"{proc.stderr.strip()[:300]}")
    return proc.stdout


@dataclass(frozen=True)
class Symbol:
    """One row of readelf's symbol table."""

    value: int
    size: int
    bind: str     # GLOBAL, WEAK, LOCAL
    section: str  # "UND" for a symbol the file needs from elsewhere, else the section's index
    name: str     # with its version where the table gives one: "expf@GLIBC_2.2.5"

    @property
    def defined(self) -> bool:
        return self.section != "UND"


def symbols(path: str | Path, dynamic: bool = True) -> list[Symbol]:
    """The dynamic symbol table of an ELF file (``dynamic``: what the loader resolves), or its
    whole symbol table (an object file's)."""
    found = []
    for line in run("readelf", "-W", "--dyn-syms" if dynamic else "-s", path).splitlines():
        cols = line.split()
        if len(cols) >= 8 and cols[0].rstrip(":").isdigit():
            found.append(Symbol(int(cols[1], 16), int(cols[2], 0), cols[4], cols[6], cols[7]))
    return found
