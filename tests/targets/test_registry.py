"""The device table and TargetPlatform rules: every row builds, every enum value has an outcome."""

from importlib import metadata

import botocore.session
import pytest

from neo_local.api.errors import JobFailure
from neo_local.api.requests import OutputConfig, TargetPlatform
from neo_local.targets.devices import CONVERTED, DEVICES, REFUSED
from neo_local.targets.gpus import GPU_CODES
from neo_local.targets.options import CompilerOptions
from neo_local.targets.registry import BF16_CPUS, TOOLCHAIN_CACHE_ENV, resolve_target


def _enum(shape: str) -> list[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return list(model.shape_for(shape).enum)


def _resolve(device=None, platform=None, options=None):
    return resolve_target(OutputConfig("/tmp/out", device, platform), CompilerOptions.parse(options))


def _reason(*args, **kwargs) -> str:
    """The FailureReason that resolving the target ends the job with."""
    with pytest.raises(JobFailure) as err:
        _resolve(*args, **kwargs)
    return err.value.reason


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_every_device_row_builds_a_tvm_target(name):
    import tvm

    spec = _resolve(name)
    target = tvm.target.Target(dict(spec.tvm_target))
    assert str(target.attrs["mcpu"]) == DEVICES[name].mcpu
    assert spec.name == name and spec.device_type == ("gpu" if DEVICES[name].accelerator else "cpu")
    arch = DEVICES[name].arch
    if DEVICES[name].os == "WINDOWS":
        assert spec.tvm_target["mtriple"] == "x86_64-pc-windows-gnu" and spec.library == "compiled.dll"
        assert spec.link_files[0].endswith("/tvm_ffi.lib")
    elif DEVICES[name].os == "ANDROID":
        assert spec.tvm_target["mtriple"] == "aarch64-linux-android21"
        assert spec.tvm_target["mattr"][0] == "+reserve-x18"
        assert [p.rsplit("/", 1)[1] for p in spec.link_files] == ["libc.so", "libm.so", "libdl.so", "libtvm_ffi.so"]
    elif arch == "X86_64":
        # every x86 row today is at least AVX2 but the DeepLens' Atom (SSE4.2)
        assert ("sse4_2" if name == "deeplens" else "avx2") in spec.cpu_features
        assert spec.linker is None
    elif arch == "ARM64":
        assert spec.tvm_target["mtriple"] == "aarch64-linux-gnu"
        assert {"fp", "asimd"} <= set(spec.cpu_features)
        assert spec.linker == "aarch64-linux-gnu-gcc"
    else:
        assert arch == "ARM_EABIHF"
        assert spec.tvm_target["mtriple"] == "armv7l-linux-gnueabihf"
        assert spec.tvm_target["mfloat-abi"] == "hard" and str(target.attrs["mfloat-abi"]) == "hard"
        assert {"neon", "vfpv4"} <= set(spec.cpu_features)
        assert spec.linker == "arm-linux-gnueabihf-gcc"
        assert any(n.startswith("no prebuilt TVM runtime exists for 32-bit ARM Linux") for n in spec.notes)


def test_aarch64_rows():
    c6g = _resolve("ml_c6g")
    assert c6g.tvm_target == {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "neoverse-n1", "mattr": ["+neon"]}
    assert c6g.cpu_features == ("asimd", "asimddp", "asimdhp", "asimdrdm", "fp")
    assert _resolve("ml_m6g").tvm_target == c6g.tvm_target
    # the Raspberry Pi 4 has no crypto extension: it must not be required
    assert _resolve("rasp4b").cpu_features == ("asimd", "fp")
    assert "64-bit (aarch64) OS" in _resolve("rasp4b").notes[0]
    assert _resolve("imx8qm").tvm_target["mcpu"] == "cortex-a53"
    assert _resolve("jacinto_tda4vm").notes[0].startswith("CPU only")


#: the same cross linker as the host CPU's rows
_LINKERS = {
    "aarch64-linux-gnu": "aarch64-linux-gnu-gcc", "armv7l-linux-gnueabihf": "arm-linux-gnueabihf-gcc",
    "x86_64-linux-gnu": None,
}
#: the GPU rows: OpenCL kernels for the GPU (TVM device key), host code for the device's CPU
_GPU_ROWS = [
    ("rk3399", "mali", "Mali-T860", {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"}),
    ("aisage", "mali", "Mali-T860", {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"}),
    ("rk3288", "mali", "Mali-T764", {"kind": "llvm", "mtriple": "armv7l-linux-gnueabihf", "mcpu": "cortex-a17",
                                     "mattr": ["+neon"], "mfloat-abi": "hard"}),
    ("deeplens", "intel_graphics", "Intel HD Graphics 505",
     {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "goldmont"}),
]


@pytest.mark.parametrize("name,device,gpu,host", _GPU_ROWS)
def test_gpu_devices_build_opencl_kernels_with_their_cpu_as_host(name, device, gpu, host):
    import tvm

    spec = _resolve(name)
    assert spec.device_type == "gpu" and spec.gpu == gpu
    assert spec.build_target == {"kind": "opencl", "device": device, "host": host}
    target = tvm.target.Target(spec.build_target)
    assert device in target.keys and "gpu" in target.keys and target.host.kind.name == "llvm"
    assert spec.notes[-1].startswith("the OpenCL kernels run through the device's OpenCL driver and a TVM runtime")
    assert spec.linker == _LINKERS[host["mtriple"]]


@pytest.mark.parametrize("accelerator,os,arch", [
    (gpu.accelerator, os, arch) for gpu in GPU_CODES.values() for os, arch in gpu.platforms
])
def test_gpu_accelerator_platforms_build_for_their_host_cpus(accelerator, os, arch):
    gpu = GPU_CODES[accelerator]
    options = "{'gpu-code': 'sm_87'}" if gpu.per_architecture else None
    spec = _resolve(platform=TargetPlatform(os, arch, accelerator), options=options)
    assert spec.name == f"{os}_{arch}_{accelerator}" and spec.device_type == "gpu"
    assert spec.gpu_target == gpu.tvm_target("sm_87" if gpu.per_architecture else "")
    assert spec.tvm_target["mcpu"] == ("x86-64" if arch == "X86_64" else "generic")


@pytest.mark.parametrize("accelerator,os,arch,pairs", [
    ("MALI", "LINUX", "X86_64", "Os=LINUX, Arch=ARM64 or Os=LINUX, Arch=ARM_EABIHF"),
    ("MALI", "ANDROID", "ARM64", "Os=LINUX, Arch=ARM64 or Os=LINUX, Arch=ARM_EABIHF"),
    ("INTEL_GRAPHICS", "LINUX", "ARM64", "Os=LINUX, Arch=X86_64"),
    ("INTEL_GRAPHICS", "LINUX", "X86", "Os=LINUX, Arch=X86_64"),
])
def test_gpu_accelerators_with_another_cpu_are_refused(accelerator, os, arch, pairs):
    assert _reason(platform=TargetPlatform(os, arch, accelerator)) == (
        f"ClientError: OutputConfiguration: TargetPlatform Accelerator={accelerator} is built with a host CPU of "
        f"{pairs}, not Os={os}, Arch={arch}"
    )


_CUDA_ROWS = [
    ("ml_p3", "sm_70", "NVIDIA Tesla V100", {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "broadwell"}),
    ("ml_g4dn", "sm_75", "NVIDIA T4", {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "cascadelake"}),
    ("jetson_tx1", "sm_53", "Jetson TX1 Maxwell GPU",
     {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a57"}),
    ("jetson_nano", "sm_53", "Jetson Nano Maxwell GPU",
     {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a57"}),
    ("jetson_tx2", "sm_62", "Jetson TX2 Pascal GPU",
     {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a57"}),
    ("jetson_xavier", "sm_72", "Jetson AGX Xavier Volta GPU",
     {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "carmel"}),
]


@pytest.mark.parametrize("name,arch,gpu,host", _CUDA_ROWS)
def test_nvidia_devices_build_cuda_for_their_sm_with_their_cpu_as_host(name, arch, gpu, host):
    spec = _resolve(name)
    assert spec.device_type == "gpu" and spec.gpu == gpu and spec.accelerator == "NVIDIA"
    assert spec.build_target == {"kind": "cuda", "arch": arch, "host": host}
    assert spec.gpu_details == {"Architecture": arch, "Compiler": "NVRTC 12.9"}
    assert spec.notes[-2].startswith("the CUDA kernels run through the device's CUDA driver and a TVM runtime")
    assert spec.notes[-1].startswith(f"kernels compiled by NVRTC 12.9 into a cubin for {arch}; ")
    assert "TensorRT is not used" in spec.notes[-1]
    # the same gpu-code is accepted, with the versions recorded
    same = _resolve(name, options=f"{{'gpu-code': '{arch}', 'trt-ver': '8.2.1', 'cuda-ver': '10.2'}}")
    assert same.gpu_details == {"Architecture": arch, "Compiler": "NVRTC 12.9", "CudaVersion": "10.2",
                                "TensorRTVersion": "8.2.1"}


def test_nvidia_device_with_another_gpu_code_is_refused():
    assert _reason("jetson_tx2", options="{'gpu-code': 'sm_72'}") == (
        "ClientError: OutputConfiguration: TargetDevice jetson_tx2's GPU (Jetson TX2 Pascal GPU) is sm_62, but "
        "CompilerOptions gpu-code names sm_72: leave gpu-code out or give 'sm_62'"
    )


def test_nvidia_platform_needs_gpu_code():
    assert _reason(platform=TargetPlatform("LINUX", "ARM64", "NVIDIA"), options="{'cuda-ver': '10.2'}") == (
        "ClientError: OutputConfiguration: TargetPlatform Accelerator=NVIDIA needs CompilerOptions gpu-code, the "
        "GPU's architecture as sm_XX, e.g. {'gpu-code': 'sm_72'} for a Jetson AGX Xavier or 'sm_75' for a T4"
    )


@pytest.mark.parametrize("options,reason", [
    ("{'gpu-code': 'sm72'}", "CompilerOptions gpu-code must be like 'sm_72', got 'sm72'"),
    ("{'gpu-code': 72}", "CompilerOptions gpu-code must be like 'sm_72', got 72"),
    ("{'gpu-code': 'sm_72', 'trt-ver': '6.0'}", "CompilerOptions trt-ver must be like '6.0.1' (x.y.z), got '6.0'"),
    ("{'gpu-code': 'sm_72', 'cuda-ver': 'v10'}", "CompilerOptions cuda-ver must be like '10.2' (x.y), got 'v10'"),
    ("{'gpu-code': 'sm_37'}",
     "CompilerOptions gpu-code 'sm_37' is not an architecture NVRTC 12.9 (CUDA's compiler, which neo-local uses) "
     "builds for. It builds for: sm_50, sm_52, sm_53, sm_60, sm_61, sm_62, sm_70, sm_72, sm_75, sm_80, sm_86, sm_87, "
     "sm_89, sm_90, sm_100, sm_101, sm_103, sm_120, sm_121"),
])
def test_nvidia_platform_refuses_malformed_or_unbuildable_options(options, reason):
    assert _reason(platform=TargetPlatform("LINUX", "X86_64", "NVIDIA"), options=options) == (
        f"ClientError: OutputConfiguration: {reason}"
    )


def test_nvidia_options_belong_to_nvidia_targets():
    assert _reason("ml_c5", options="{'gpu-code': 'sm_75', 'cuda-ver': '10.2'}") == (
        "ClientError: OutputConfiguration: CompilerOptions gpu-code, cuda-ver apply to NVIDIA GPU targets "
        "(TargetPlatform Accelerator=NVIDIA, ml_p3, ml_g4dn, jetson_*), not ml_c5"
    )


def test_ml_p2_is_refused_because_nvrtc_has_no_kepler():
    from neo_local.backends.nvrtc import nvrtc

    assert 37 not in nvrtc().architectures and min(nvrtc().architectures) == 50
    assert _reason("ml_p2") == (
        "ClientError: OutputConfiguration: TargetDevice ml_p2: its NVIDIA Tesla K80 GPU is a Kepler GPU (sm_37), and "
        "the NVRTC neo-local compiles CUDA kernels with (CUDA 12.9, the nvidia-cuda-nvrtc-cu12 wheel) builds for "
        "sm_50 and newer only: CUDA 12 dropped Kepler. Compile for a GPU instance of a newer generation (TargetDevice "
        "ml_p3 or ml_g4dn). To run the model on the instance's Intel Xeon (Broadwell) CPU instead, use TargetPlatform "
        'Os=LINUX, Arch=X86_64 with CompilerOptions {"mcpu": "broadwell"}'
    )


@pytest.mark.parametrize("name,compiler", [("ml_inf1", "neuron-cc"), ("ml_inf2", "neuronx-cc"), ("ml_trn1", "neuronx-cc")])
def test_neuron_devices_are_refused_after_their_flags_are_checked(name, compiler):
    with pytest.raises(JobFailure) as err:
        _resolve(name, options='"--verbose 1 --num-neuroncores 2 -O2"')
    reason = err.value.reason
    assert reason.startswith(f"ClientError: OutputConfiguration: TargetDevice {name}: its AWS ")
    assert f"run only code from the AWS Neuron compiler ({compiler}), which is AWS's own and not part of neo-local" in reason
    assert "Compile the model with the Neuron SDK (torch-neuron" in reason
    assert "instead, use TargetPlatform Os=LINUX, Arch=X86_64 with CompilerOptions {\"mcpu\": " in reason
    assert reason.endswith("(CompilerOptions checked: Neuron flags --verbose 1 --num-neuroncores 2 -O2)")
    # the JSON-object form is accepted too, and a malformed flag string is the user's to fix
    with pytest.raises(JobFailure, match=f"TargetDevice {name}: its AWS"):
        _resolve(name, options='{"dtype": "float32"}')
    with pytest.raises(JobFailure, match="CompilerOptions as a string must be Neuron compiler flags"):
        _resolve(name, options='"verbose"')


def test_neuron_flag_string_for_another_device_is_refused():
    assert _reason("ml_c5", options='"-O2"') == (
        "ClientError: OutputConfiguration: CompilerOptions '-O2' is a string of Neuron compiler flags, which only "
        'ml_inf1, ml_inf2, ml_trn1 take; give a JSON object such as {"mcpu": "..."}'
    )


def test_coreml_is_converted_by_the_coreml_backend():
    target = _resolve("coreml")
    assert (target.backend, target.os, target.arch, dict(target.tvm_target)) == ("coreml", "MACOS_IOS", "ANY", {})
    assert "prediction is not run here" in target.notes[0]


def test_retired_and_unimplemented_devices_say_why():
    with pytest.raises(JobFailure, match="ml_eia2: Amazon Elastic Inference was retired by AWS .* TargetDevice ml_c5"):
        _resolve("ml_eia2")
    assert "AWS DeepLens itself reached its end of life in January 2024" in _resolve("deeplens").notes[0]


@pytest.mark.parametrize("name,unused", [
    ("imx8mplus", "NPU"), ("amba_cv2", "CVflow"), ("amba_cv22", "CVflow"), ("amba_cv25", "CVflow"),
    ("jacinto_tda4vm", "C7x DSP / MMA"),
])
def test_vendor_accelerator_devices_are_cpu_rows_that_say_so(name, unused):
    spec = _resolve(name)
    assert spec.accelerator is None and spec.tvm_target["mtriple"] == "aarch64-linux-gnu"
    assert DEVICES[name].unused == unused
    assert spec.notes[0].startswith("CPU only: runs on the ") and "is not used" in spec.notes[0]


def test_x86_win32_is_refused_for_want_of_a_runtime():
    assert _reason("x86_win32") == (
        "ClientError: OutputConfiguration: TargetDevice x86_win32: no 32-bit Windows build of the TVM runtime "
        "(apache-tvm-ffi / tvm_ffi.dll) exists in any version, so a 32-bit DLL would have no runtime to load it and "
        "nothing to link against. For 64-bit Windows use TargetDevice x86_win64"
    )


def test_windows_without_the_import_library_says_to_run_setup(tmp_path, monkeypatch):
    monkeypatch.setenv(TOOLCHAIN_CACHE_ENV, str(tmp_path))
    with pytest.raises(JobFailure) as err:
        _resolve("x86_win64")
    version = metadata.version("apache-tvm-ffi")
    assert err.value.reason == (
        f"ClientError: OutputConfiguration: x86_win64 links against {tmp_path}/windows-x86_64/apache-tvm-ffi-{version}/"
        "tvm_ffi.lib, which is not prepared on this host: run scripts/setup.sh (it takes the import library from "
        "the matching apache-tvm-ffi wheel)"
    )


def test_android_platform_belongs_to_android_targets():
    assert _resolve("qcs603", options="{'ANDROID_PLATFORM': 27}").tvm_target["mtriple"] == "aarch64-linux-android27"
    assert _reason("ml_c5", options="{'ANDROID_PLATFORM': 27}") == (
        "ClientError: OutputConfiguration: CompilerOptions ANDROID_PLATFORM applies to Android targets (TargetPlatform "
        "Os=ANDROID, qcs605, qcs603), not ml_c5"
    )


#: the API reference's six TargetPlatform examples: the triple built, or the start of the refusal
_SPEC_PLATFORM_EXAMPLES = [
    (("LINUX", "ARM_EABIHF"), "{'mattr': ['+neon']}", "armv7l-linux-gnueabihf"),
    (("LINUX", "ARM64", "NVIDIA"), "{'gpu-code': 'sm_62', 'trt-ver': '6.0.1', 'cuda-ver': '10.0'}",
     "aarch64-linux-gnu"),
    (("LINUX", "X86_64", "NVIDIA"), "{'mcpu': 'skylake-avx512'}",
     "TargetPlatform Accelerator=NVIDIA needs CompilerOptions gpu-code"),
    (("LINUX", "ARM64", "MALI"), None, "aarch64-linux-gnu"),
    (("ANDROID", "ARM_EABI"), "{'ANDROID_PLATFORM': 25, 'mattr': ['+neon']}", "TargetPlatform Os=ANDROID, Arch=ARM_EABI: "),
    (("ANDROID", "ARM64"), "{'ANDROID_PLATFORM': 29}", "aarch64-linux-android29"),
]


@pytest.mark.parametrize("platform,options,outcome", _SPEC_PLATFORM_EXAMPLES)
def test_spec_platform_examples_have_an_outcome(platform, options, outcome):
    if outcome.startswith("TargetPlatform"):
        assert _reason(platform=TargetPlatform(*platform), options=options).startswith(
            f"ClientError: OutputConfiguration: {outcome}"
        )
    else:
        assert _resolve(platform=TargetPlatform(*platform), options=options).tvm_target["mtriple"] == outcome


def test_platform_arm_eabihf_as_in_the_spec_example():
    spec = _resolve(platform=TargetPlatform("LINUX", "ARM_EABIHF"), options="{'mattr': ['+neon']}")
    assert spec.name == "LINUX_ARM_EABIHF"
    assert spec.tvm_target == {
        "kind": "llvm", "mtriple": "armv7l-linux-gnueabihf", "mcpu": "generic", "mattr": ["+neon"],
        "mfloat-abi": "hard",
    }
    assert spec.cpu_features == ("neon", "vfpd32", "vfpv3")


def test_platform_x86_is_i686():
    spec = _resolve(platform=TargetPlatform("LINUX", "X86"))
    assert spec.tvm_target == {"kind": "llvm", "mtriple": "i686-linux-gnu", "mcpu": "i686"}
    assert spec.linker == "i686-linux-gnu-gcc" and spec.cpu_features == ()
    assert "no i686 wheel" in spec.notes[0]


@pytest.mark.parametrize("name", sorted(n for n, r in REFUSED.items() if r.alternative))
def test_every_refusal_alternative_resolves(name):
    """What a refusal tells a user to use instead is a platform neo-local builds for."""
    alternative = REFUSED[name].alternative
    spec = _resolve(platform=TargetPlatform(alternative.os, alternative.arch), options=alternative.options())
    assert spec.tvm_target["mcpu"] == alternative.mcpu


def test_platform_arm64_with_mcpu_and_mattr():
    spec = _resolve(platform=TargetPlatform("LINUX", "ARM64"), options="{'mcpu': 'cortex-a76', 'mattr': ['+dotprod']}")
    assert spec.name == "LINUX_ARM64"
    assert spec.tvm_target == {
        "kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a76", "mattr": ["+dotprod"]
    }
    assert "asimddp" in spec.cpu_features and spec.linker == "aarch64-linux-gnu-gcc"
    generic = _resolve(platform=TargetPlatform("LINUX", "ARM64"))
    assert generic.tvm_target["mcpu"] == "generic" and generic.cpu_features == ("asimd", "fp")


def test_unknown_arm_mcpu_names_close_matches():
    with pytest.raises(JobFailure) as err:
        _resolve("rasp4b", options='{"mcpu": "neoverse-n9"}')
    assert "CompilerOptions mcpu 'neoverse-n9' is not a CPU that LLVM knows for aarch64-linux-gnu." in err.value.reason
    assert "Did you mean: neoverse-n3, neoverse-n2, neoverse-n1" in err.value.reason


@pytest.mark.parametrize("name", _enum("TargetDevice"))
def test_every_api_target_device_has_an_outcome(name):
    """A row that resolves, or a refusal of its own: no enum value is left to a generic message."""
    assert [name in DEVICES, name in REFUSED, name in CONVERTED].count(True) == 1
    if name in DEVICES or name in CONVERTED:
        assert _resolve(name).name == name
        return
    with pytest.raises(JobFailure) as err:
        _resolve(name)
    assert err.value.reason == f"ClientError: OutputConfiguration: TargetDevice {name}: {REFUSED[name].message()}"
    assert "neo-local does not compile for this device yet" not in err.value.reason


def test_avx512_devices_need_avx512():
    assert "avx512f" in _resolve("ml_c5").cpu_features
    assert "avx512f" not in _resolve("ml_c4").cpu_features


def test_platform_x86_64_with_mcpu_and_single_quoted_mattr():
    spec = _resolve(platform=TargetPlatform("LINUX", "X86_64"), options="{'mcpu': 'znver3', 'mattr': ['+avx2']}")
    assert spec.name == "LINUX_X86_64"
    assert spec.tvm_target == {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "znver3", "mattr": ["+avx2"]}


def test_platform_default_cpu_is_generic_x86_64():
    spec = _resolve(platform=TargetPlatform("LINUX", "X86_64"))
    assert spec.tvm_target["mcpu"] == "x86-64"
    assert "avx" not in spec.cpu_features


def test_unsupported_platform_is_refused_with_choices():
    assert _reason(platform=TargetPlatform("LINUX", "ARM_EABI")) == (
        "ClientError: OutputConfiguration: TargetPlatform Os=LINUX, Arch=ARM_EABI is not supported by neo-local yet. "
        "Supported: Os=LINUX, Arch=X86_64; Os=LINUX, Arch=ARM64; Os=LINUX, Arch=ARM_EABIHF; Os=ANDROID, Arch=ARM64; "
        "Os=LINUX, Arch=X86"
    )


def test_android_armv7_is_refused_with_the_reason():
    with pytest.raises(JobFailure) as err:
        _resolve(platform=TargetPlatform("ANDROID", "ARM_EABI"), options="{'ANDROID_PLATFORM': 25, 'mattr': ['+neon']}")
    assert err.value.reason.startswith(
        "ClientError: OutputConfiguration: TargetPlatform Os=ANDROID, Arch=ARM_EABI: 32-bit Android (armeabi-v7a, "
        "soft-float calling convention) is not built: its code calls the __aeabi_* helper functions"
    )


def test_unknown_mcpu_names_close_matches():
    with pytest.raises(JobFailure) as err:
        _resolve("ml_c4", options='{"mcpu": "skylake-avx"}')
    assert "CompilerOptions mcpu 'skylake-avx' is not a CPU that LLVM knows for x86_64-linux-gnu." in err.value.reason
    assert "Did you mean: skylake-avx512" in err.value.reason


def test_device_mcpu_can_be_overridden():
    assert _resolve("ml_c5", options='{"mcpu": "znver3"}').tvm_target["mcpu"] == "znver3"


def test_bfloat16_precision_needs_an_avx512_bf16_cpu():
    """Taken where the CPU has AVX512_BF16 (a platform's mcpu, or mattr); refused elsewhere, saying
    which CPUs have it, rather than built in float32."""
    linux = TargetPlatform("LINUX", "X86_64")
    spec = _resolve(platform=linux, options='{"mcpu": "znver4", "precision": "bf16"}')
    assert spec.precision == "bfloat16" and "avx512_bf16" in spec.cpu_features
    assert _resolve(platform=linux, options='{"mcpu": "icelake-server", "mattr": ["+avx512bf16"], '
                                            '"precision": "bfloat16"}').precision == "bfloat16"
    assert _resolve("ml_c5").precision == "float32"
    for mcpu in BF16_CPUS:  # the CPUs the message names
        assert _resolve(platform=linux, options=f'{{"mcpu": "{mcpu}", "precision": "bf16"}}').precision == "bfloat16"
    assert _reason("ml_c5", options='{"precision": "bfloat16"}') == (
        "ClientError: OutputConfiguration: CompilerOptions precision 'bfloat16' needs an x86 CPU with AVX512_BF16, "
        "and ml_c5's CPU (skylake-avx512) has no AVX512_BF16. Name a CPU that has it (TargetPlatform Os=LINUX, "
        "Arch=X86_64 with CompilerOptions mcpu one of cooperlake, sapphirerapids, emeraldrapids, graniterapids, "
        "znver4, znver5, or mattr ['+avx512bf16']), or leave precision out (float32)")
    assert "rasp4b's CPU (cortex-a72) has no AVX512_BF16" in _reason("rasp4b", options='{"precision": "bf16"}')
    assert "ml_g4dn builds for a GPU" in _reason("ml_g4dn", options='{"precision": "bf16"}')
