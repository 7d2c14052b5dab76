"""The device table: every TargetDevice of the API, as data.

A ``Device`` row says which OS, architecture and CPU the device has; `registry.resolve_target`
turns a row (or a TargetPlatform) into a TargetSpec. Every other TargetDevice of the API's enum
has a ``Refusal``: why neo-local cannot build for it here, and what to use instead. Nothing is
compiled for a device's CPU behind the user's back: where a row leaves an accelerator unused,
its ``notes`` say so (job log, description and compiled.meta). A row whose ``accelerator`` has
a code generator (``targets.gpus``: Mali, Intel graphics) gets kernels for its ``gpu``, launched
by host code for its CPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Device:
    name: str
    os: str
    arch: str
    mcpu: str
    mattr: tuple[str, ...] = ()
    accelerator: str | None = None
    description: str = ""
    #: what a user must know about the artifact (e.g. an accelerator it does not use); goes to
    #: compiled.meta's Target.Notes
    notes: tuple[str, ...] = ()
    #: the device's accelerator that the artifact leaves unused (CPU-only row), for the matrix
    unused: str = ""
    #: the GPU whose kernels the artifact holds (``accelerator`` names its code in targets.gpus)
    gpu: str = ""
    #: the GPU's architecture where kernels are machine code for one (CUDA: "sm_72")
    gpu_code: str = ""


@dataclass(frozen=True)
class Converter:
    """A TargetDevice whose artifact a model converter makes instead of TVM (Core ML: coremltools)."""

    name: str
    #: the backend (neo_local.backends) that reads and converts the framework's own model
    backend: str
    #: where the artifact runs, for compiled.meta and the matrix
    os: str
    description: str
    #: how the artifact is made and checked here, for the README matrix
    check: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CpuAlternative:
    """The device's own CPU as a TargetPlatform: what a refused device's user can compile for."""

    os: str
    arch: str
    mcpu: str
    mattr: tuple[str, ...] = ()

    def options(self) -> str:
        """The CompilerOptions JSON string that selects this CPU."""
        return json.dumps({"mcpu": self.mcpu, **({"mattr": list(self.mattr)} if self.mattr else {})})

    def describe(self) -> str:
        return f"TargetPlatform Os={self.os}, Arch={self.arch} with CompilerOptions {self.options()}"


@dataclass(frozen=True)
class Refusal:
    """A TargetDevice neo-local does not build for: the reason, and what to do instead."""

    name: str
    #: a few words for the README matrix
    summary: str
    #: what cannot be built and why, e.g. "its Mali-T860 GPU needs OpenCL (Mali) code, ..."
    reason: str
    #: other tools that do build for the device (vendor SDKs)
    instead: str = ""
    #: the device's CPU, when a CPU-only artifact is a useful alternative, and how to name it
    cpu: str = ""
    alternative: CpuAlternative | None = None

    def message(self) -> str:
        parts = [self.reason, self.instead]
        if self.alternative is not None:
            parts.append(f"To run the model on {self.cpu} instead, use {self.alternative.describe()}")
        return ". ".join(p for p in parts if p)


DEVICES: dict[str, Device] = {
    d.name: d
    for d in (
        Device("ml_c4", "LINUX", "X86_64", "core-avx2", description="EC2 C4 (Haswell, AVX2)"),
        Device("ml_m4", "LINUX", "X86_64", "core-avx2", description="EC2 M4 (Broadwell/Haswell, AVX2)"),
        Device("ml_c5", "LINUX", "X86_64", "skylake-avx512", description="EC2 C5 (Skylake-SP, AVX-512)"),
        Device("ml_m5", "LINUX", "X86_64", "skylake-avx512", description="EC2 M5 (Skylake-SP, AVX-512)"),
        Device("lambda", "LINUX", "X86_64", "haswell", description="AWS Lambda x86_64 (AVX2)"),
        Device("sbe_c", "LINUX", "X86_64", "core-avx2", description="Snowball Edge compute (AVX2)"),
        Device("ml_c6g", "LINUX", "ARM64", "neoverse-n1", ("+neon",), description="EC2 C6g (Graviton2, Neoverse N1)"),
        Device("ml_m6g", "LINUX", "ARM64", "neoverse-n1", ("+neon",), description="EC2 M6g (Graviton2, Neoverse N1)"),
        Device(
            "rasp4b", "LINUX", "ARM64", "cortex-a72", description="Raspberry Pi 4 B (BCM2711, Cortex-A72)",
            notes=("Raspberry Pi 4 B with a 64-bit (aarch64) OS, as Neo's rasp4b; a 32-bit Raspberry Pi OS "
                   "cannot load it",),
        ),
        Device(
            "rasp3b", "LINUX", "ARM_EABIHF", "cortex-a53", ("+neon",),
            description="Raspberry Pi 3 B (BCM2837, Cortex-A53) with a 32-bit OS",
            notes=("Raspberry Pi 3 B with a 32-bit (armv7 hard-float) Raspberry Pi OS, as Neo's rasp3b",),
        ),
        Device(
            "sitara_am57x", "LINUX", "ARM_EABIHF", "cortex-a15", ("+neon",),
            description="TI Sitara AM57x (Cortex-A15, C66x DSP, EVE)",
            notes=("CPU only: runs on the Cortex-A15 cores; the C66x DSP and EVE accelerators need TI's tools "
                   "(TIDL) and are not used",),
            unused="C66x DSP / EVE",
        ),
        Device(
            "imx8qm", "LINUX", "ARM64", "cortex-a53", description="NXP i.MX 8QuadMax (2x Cortex-A72 + 4x Cortex-A53)",
            notes=("tuned for the Cortex-A53 cores; the code runs on the A72 cores as well",),
        ),
        Device(
            "imx8mplus", "LINUX", "ARM64", "cortex-a53", description="NXP i.MX 8M Plus (4x Cortex-A53, NPU)",
            notes=("CPU only: runs on the Cortex-A53 cores; the i.MX 8M Plus NPU needs NXP's TIM-VX runtime "
                   "(libtim-vx.so) and vendor tools and is not used",),
            unused="NPU",
        ),
        Device(
            "jacinto_tda4vm", "LINUX", "ARM64", "cortex-a72", description="TI Jacinto 7 TDA4VM (Cortex-A72)",
            notes=("CPU only: runs on the Cortex-A72 cores; the C7x DSP / MMA accelerator needs TI's TIDL "
                   "tools and is not used",),
            unused="C7x DSP / MMA",
        ),
        *(
            Device(
                name, "ANDROID", "ARM64", "cortex-a75", description=f"Qualcomm {soc} (Kryo 300: Cortex-A75/A55 class)",
                notes=(f"CPU only: tuned for the {soc}'s Kryo 300 Gold (Cortex-A75 class) cores, runs on its Silver "
                       "cores too; the Adreno GPU (Neo's table says Mali) and the Hexagon DSP need Qualcomm's tools "
                       "and are not used",),
                unused="Adreno GPU / Hexagon DSP",
            )
            for name, soc in (("qcs605", "QCS605"), ("qcs603", "QCS603"))
        ),
        *(
            Device(
                name, "LINUX", "ARM64", "cortex-a72", accelerator="MALI", gpu="Mali-T860",
                description=f"{board} (Rockchip RK3399: 2x Cortex-A72 + 4x Cortex-A53, Mali-T860 MP4)",
                notes=("OpenCL kernels for the RK3399's Mali-T860 GPU, launched by host code for its Cortex-A72 "
                       "cores (runs on the A53 cores too)",),
            )
            for name, board in (("rk3399", "Rockchip RK3399 board"), ("aisage", "Acer aiSage"))
        ),
        Device(
            "rk3288", "LINUX", "ARM_EABIHF", "cortex-a17", ("+neon",), accelerator="MALI", gpu="Mali-T764",
            description="Rockchip RK3288 (4x Cortex-A17, Mali-T764) with a 32-bit OS",
            notes=("OpenCL kernels for the RK3288's Mali-T764 GPU, launched by armv7 hard-float host code for its "
                   "Cortex-A17 cores",),
        ),
        Device(
            "deeplens", "LINUX", "X86_64", "goldmont", accelerator="INTEL_GRAPHICS", gpu="Intel HD Graphics 505",
            description="AWS DeepLens (Intel Atom E3930 Goldmont, HD Graphics 505 Gen9)",
            notes=("OpenCL kernels for the DeepLens' Intel HD Graphics 505 (Gen9), launched by host code for its "
                   "Atom (Goldmont) CPU. AWS DeepLens itself reached its end of life in January 2024",),
        ),
        *(
            Device(
                name, "LINUX", "X86_64", mcpu, accelerator="NVIDIA", gpu=gpu, gpu_code=sm,
                description=f"EC2 {instance} ({gpu}, {cpu})",
                notes=(f"CUDA kernels for the instance's {gpu} ({sm}), launched by host code for its {cpu} CPU",),
            )
            for name, instance, gpu, sm, cpu, mcpu in (
                ("ml_p3", "P3", "NVIDIA Tesla V100", "sm_70", "Intel Xeon (Broadwell)", "broadwell"),
                ("ml_g4dn", "G4dn", "NVIDIA T4", "sm_75", "Intel Xeon (Cascade Lake)", "cascadelake"),
            )
        ),
        *(
            Device(
                name, "LINUX", "ARM64", mcpu, accelerator="NVIDIA", gpu=f"{module} {gpu} GPU", gpu_code=sm,
                description=f"NVIDIA {module} ({gpu} GPU, {cpu})",
                notes=(f"CUDA kernels for the {module}'s {gpu} GPU ({sm}), launched by host code for its {cpu} cores",),
            )
            for name, module, gpu, sm, cpu, mcpu in (
                ("jetson_tx1", "Jetson TX1", "Maxwell", "sm_53", "Cortex-A57", "cortex-a57"),
                ("jetson_nano", "Jetson Nano", "Maxwell", "sm_53", "Cortex-A57", "cortex-a57"),
                # the TX2's Denver 2 cores run the same aarch64 code
                ("jetson_tx2", "Jetson TX2", "Pascal", "sm_62", "Cortex-A57 (and Denver 2)", "cortex-a57"),
                ("jetson_xavier", "Jetson AGX Xavier", "Volta", "sm_72", "Carmel", "carmel"),
            )
        ),
        Device("x86_win64", "WINDOWS", "X86_64", "x86-64", description="64-bit Windows on any x86-64 CPU"),
        *(
            Device(
                name, "LINUX", "ARM64", "cortex-a53", description=f"Ambarella {chip} (4x Cortex-A53, CVflow)",
                notes=(f"CPU only: runs on the {chip}'s Cortex-A53 cores under its aarch64 Linux (glibc); the "
                       "CVflow vision processor needs Ambarella's CVflow tools and is not used",),
                unused="CVflow",
            )
            for name, chip in (("amba_cv2", "CV2"), ("amba_cv22", "CV22"), ("amba_cv25", "CV25"))
        ),
    )
}


def _neuron(name: str, chip: str, compiler: str, sdk: str, cpu: str, alternative: CpuAlternative) -> Refusal:
    """An AWS Neuron device: only AWS's Neuron compiler produces code for its NeuronCores."""
    return Refusal(
        name,
        f"needs the AWS Neuron compiler ({compiler})",
        f"its {chip} NeuronCores run only code from the AWS Neuron compiler ({compiler}), which is AWS's own "
        "and not part of neo-local",
        f"Compile the model with the Neuron SDK ({sdk}) on a machine where it is installed",
        cpu,
        alternative,
    )



