"""The GPU kernel check: a library's embedded OpenCL module must define every kernel it lists."""

import pytest

from neo_local.api.errors import JobFailure
from neo_local.backends.gpu_schedule import compile_gpu
from neo_local.targets.binaries import embedded_modules, kernel_check

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
