"""The GPU kernel check: a library's embedded OpenCL module must define every kernel it lists; a
CUDA module must be a cubin for the requested sm_XX defining every kernel (compiled by NVRTC)."""

import re

import pytest

from neo_local.api.errors import JobFailure
from neo_local.backends.gpu_schedule import compile_gpu
from neo_local.targets.binaries import (
    LIBRARY_BLOB, DeviceModule, _symbol_bytes, blob_modules, embedded_modules, kernel_check, pack_blob,
)

_HOST = {"kind": "llvm", "mtriple": "x86_64-linux-gnu"}


def _model():
    from tvm import relax

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((4, 64), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.relu(relax.op.add(x, x)))
            total = bb.emit_output(relax.op.sum(y, axis=[1]))
        bb.emit_func_output(total)
    return bb.get()


@pytest.fixture(scope="module")
def opencl_library(tmp_path_factory):
    executable, pipeline = compile_gpu(_model(), {"kind": "opencl", "device": "mali", "host": _HOST})
    rules = "Matmul, GEMV, Reduction, GeneralReduction, Fallback"
    assert pipeline == f"dlight GPU rules ({rules}) for opencl (mali): 1 TIR function(s)"
    path = tmp_path_factory.mktemp("opencl") / "compiled.so"
    executable.export_library(str(path))
    return path


def test_an_opencl_library_passes(opencl_library):
    assert list(embedded_modules(opencl_library)) == ["relax.VMExecutable", "_lib", "opencl"]
    summary = kernel_check(opencl_library, "opencl")
    assert summary.startswith("1 opencl kernel(s), each defined as __kernel in the embedded source (")
    assert summary.endswith(" characters), which clang's front end accepts as OpenCL C CL1.2")


def test_invalid_opencl_c_is_refused(opencl_library, tmp_path):
    # a builtin misspelt (same length): the kernel table and the definitions are still there
    broken = tmp_path / "compiled.so"
    broken.write_bytes(opencl_library.read_bytes().replace(b"get_local_id(", b"get_locel_id(", 1))
    with pytest.raises(JobFailure, match=r"compiled.so's opencl source is not valid OpenCL C CL1.2 \(1 error\(s\)\): "
                                         r"line \d+: use of undeclared identifier 'get_locel_id'"):
        kernel_check(broken, "opencl")


def test_a_cpu_library_has_no_opencl_kernels(tmp_path):
    import tvm

    path = tmp_path / "compiled.so"
    tvm.compile(_model(), target=tvm.target.Target(_HOST)).export_library(str(path))
    with pytest.raises(JobFailure, match="compiled.so holds no opencl kernels: its embedded modules are "
                                         "relax.VMExecutable, _lib"):
        kernel_check(path, "opencl")


def test_a_kernel_missing_from_the_source_is_refused(opencl_library, tmp_path):
    # the same library with its kernel definitions unmarked (same length: the blob stays readable)
    tampered = tmp_path / "compiled.so"
    tampered.write_bytes(opencl_library.read_bytes().replace(b"__kernel void", b"__global void"))
    with pytest.raises(JobFailure, match="compiled.so's opencl source does not define the kernels its table lists: "):
        kernel_check(tampered, "opencl")


@pytest.fixture(scope="module")
def cuda_library(tmp_path_factory):
    from neo_local.backends.cuda_cubin import pack_with_cubin

    executable, _ = compile_gpu(_model(), {"kind": "cuda", "arch": "sm_62", "host": _HOST})
    path = tmp_path_factory.mktemp("cuda") / "compiled.so"
    executable.export_library(str(path), fpack_imports=pack_with_cubin("sm_62"))
    return path


def test_a_cuda_library_holds_a_cubin_for_its_sm(cuda_library):
    assert list(embedded_modules(cuda_library)) == ["relax.VMExecutable", "_lib", "cuda"]
    module = DeviceModule.parse(embedded_modules(cuda_library)["cuda"])
    assert module.format == "cubin" and module.kernels == ("fused_add_relu_sum_kernel",)
    assert module.data[:4] == b"\x7fELF"
    assert re.fullmatch(r"1 cuda kernel\(s\), each a function of the embedded cubin \(CUDA ELF for sm_62, \d+ bytes\)",
                        kernel_check(cuda_library, "cuda", "sm_62"))


def test_a_cubin_for_another_sm_is_refused(cuda_library):
    with pytest.raises(JobFailure, match="^InternalError: compiled.so's cuda cubin is for sm_62, not sm_72$"):
        kernel_check(cuda_library, "cuda", "sm_72")


def test_a_kernel_missing_from_the_cubin_is_refused(cuda_library, tmp_path):
    # the kernel's symbol renamed in the cubin's string table (same length), its table entry kept
    data = cuda_library.read_bytes()
    tampered = tmp_path / "compiled.so"
    tampered.write_bytes(data.replace(b"\0fused_add_relu_sum_kernel\0", b"\0fused_add_relu_sum_kernex\0"))
    with pytest.raises(JobFailure, match="compiled.so's cuda cubin does not define the kernels its table lists: "
                                         "fused_add_relu_sum_kernel$"):
        kernel_check(tampered, "cuda", "sm_62")


def test_cuda_source_left_uncompiled_is_refused(tmp_path):
    path = tmp_path / "compiled.so"
    executable, _ = compile_gpu(_model(), {"kind": "cuda", "arch": "sm_62", "host": _HOST})
    executable.export_library(str(path))  # TVM's own packing: CUDA C source, for the device to compile
    with pytest.raises(JobFailure, match="compiled.so's cuda module holds 'cuda', not a cubin: its kernels were not "
                                         "compiled"):
        kernel_check(path, "cuda", "sm_62")


def test_blob_repacks_to_the_same_bytes(opencl_library):
    blob = _symbol_bytes(opencl_library, LIBRARY_BLOB)
    assert pack_blob(*blob_modules(blob)) == blob
    tree, modules = blob_modules(blob)
    opencl = DeviceModule.parse(dict(modules)["opencl"])
    assert opencl.format == "cl" and DeviceModule.parse(opencl.to_bytes()) == opencl


def test_nvrtc_reports_source_errors():
    from neo_local.backends.nvrtc import NvrtcError, compile_cubin

    with pytest.raises(NvrtcError, match=r"^NVRTC 12.9 cannot compile the kernels for sm_53: .*undefined"):
        compile_cubin('extern "C" __global__ void k(float* x) { x[0] = undefined_name; }', 53)
