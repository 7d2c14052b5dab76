"""The artifact: a folder with compiled.so and compiled.meta, packed as
``<input-basename>-<TargetDevice>.tar.gz``.

compiled.meta is Neo's JSON shape plus what our runtime needs to open the library or refuse
it with a clear message: the runtime kind, the compiler versions, the CPU features used and,
for GPU targets, the GPU and kernel kind (Requirements.TargetDeviceType "gpu", as Neo writes it).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

import neo_local
from neo_local.backends.base import BuiltModel
from neo_local.frontends.base import ImportedModel
from neo_local.targets.spec import TargetSpec

META = "compiled.meta"
FORMAT_VERSION = 1


def artifact_name(s3_uri: str, target_name: str) -> str:
    """``s3://b/k/model.tar.gz`` + ml_c5 -> ``model-ml_c5.tar.gz``, as Neo names it."""
    base = PurePosixPath(s3_uri.split("://", 1)[-1]).name
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return f"{base or 'model'}-{target_name}.tar.gz"


def build_meta(model: ImportedModel, target: TargetSpec, built: BuiltModel, framework: str) -> dict[str, Any]:
    return {
        "Requirements": {"TargetDevice": target.name, "TargetDeviceType": target.device_type},
        "Model": {
            "Framework": framework,
            "SourceFile": model.source_file,
            "Inputs": [s.as_meta() for s in model.inputs],
            "Outputs": [s.as_meta() for s in model.outputs],
            **built.model_meta,
        },
        "Target": {
            "Os": target.os,
            "Arch": target.arch,
            "Accelerator": target.accelerator,
            "TVMTarget": dict(target.tvm_target),
            "CpuFeatures": list(target.cpu_features),
            "Notes": list(target.notes),
            **_gpu_meta(target),
        },
        "Runtime": {"Kind": built.runtime, "Library": built.library, "FormatVersion": FORMAT_VERSION},
        "Compiler": {"neo-local": neo_local.__version__, **built.compiler_versions},
        "Build": dict(built.details),
    }


def _gpu_meta(target: TargetSpec) -> dict[str, Any]:
    """A GPU target's kernels: the GPU and the TVM target they were built for (TVMTarget is the host's)."""
    if target.gpu_target is None:
        return {}
    return {"Gpu": {"Name": target.gpu, "TVMTarget": dict(target.gpu_target), **target.gpu_details}}


def write_meta(folder: Path, meta: Mapping[str, Any]) -> None:
    (folder / META).write_text(json.dumps(meta, indent=2) + "\n")


def read_meta(folder: Path) -> dict[str, Any]:
    return json.loads((folder / META).read_text())


def pack(folder: Path, tarball: Path) -> str:
    """Write ``folder``'s files at the root of ``tarball``; return its sha256 digest."""
    with tarfile.open(tarball, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    digest = hashlib.sha256()
    with open(tarball, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
