"""Structural checks of a compiled library for a platform this host cannot run it on.

A wrongly linked library (wrong machine or float ABI, a C library the device does not have, a
symbol nothing provides) is caught here even where nothing can run it. ELF files are read with
``readelf``, PE files (Windows DLLs) with ``objdump -p``; both come with binutils. A GPU
target's kernels are embedded in the library as source (OpenCL C) or machine code (a CUDA
cubin): ``kernel_check`` reads the module blob TVM's loader deserializes and checks every kernel
it lists is defined there; OpenCL source is compile-checked by clang's front end (``opencl_c``),
a cubin must be for the requested sm_XX.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from neo_local.api.errors import internal_error
from neo_local.targets import android, binutils, glibc, opencl_c


@dataclass(frozen=True)
class ElfFormat:
    """What readelf must say of a shared library for one Arch."""

    machine: str                 # "Machine:"
    elf_class: str               # "Class:" (ELF32 | ELF64)
    flags: tuple[str, ...] = ()  # words the "Flags:" line must contain (the ARM float ABI)

    def describe(self) -> str:
        flags = f" ({', '.join(self.flags)})" if self.flags else ""
        return f"{self.elf_class} {self.machine}{flags}"


@dataclass(frozen=True)
class SystemLibraries:
    """What an OS gives a TVM library: the shared libraries it may need and the undefined
    symbols they resolve (besides those of the TVM runtime, which the loader provides)."""

    name: str
    libraries: frozenset[str]
    symbols: re.Pattern[str]
    #: glibc: no function at a version above ``glibc.FLOOR`` (the library would not load on older systems)
    glibc_floor: bool = False


ELF_FORMATS = {
    "X86_64": ElfFormat("Advanced Micro Devices X86-64", "ELF64"),
    "ARM64": ElfFormat("AArch64", "ELF64"),
    "ARM_EABIHF": ElfFormat("ARM", "ELF32", ("Version5 EABI", "hard-float ABI")),
    "X86": ElfFormat("Intel 80386", "ELF32"),
}

SYSTEM_LIBRARIES = {
    # glibc's and libgcc's versioned functions (libgcc_s: the ARM unwinding helpers)
    "LINUX": SystemLibraries(
        "glibc/libgcc",
        frozenset({"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "libgcc_s.so.1"}),
        re.compile(r"^(\w+@GLIBC_[\d.]+|\w+@GCC_[\d.]+|__gmon_start__|_ITM_\w+|__cxa_finalize(@\S+)?)$"),
        glibc_floor=True,
    ),
    # bionic, as named by the Android stub libraries: unversioned symbols only (no GLIBC_*)
    "ANDROID": SystemLibraries(
        "bionic",
        frozenset(android.SYSTEM_FUNCTIONS) | {android.TVM_FFI},
        re.compile(rf"^({'|'.join(f for fs in android.SYSTEM_FUNCTIONS.values() for f in fs)})$"),
    ),
    # the Windows system DLLs mingw links C code against (the MSVCRT, or the UCRT and its API
    # sets); any of their functions
    "WINDOWS": SystemLibraries(
        "Windows system DLLs",
        frozenset({"kernel32.dll", "msvcrt.dll", "ucrtbase.dll"}),
        re.compile(r"^\w+$"),
    ),
}
#: tvm_ffi's C API
_TVM_FFI = re.compile(r"^TVMFFI\w+$")
#: a library's undefined symbols that the TVM runtime provides: tvm_ffi's C API, libtvm_runtime's
#: argument lists, through which a VM main function compiled to native code (exec mode
#: "compiled") calls its kernels, and its parallel launcher (the thread pool Linux libraries carry
#: hands launches to it with NEO_LOCAL_THREAD_POOL=tvm)
_TVM_RUNTIME = re.compile(r"^(TVMFFI\w+|TVMBackendAnyList\w+|TVMBackendParallelLaunch)$")
#: the symbol TVM's loader reads the compiled module from: every library must export it
LIBRARY_BLOB = "__tvm_ffi__library_bin"


def structural_check(library: Path, os: str, arch: str) -> str:
    """Check ``library`` is a shared library for ``os``/``arch`` that needs only the OS's system
    libraries and the TVM runtime; returns a one-line summary, raises InternalError naming what is wrong."""
    if os == "WINDOWS":
        return _pe_check(library, arch)
    return _elf_check(library, os, arch)


def _elf_check(library: Path, os: str, arch: str) -> str:
    header = binutils.run("readelf", "-W", "-h", library)
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
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", binutils.run("readelf", "-W", "-d", library))
    undefined = {s.name for s in binutils.symbols(library) if not s.defined and s.bind != "WEAK"}
    system = SYSTEM_LIBRARIES[os]
    tvm = _check_imports(library, system, needed, undefined)
    reserved = RESERVED_REGISTERS.get((os, arch))
    if reserved:
        _check_reserved(library, *reserved)
    floor = f" (at most {glibc.spell(glibc.FLOOR)})" if system.glibc_floor else ""
    return (
        f"{wanted.describe()} shared library, NEEDED {', '.join(needed) or 'nothing'}; undefined symbols only from "
        f"{system.name}{floor} and the TVM runtime ({', '.join(tvm) or 'none'})"
    )


#: registers an OS reserves, which code for it must not touch: (objdump, register names)
RESERVED_REGISTERS = {("ANDROID", "ARM64"): ("aarch64-linux-gnu-objdump", ("x18", "w18"))}


def _check_reserved(library: Path, objdump: str, registers: tuple[str, ...]) -> None:
    """Disassemble and refuse any instruction that names a reserved register (Android's x18)."""
    pattern = re.compile(rf"\b({'|'.join(registers)})\b")
    used = [line.strip() for line in binutils.run(objdump, "-d", "--no-show-raw-insn", library).splitlines()
            if "\t" in line and pattern.search(line.split("\t", 1)[1])]
    if used:
        raise internal_error(
            f"{library.name} uses register {'/'.join(registers)}, which the OS reserves: {used[0]} "
            f"({len(used)} instructions)"
        )


#: objdump's file format of a PE image for each Arch
_PE_FORMATS = {"X86_64": "pei-x86-64"}


def _pe_check(library: Path, arch: str) -> str:
    """A PE32+ DLL for ``arch`` that exports the module blob and imports only tvm_ffi.dll's
    TVMFFI* functions and Windows system DLLs."""
    dump = binutils.run("objdump", "-p", library)
    fmt = (re.search(r"file format (\S+)", dump) or [None, "unknown"])[1]
    if fmt != _PE_FORMATS.get(arch):
        raise internal_error(f"{library.name} is a {fmt} file, not {_PE_FORMATS.get(arch, arch)}")
    characteristics = int((re.search(r"^Characteristics\s+0x([0-9a-f]+)", dump, re.M) or [None, "0"])[1], 16)
    if not characteristics & 0x2000:  # IMAGE_FILE_DLL
        raise internal_error(f"{library.name} is a PE image but not a DLL")
    exports = set(re.findall(r"^\s+\[\s*\d+\] (\S+)$", dump, re.M))
    if LIBRARY_BLOB not in exports:
        raise internal_error(f"{library.name} does not export {LIBRARY_BLOB}, which TVM's loader reads")
    imports: dict[str, set[str]] = {}
    dll = None
    for line in dump.splitlines():
        if m := re.match(r"\s+DLL Name: (\S+)", line):
            dll = m[1].lower()
            imports[dll] = set()
        elif dll and (m := re.match(r"\s+[0-9a-f]+\s+\d+\s+(\S+)$", line)):
            imports[dll].add(m[1])
    tvm = sorted(imports.pop("tvm_ffi.dll", set()))
    if not all(_TVM_FFI.match(s) for s in tvm):
        raise internal_error(f"{library.name} imports from tvm_ffi.dll more than its C API: {', '.join(tvm)}")
    system = SYSTEM_LIBRARIES["WINDOWS"]
    _check_imports(library, system, [d for d in imports if not d.startswith("api-ms-win-crt-")], set())
    return (
        f"PE32+ {fmt} DLL exporting {LIBRARY_BLOB}; imports {', '.join(['tvm_ffi.dll', *sorted(imports)])}; "
        f"from tvm_ffi.dll only the TVM FFI ({', '.join(tvm) or 'none'})"
    )


def _check_imports(library: Path, system: SystemLibraries, needed, undefined: set[str]) -> list[str]:
    """Raise unless ``needed`` are system libraries and ``undefined`` symbols are the system's or
    the TVM runtime's; returns the TVM runtime symbols."""
    foreign = sorted(set(needed) - system.libraries)
    if foreign:
        raise internal_error(f"{library.name} needs libraries {system.name} do not provide: {', '.join(foreign)}")
    unexpected = sorted(s for s in undefined if not (_TVM_RUNTIME.match(s) or system.symbols.match(s)))
    if unexpected:
        raise internal_error(
            f"{library.name} needs symbols neither {system.name} nor the TVM runtime provides: "
            f"{', '.join(unexpected[:10])}"
        )
    late = glibc.too_new(undefined) if system.glibc_floor else []
    if late:
        raise internal_error(
            f"{library.name} needs glibc functions newer than {glibc.spell(glibc.FLOOR)}, so it would not load where "
            f"glibc is older than they are: {', '.join(late[:10])}"
        )
    return sorted(s for s in undefined if _TVM_RUNTIME.match(s))


def _field(text: str, name: str) -> str:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return "unknown"


def kernel_check(library: Path, kind: str, arch: str = "") -> str:
    """Check the ELF ``library`` embeds a ``kind`` (opencl, cuda) kernel module holding every kernel
    of its function table, as its kind's check (``_KERNEL_CHECKS``) sees it; ``arch`` is the GPU
    architecture of machine-code kernels (CUDA: "sm_72"). Returns a one-line summary, raises
    InternalError otherwise."""
    modules = embedded_modules(library)
    if kind not in modules:
        raise internal_error(
            f"{library.name} holds no {kind} kernels: its embedded modules are {', '.join(modules) or 'none'}"
        )
    try:
        module = DeviceModule.parse(modules[kind])
    except (struct.error, UnicodeDecodeError) as exc:
        raise internal_error(f"{library.name}'s {kind} module cannot be read: {exc}") from None
    if not module.kernels:
        raise internal_error(f"{library.name}'s {kind} module lists no kernels: the table is empty")
    return _KERNEL_CHECKS[kind](f"{library.name}'s {kind}", module, arch)


def _opencl_check(what: str, module: "DeviceModule", arch: str) -> str:
    """OpenCL C source: every kernel defined as __kernel, and clang's front end accepts it."""
    source = module.data.decode()
    defined = set(re.findall(r"__kernel\s+void\s+(\w+)\s*\([^;{]*\)\s*\{", source))
    missing = [k for k in module.kernels if k not in defined]
    if missing:
        raise internal_error(f"{what} source does not define the kernels its table lists: {', '.join(missing[:10])}")
    summary = (
        f"{len(module.kernels)} opencl kernel(s), each defined as __kernel in the embedded source ({len(source)} "
        "characters)"
    )
    errors = opencl_c.compile_errors(source)
    if errors is None:
        return f"{summary}; not compile-checked: libclang is not installed"
    if errors:
        raise internal_error(
            f"{what} source is not valid OpenCL C {opencl_c.STANDARD} ({len(errors)} error(s)): {'; '.join(errors[:3])}"
        )
    return f"{summary}, which clang's front end accepts as OpenCL C {opencl_c.STANDARD}"


#: ELF e_machine of NVIDIA GPU code; a cubin's e_flags carry its sm number in the low byte (EF_CUDA_SM)
EM_CUDA = 190
_CUBIN_SM_MASK = 0xFF


def _cubin_check(what: str, module: "DeviceModule", arch: str) -> str:
    """A cubin: a 64-bit ELF for EM_CUDA, for the architecture asked for, defining every kernel
    as a function symbol (read from its section headers: no CUDA tools needed)."""
    if module.format != "cubin":
        raise internal_error(f"{what} module holds {module.format!r}, not a cubin: its kernels were not compiled")
    data = module.data
    if data[:5] != b"\x7fELF\x02" or struct.unpack_from("<H", data, 18)[0] != EM_CUDA:
        raise internal_error(f"{what} module's data is not a 64-bit CUDA ELF (cubin)")
    sm = struct.unpack_from("<I", data, 48)[0] & _CUBIN_SM_MASK
    if f"sm_{sm}" != arch:
        raise internal_error(f"{what} cubin is for sm_{sm}, not {arch}")
    missing = [k for k in module.kernels if k not in _elf_functions(data)]
    if missing:
        raise internal_error(f"{what} cubin does not define the kernels its table lists: {', '.join(missing[:10])}")
    return (
        f"{len(module.kernels)} cuda kernel(s), each a function of the embedded cubin (CUDA ELF for sm_{sm}, "
        f"{len(data)} bytes)"
    )


def _elf_functions(data: bytes) -> set[str]:
    """The defined function symbols of a little-endian ELF64 file's symbol table."""
    shoff, = struct.unpack_from("<Q", data, 40)
    size, count = struct.unpack_from("<HH", data, 58)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * size) for i in range(count)]
    names = set()
    for _, kind, _, _, offset, length, link, _, _, entsize in sections:
        if kind != 2:  # SHT_SYMTAB
            continue
        strtab = sections[link][4]
        for at in range(offset, offset + length, entsize):
            name, info, _, shndx = struct.unpack_from("<IBBH", data, at)
            if info & 0xF == 2 and shndx:  # STT_FUNC, defined
                names.add(data[strtab + name: data.index(b"\0", strtab + name)].decode())
    return names


