"""TargetSpec: everything the backend and the runtime need to know about where a model runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from neo_local.targets.options import FLOAT32, TuningOptions


@dataclass(frozen=True)
class TargetSpec:
    """A resolved target: the device or platform, its TVM target and how to link for it.

    ``tvm_target`` is the dict given to ``tvm.target.Target`` for the CPU code; a GPU target's
    kernels are built with ``gpu_target`` (e.g. OpenCL for Mali) and the CPU target as its host
    (``build_target``). ``cpu_features`` are the
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
    #: the device half of a GPU target ({"kind": "opencl", "device": "mali"}); None: CPU only
    gpu_target: Mapping[str, Any] | None = None
    #: the GPU in words (e.g. "Mali-T860"), for messages
    gpu: str = ""
    #: what compiled.meta's Target.Gpu records besides the name and TVM target (CUDA: the
    #: architecture, the compiler, the CUDA/TensorRT versions the request named)
    gpu_details: Mapping[str, str] = field(default_factory=dict)
    #: CompilerOptions tuning: the CPU schedules' tuning budget and records database (None: defaults)
    tuning: TuningOptions | None = None
    #: CompilerOptions precision: "float32", or "bfloat16" (convs on AVX512_BF16; ``cpu_schedule.bf16_dot``)
    precision: str = FLOAT32

    @property
    def build_target(self) -> dict[str, Any]:
        """What the backend compiles for: the CPU target, or the GPU target with the CPU as host."""
        if self.gpu_target is None:
            return dict(self.tvm_target)
        return {**self.gpu_target, "host": dict(self.tvm_target)}
