"""GPU code generators: which TVM target kind and device key build kernels for an API Accelerator.

A ``GpuCode`` row pairs a TargetPlatform Accelerator (MALI, INTEL_GRAPHICS) with the TVM target
that writes its kernels and the CPU platforms (Os, Arch) whose host code launches them. Device
rows (rk3399, deeplens, ...) name their accelerator; TargetPlatform requests look the pair up
here, so every supported combination is a line of data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GpuCode:
    """How neo-local generates kernels for a family of GPUs."""

    #: the API's TargetPlatform Accelerator value
    accelerator: str
    #: the GPU family in words, for messages and the matrix
    family: str
    #: TVM's device key (``tvm.target.Target`` attribute ``device``): selects TVM's rules for the GPU
    device: str
    #: (Os, Arch) of the CPU platforms that host these GPUs
    platforms: tuple[tuple[str, str], ...]
    #: TVM target kind; also the kind of the kernel module embedded in the library
    kind: str = "opencl"
    #: the API name of the programming interface, for messages
    api: str = "OpenCL"

    def tvm_target(self) -> dict[str, Any]:
        """The device half of the TVM target; the host CPU's llvm target goes under ``host``."""
        return {"kind": self.kind, "device": self.device}

    def describe(self) -> str:
        return f"{self.api} ({self.family}) kernels"

    def note(self) -> str:
        """What every artifact with these kernels must say (compiled.meta Target.Notes, job log)."""
        return (
            f"the {self.api} kernels run through the device's {self.api} driver and a TVM runtime built with "
            f"{self.api} support (the apache-tvm wheels have none); checked structurally here, not run"
        )

    def check(self) -> str:
        """How its artifacts are checked on this project's machines, for the matrix."""
        return (
            f"structural: host ELF check, every {self.api} kernel's source in the library and compiled by clang's "
            f"{self.api} C 1.2 front end; not run (no {self.api} device or {self.api}-enabled TVM runtime on this host)"
        )


GPU_CODES: dict[str, GpuCode] = {
    g.accelerator: g
    for g in (
        # Mali Midgard/Bifrost GPUs of Rockchip boards: aarch64 (RK3399) and armv7 (RK3288) hosts
        GpuCode("MALI", "Mali", "mali", (("LINUX", "ARM64"), ("LINUX", "ARM_EABIHF"))),
        # Intel Gen9 integrated graphics beside an x86-64 CPU (AWS DeepLens' Atom)
        GpuCode("INTEL_GRAPHICS", "Intel graphics", "intel_graphics", (("LINUX", "X86_64"),)),
    )
}

