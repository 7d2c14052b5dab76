"""One real CNN compiled end to end for every row of the device table, each artifact checked
the way its platform allows (run and compared, emulated, or structurally; GPU rows: host code
and OpenCL kernels or CUDA cubins structurally, never run here).

Rows that share a TVM target build the same code: only the first of them is run under
emulation (slow), the others are checked structurally."""

import json
import re
import shutil
import tarfile

import pytest

import neo_local
from example_archives import built
from neo_local.targets import emulation
from neo_local.targets.devices import DEVICES
from neo_local.targets.gpus import GPU_CODES
from neo_local.targets.registry import CPU_PLATFORMS

#: the status each platform's check must reach on a host that has its tools
_EXPECTED = {
    ("LINUX", "X86_64"): {"passed", "skipped"},
    ("LINUX", "ARM64"): {"passed", "structural"},
    ("LINUX", "ARM_EABIHF"): {"passed", "structural"},
    ("WINDOWS", "X86_64"): {"passed", "structural"},
    ("ANDROID", "ARM64"): {"structural"},
}
_emulated: set[tuple] = set()
#: how the Verification detail of a GPU row ends, per kernel kind
_KERNELS = {
    "opencl": r"; \d+ opencl kernel\(s\), each defined as __kernel in the embedded source \(\d+ characters\), "
              r"which clang's front end accepts as OpenCL C CL1.2$",
    "cuda": r"; \d+ cuda kernel\(s\), each a function of the embedded cubin \(CUDA ELF for {arch}, \d+ bytes\)$",
}


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_every_device_row_compiles_a_cnn(name, tmp_path, monkeypatch):
    device = DEVICES[name]
    cpu_platform = CPU_PLATFORMS[(device.os, device.arch)]
    linker = cpu_platform.linker
    if linker is not None and shutil.which(linker) is None:
        pytest.skip(f"{linker} is not installed (scripts/setup.sh installs it as root)")
    code = (device.os, device.arch, device.mcpu, device.mattr)
    if code in _emulated:
        monkeypatch.setenv(emulation.ENV_DIR, str(tmp_path / "emulated-for-an-earlier-row"))
    _emulated.add(code)
    example = built("two_input_net", "onnx")
    uri = neo_local.compile(
        InputConfig={"S3Uri": f"file://{example.archive}", "Framework": example.framework,
                     "DataInputConfig": example.data_input_config},
        OutputConfig={"S3OutputLocation": str(tmp_path / "out"), "TargetDevice": name},
    )
    with tarfile.open(uri) as tar:
        assert sorted(tar.getnames()) == sorted(["compiled.meta", cpu_platform.library])
        meta = json.load(tar.extractfile("compiled.meta"))
    gpu = GPU_CODES[device.accelerator] if device.accelerator else None
    assert meta["Requirements"] == {"TargetDevice": name, "TargetDeviceType": "gpu" if gpu else "cpu"}
    assert meta["Target"]["TVMTarget"]["mcpu"] == device.mcpu
    gpu_notes = (1 + (gpu.per_architecture)) if gpu else 0  # the runtime note; CUDA: the NVRTC/cubin note
    assert len(meta["Target"]["Notes"]) == len(device.notes) + len(cpu_platform.notes) + gpu_notes
    assert meta["Target"]["Notes"][: len(device.notes)] == list(device.notes)
    expected = {"structural"} if gpu else _EXPECTED[(device.os, device.arch)]
    assert meta["Verification"]["status"] in expected, meta["Verification"]
    if gpu:
        assert meta["Target"]["Gpu"]["Name"] == device.gpu
        assert meta["Target"]["Gpu"]["TVMTarget"] == gpu.tvm_target(device.gpu_code)
        assert meta["Build"]["Pipeline"].startswith(f"dlight GPU rules (Matmul, GEMV, Reduction, GeneralReduction, "
                                                    f"Fallback) for {gpu.kind} ({gpu.device or gpu.kind}): ")
        assert re.search(_KERNELS[gpu.kind].format(arch=device.gpu_code), meta["Verification"]["detail"])
    if meta["Verification"]["status"] == "passed":
        assert meta["Verification"]["max_rel_error"] < 1e-4
    print(f"{name}: {meta['Verification']['status']}: {meta['Verification']['detail'][:120]}")
