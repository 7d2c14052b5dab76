"""GPU targets (Mali and Intel graphics through OpenCL, NVIDIA through CUDA) end to end: kernels
generated with dlight's GPU rules (CUDA: compiled to a cubin by NVRTC), host code cross-linked for
the device's CPU, checked structurally (nothing here runs OpenCL or CUDA), and refused by the
runtime with the reason."""

import re
import shutil
from pathlib import Path

import pytest

from example_archives import built
from neo_local.runtime import ArtifactError, DLRModel
from test_pipeline_arm import _compile, _readelf, _unpack


def _gpu_artifact(tmp_path: Path, **output) -> tuple[Path, dict]:
    artifact = _compile(built("two_input_net", "onnx"), tmp_path / "out", **output)
    return artifact, _unpack(artifact, tmp_path / "a")


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None, reason="aarch64-linux-gnu-gcc is not installed")
def test_rk3399_holds_opencl_kernels_for_mali_and_aarch64_host_code(tmp_path):
    artifact, meta = _gpu_artifact(tmp_path, TargetDevice="rk3399")
    assert meta["Requirements"] == {"TargetDevice": "rk3399", "TargetDeviceType": "gpu"}
    assert meta["Target"]["Accelerator"] == "MALI"
    assert meta["Target"]["Gpu"] == {"Name": "Mali-T860", "TVMTarget": {"kind": "opencl", "device": "mali"}}
    assert meta["Target"]["TVMTarget"] == {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"}
    assert "Machine:                           AArch64" in _readelf("-h", tmp_path / "a" / "compiled.so")
    assert "the OpenCL kernels run through the device's OpenCL driver" in meta["Target"]["Notes"][-1]
    verification = meta["Verification"]
    assert verification["status"] == "structural"
    assert verification["detail"].startswith(
        "not run: its kernels need the Mali-T860 through OpenCL, which this host does not have (its TVM runtime has "
        "no OpenCL support). Structural check passed: ELF64 AArch64 shared library, NEEDED "
    )
    assert "; 6 opencl kernel(s), each defined as __kernel in the embedded source (" in verification["detail"]
    with pytest.raises(ArtifactError, match="^artifact was compiled for a gpu device, not cpu: its kernels run on the "
                                            "Mali-T860, open it with dev_type='gpu' on that device$"):
        DLRModel(artifact)
    with pytest.raises(ArtifactError, match=r"^artifact was compiled for rk3399: its kernels run on the Mali-T860 "
                                            r"through opencl, and this machine's TVM runtime has no opencl support"):
        DLRModel(artifact, dev_type="gpu")


@pytest.mark.skipif(shutil.which("aarch64-linux-gnu-gcc") is None, reason="aarch64-linux-gnu-gcc is not installed")
def test_platform_arm64_mali_spec_example(tmp_path):
    artifact, meta = _gpu_artifact(tmp_path, TargetPlatform={"Os": "LINUX", "Arch": "ARM64", "Accelerator": "MALI"})
    assert artifact.name == "two_input_net-LINUX_ARM64_MALI.tar.gz"
    assert meta["Requirements"]["TargetDeviceType"] == "gpu"
    assert meta["Target"]["Gpu"] == {"Name": "Mali GPU", "TVMTarget": {"kind": "opencl", "device": "mali"}}
    assert meta["Target"]["TVMTarget"]["mcpu"] == "generic"
    assert meta["Verification"]["status"] == "structural"


def test_deeplens_is_refused_by_a_runtime_without_opencl_though_its_cpu_is_this_ones(tmp_path):
    artifact, meta = _gpu_artifact(tmp_path, TargetDevice="deeplens")
    assert meta["Target"]["Gpu"]["TVMTarget"] == {"kind": "opencl", "device": "intel_graphics"}
    # an x86-64 host: the check must not run the library, whose kernels need the GPU
    assert meta["Verification"]["status"] == "structural"
    assert "Structural check passed: ELF64 Advanced Micro Devices X86-64 shared library" in (
        meta["Verification"]["detail"]
    )
    refusal = (r"its kernels run on the Intel HD Graphics 505 through opencl, and this machine's TVM runtime has no "
               r"opencl support .* \(USE_OPENCL=ON\)$")
    for dev_type in ("gpu", "opencl"):  # DLR's two names for an OpenCL device
        with pytest.raises(ArtifactError, match=refusal):
            DLRModel(tmp_path / "a", dev_type=dev_type)


_NEEDS_AARCH64_GCC = pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-gcc") is None, reason="aarch64-linux-gnu-gcc is not installed"
)


