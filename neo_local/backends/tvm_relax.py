"""Build with Apache TVM (Relax): IRModule -> compiled.so holding kernels and the VM program."""

from __future__ import annotations

from pathlib import Path

from neo_local.api.errors import exception_line, internal_error
from neo_local.backends.base import BuiltModel
from neo_local.frontends.base import ImportedModel
from neo_local.targets.spec import TargetSpec

LIBRARY = "compiled.so"
RUNTIME = "tvm-relax-vm"


def build(model: ImportedModel, target: TargetSpec, out_dir: Path) -> BuiltModel:
    import tvm
    import tvm_ffi

    try:
        executable = tvm.compile(model.ir, target=tvm.target.Target(dict(target.tvm_target)))
        out_dir.mkdir(parents=True, exist_ok=True)
        executable.export_library(str(out_dir / LIBRARY))
    except Exception as exc:  # TVM raises its own error types from C++
        raise internal_error(f"TVM could not build the model for {target.name}: {exception_line(exc)}") from exc
    return BuiltModel(
        library=LIBRARY,
        runtime=RUNTIME,
        compiler_versions={
            "tvm": tvm.__version__,
            "tvm-ffi": getattr(tvm_ffi, "__version__", "unknown"),
            "llvm": str(tvm.target.codegen.llvm_version_major()),
        },
    )
