"""GPU code generators: which TVM target kind and device key build kernels for an API Accelerator.

A ``GpuCode`` row pairs a TargetPlatform Accelerator (MALI, INTEL_GRAPHICS, NVIDIA) with the TVM
target that writes its kernels and the CPU platforms (Os, Arch) whose host code launches them.
Device rows (rk3399, jetson_xavier, ...) name their accelerator; TargetPlatform requests look the
pair up here, so every supported combination is a line of data. CUDA kernels are machine code for
one architecture (sm_XX, CompilerOptions gpu-code), compiled by NVRTC (``backends.nvrtc``).
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
    #: what the library holds for the kernels and how it is checked here, for the matrix
    checked: str = "every OpenCL kernel's source in the library and compiled by clang's OpenCL C 1.2 front end"
    #: the TVM runtime the device needs to launch the kernels, for the notes
    runtime: str = "a TVM runtime built with OpenCL support (the apache-tvm wheels have none)"
    #: whether the kernels are built for one architecture (CompilerOptions gpu-code, sm_XX)
    per_architecture: bool = False

    def tvm_target(self, arch: str = "") -> dict[str, Any]:
        """The device half of the TVM target; the host CPU's llvm target goes under ``host``."""
        return {"kind": self.kind, **({"device": self.device} if self.device else {}), **({"arch": arch} if arch else {})}

    def describe(self) -> str:
        return f"{self.api} ({self.family}) kernels"

    def note(self) -> str:
        """What every artifact with these kernels must say (compiled.meta Target.Notes, job log)."""
        return (
            f"the {self.api} kernels run through the device's {self.api} driver and {self.runtime}; checked "
            "structurally here, not run"
        )

    def check(self) -> str:
        """How its artifacts are checked on this project's machines, for the matrix."""
        return (
            f"structural: host ELF check, {self.checked}; not run (no {self.api} device or {self.api}-enabled TVM "
            "runtime on this host)"
        )


GPU_CODES: dict[str, GpuCode] = {
    g.accelerator: g
    for g in (
        # Mali Midgard/Bifrost GPUs of Rockchip boards: aarch64 (RK3399) and armv7 (RK3288) hosts
        GpuCode("MALI", "Mali", "mali", (("LINUX", "ARM64"), ("LINUX", "ARM_EABIHF"))),
        # Intel Gen9 integrated graphics beside an x86-64 CPU (AWS DeepLens' Atom)
        GpuCode("INTEL_GRAPHICS", "Intel graphics", "intel_graphics", (("LINUX", "X86_64"),)),
        # NVIDIA GPUs: EC2 instances (x86-64 hosts) and Jetson modules (aarch64 hosts); cubins from NVRTC
        GpuCode(
            "NVIDIA", "NVIDIA", "", (("LINUX", "X86_64"), ("LINUX", "ARM64")), kind="cuda", api="CUDA",
            checked="a cubin (CUDA ELF) for the GPU's sm_XX in the library, made by NVRTC, whose symbols include every "
                    "kernel of the library's table",
            runtime="a TVM runtime with CUDA support (apache-tvm's libtvm_runtime_cuda.so or a source build with "
                    "USE_CUDA=ON)",
            per_architecture=True,
        ),
    )
}