_KERNEL_CHECKS = {"opencl": _opencl_check, "cuda": _cubin_check}


def embedded_modules(library: Path) -> dict[str, bytes]:
    """The modules serialized in the library's ``__tvm_ffi__library_bin`` (kind -> bytes), as
    tvm-ffi's ProcessLibraryBin reads them; ``_lib`` (the library's own code) has no bytes."""
    try:
        return dict(blob_modules(_symbol_bytes(library, LIBRARY_BLOB))[1])
    except (struct.error, UnicodeDecodeError) as exc:
        raise internal_error(f"{library.name}'s {LIBRARY_BLOB} cannot be read: {exc}") from None


def blob_modules(blob: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A module blob's import tree (CSR, kept as bytes) and its modules (kind, bytes) in order:
    <size> <indptr> <child indices> then <kind> <bytes> per module (``_lib`` has no bytes)."""
    stream = _Stream(blob)
    stream.u64()  # the blob's size
    count = len(stream.u64s()) - 1  # CSR import tree: one indptr entry per module, plus one
    stream.u64s()
    tree = blob[8:stream.position]
    modules = []
    for _ in range(count):
        kind = stream.text()
        modules.append((kind, b"" if kind == "_lib" else stream.bytes()))
    return tree, modules


def pack_blob(tree: bytes, modules: list[tuple[str, bytes]]) -> bytes:
    """The blob ``blob_modules`` reads back: the inverse, with its size in front."""
    body = tree + b"".join(_sized(kind.encode()) + (b"" if kind == "_lib" else _sized(data)) for kind, data in modules)
    return struct.pack("<Q", len(body)) + body


@dataclass(frozen=True)
class DeviceModule:
    """A device module as TVM serializes it: <format> <function table> <data>; the data is the
    kernels' source (formats "cl", "cuda") or machine code ("cubin")."""

    format: str
    kernels: tuple[str, ...]
    #: the serialized function table, kept as it is
    table: bytes
    data: bytes

    @classmethod
    def parse(cls, payload: bytes) -> "DeviceModule":
        """A table entry is <name> <FunctionInfo: name, argument dtypes (4 bytes each), launch
        parameter tags, argument tags (4 bytes each)>."""
        stream = _Stream(payload)
        fmt = stream.text()
        start = stream.position
        kernels = []
        for _ in range(stream.u64()):
            kernels.append(stream.text())
            stream.text()
            stream.skip(4 * stream.u64())
            for _ in range(stream.u64()):
                stream.text()
            stream.skip(4 * stream.u64())
        table = payload[start:stream.position]
        return cls(fmt, tuple(kernels), table, stream.bytes())

    def to_bytes(self) -> bytes:
        return _sized(self.format.encode()) + self.table + _sized(self.data)


def _sized(data: bytes) -> bytes:
    """A field of tvm-ffi's stream: its size (u64), then the bytes."""
    return struct.pack("<Q", len(data)) + data


class _Stream:
    """tvm-ffi's little-endian binary stream: u64 sizes before strings, bytes and vectors."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def u64(self) -> int:
        (value,) = struct.unpack_from("<Q", self._data, self._pos)
        self._pos += 8
        return value

    def u64s(self) -> list[int]:
        return [self.u64() for _ in range(self.u64())]

    def bytes(self) -> bytes:
        size = self.u64()
        if self._pos + size > len(self._data):
            raise struct.error(f"a field of {size} bytes runs past the end ({len(self._data)} bytes)")
        value = self._data[self._pos: self._pos + size]
        self._pos += size
        return value

    def text(self) -> str:
        return self.bytes().decode()

    def skip(self, size: int) -> None:
        self._pos += size

    @property
    def position(self) -> int:
        return self._pos


def _symbol_bytes(library: Path, symbol: str) -> bytes:
    """The contents of a defined dynamic symbol, located through its section (readelf)."""
    entry = next((s for s in binutils.symbols(library) if s.name == symbol and s.defined), None)
    if entry is None:
        raise internal_error(f"{library.name} does not define {symbol}, which TVM's loader reads")
    value, size, index = entry.value, entry.size, entry.section
    headers = binutils.run("readelf", "-W", "-S", library)
    sections = re.findall(r"\[\s*(\d+)\]\s+\S+\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)", headers)
    located = [(int(a, 16), int(o, 16)) for i, a, o in sections if i == index]
    if not located:
        raise internal_error(f"{library.name} defines {symbol} outside its sections (section {index})")
    address, offset = located[0]
    with open(library, "rb") as f:
        f.seek(value - address + offset)
        return f.read(size)
