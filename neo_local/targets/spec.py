"""TargetSpec: everything the backend and the runtime need to know about where a model runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class TargetSpec:
    """A resolved target: the device or platform, its TVM target and how to link for it.

    ``tvm_target`` is the dict given to ``tvm.target.Target``; ``cpu_features`` are the
    instruction-set extensions the generated code may use, in /proc/cpuinfo spelling, so a
    runtime can refuse a library that would die with SIGILL on its CPU.
    """

    name: str
    os: str
    arch: str
    tvm_target: Mapping[str, Any]
    device_type: str = "cpu"
    #: the backend that builds Relax models for this target (see neo_local.backends)
    backend: str = "tvm"
    accelerator: str | None = None
    cpu_features: tuple[str, ...] = ()
    #: C compiler driver used to link the shared library; None links with the host's cc
    linker: str | None = None
    #: linker options before the objects, and files it takes after them (import libraries), absolute paths
    link_options: tuple[str, ...] = ()
    link_files: tuple[str, ...] = ()
    #: the library's file name inside the artifact
    library: str = "compiled.so"
    notes: tuple[str, ...] = field(default_factory=tuple)