@_NEEDS_AARCH64_GCC
def test_jetson_xavier_holds_a_cubin_for_sm_72_and_carmel_host_code(tmp_path):
    artifact, meta = _gpu_artifact(tmp_path, TargetDevice="jetson_xavier")
    assert meta["Requirements"] == {"TargetDevice": "jetson_xavier", "TargetDeviceType": "gpu"}
    assert meta["Target"]["Accelerator"] == "NVIDIA"
    assert meta["Target"]["Gpu"] == {
        "Name": "Jetson AGX Xavier Volta GPU", "TVMTarget": {"kind": "cuda", "arch": "sm_72"},
        "Architecture": "sm_72", "Compiler": "NVRTC 12.9",
    }
    assert meta["Target"]["TVMTarget"] == {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "carmel"}
    assert "Machine:                           AArch64" in _readelf("-h", tmp_path / "a" / "compiled.so")
    assert "TensorRT is not used" in meta["Target"]["Notes"][-1]
    detail = meta["Verification"]["detail"]
    assert meta["Verification"]["status"] == "structural"
    assert detail.startswith(
        "not run: its kernels need the Jetson AGX Xavier Volta GPU through CUDA, which this host does not have (its "
        "TVM runtime has no CUDA support). Structural check passed: ELF64 AArch64 shared library, NEEDED "
    )
    assert re.search(r"; \d+ cuda kernel\(s\), each a function of the embedded cubin \(CUDA ELF for sm_72, \d+ "
                     r"bytes\)$", detail)
    with pytest.raises(ArtifactError, match=r"^artifact was compiled for jetson_xavier: its kernels run on the Jetson "
                                            r"AGX Xavier Volta GPU through cuda, and this machine's TVM runtime has no "
                                            r"cuda support \(tvm.runtime.enabled\('cuda'\) is False; CUDA needs an "
                                            r"NVIDIA GPU and its driver \(libcuda.so.1\)"):
        DLRModel(artifact, dev_type="gpu")


@_NEEDS_AARCH64_GCC
def test_platform_arm64_nvidia_spec_example_jetson_tx2(tmp_path):
    options = "{'gpu-code': 'sm_62', 'trt-ver': '6.0.1', 'cuda-ver': '10.0'}"
    artifact, meta = _gpu_artifact(
        tmp_path, TargetPlatform={"Os": "LINUX", "Arch": "ARM64", "Accelerator": "NVIDIA"}, CompilerOptions=options
    )
    assert artifact.name == "two_input_net-LINUX_ARM64_NVIDIA.tar.gz"
    assert meta["Target"]["Gpu"] == {
        "Name": "NVIDIA GPU", "TVMTarget": {"kind": "cuda", "arch": "sm_62"}, "Architecture": "sm_62",
        "Compiler": "NVRTC 12.9", "CudaVersion": "10.0", "TensorRTVersion": "6.0.1",
    }
    assert "(CUDA ELF for sm_62, " in meta["Verification"]["detail"]


def test_ml_g4dn_is_refused_by_a_runtime_without_cuda_though_its_cpu_is_x86_64(tmp_path):
    artifact, meta = _gpu_artifact(tmp_path, TargetDevice="ml_g4dn")
    assert meta["Target"]["Gpu"]["TVMTarget"] == {"kind": "cuda", "arch": "sm_75"}
    assert meta["Verification"]["status"] == "structural"
    assert "(CUDA ELF for sm_75, " in meta["Verification"]["detail"]
    with pytest.raises(ArtifactError, match=r"through cuda, and this machine's TVM runtime has no cuda support .* "
                                            r"\(USE_CUDA=ON\)$"):
        DLRModel(artifact, dev_type="gpu")