#: TargetDevice values neo-local does not build for, with the reason and the alternative
REFUSED: dict[str, Refusal] = {
    r.name: r
    for r in (
        Refusal(
            "ml_p2", "Kepler (sm_37) is beyond CUDA 12's NVRTC",
            "its NVIDIA Tesla K80 GPU is a Kepler GPU (sm_37), and the NVRTC neo-local compiles CUDA kernels with "
            "(CUDA 12.9, the nvidia-cuda-nvrtc-cu12 wheel) builds for sm_50 and newer only: CUDA 12 dropped Kepler",
            "Compile for a GPU instance of a newer generation (TargetDevice ml_p3 or ml_g4dn)",
            "the instance's Intel Xeon (Broadwell) CPU",
            CpuAlternative("LINUX", "X86_64", "broadwell"),
        ),
        _neuron(
            "ml_inf1", "AWS Inferentia", "neuron-cc", "torch-neuron or tensorflow-neuron, which call neuron-cc",
            "the instance's Intel Xeon (Cascade Lake) CPU", CpuAlternative("LINUX", "X86_64", "cascadelake"),
        ),
        _neuron(
            "ml_inf2", "AWS Inferentia2", "neuronx-cc", "torch-neuronx or tensorflow-neuronx, which call neuronx-cc",
            "the instance's AMD EPYC (Milan) CPU", CpuAlternative("LINUX", "X86_64", "znver3"),
        ),
        _neuron(
            "ml_trn1", "AWS Trainium", "neuronx-cc", "torch-neuronx, which calls neuronx-cc",
            "the instance's Intel Xeon (Ice Lake) CPU", CpuAlternative("LINUX", "X86_64", "icelake-server"),
        ),
        Refusal(
            "ml_eia2", "Elastic Inference is retired",
            "Amazon Elastic Inference was retired by AWS (no accelerators since April 2024), so there is no "
            "device to compile for",
            "Compile for the instance that runs the model instead: its CPU (e.g. TargetDevice ml_c5 or ml_m5) "
            "or a GPU instance",
        ),
        Refusal(
            "x86_win32", "no 32-bit Windows TVM runtime exists",
            "no 32-bit Windows build of the TVM runtime (apache-tvm-ffi / tvm_ffi.dll) exists in any version, so a "
            "32-bit DLL would have no runtime to load it and nothing to link against",
            "For 64-bit Windows use TargetDevice x86_win64",
        ),
    )
}


#: TargetDevice values whose artifact a converter other than TVM makes
CONVERTED: dict[str, Converter] = {
    c.name: c
    for c in (
        Converter(
            "coreml", "coreml", "MACOS_IOS",
            "Apple Core ML: an ML Program (.mlpackage) for iOS 15 / macOS 12 or later",
            "Core ML ML Program (.mlpackage) made by coremltools from PYTORCH (TorchScript), KERAS and TENSORFLOW "
            "(SavedModel); not run (Core ML predicts only on Apple's systems): the saved spec is checked (inputs, "
            "flexible shapes, image bias/scale, outputs, class labels)",
            notes=("Core ML model made by coremltools for iOS 15 / macOS 12 or later; it runs with Core ML on Apple's "
                   "systems, not with neo-local's runtime, so prediction is not run here: the saved model's spec is "
                   "checked against the request instead",),
        ),
    )
}
