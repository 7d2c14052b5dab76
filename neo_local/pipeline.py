"""The path of one job, inside its worker process.

fetch -> safe unpack -> frontend -> target -> backend -> verify (while packing) -> upload.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from neo_local import storage
from neo_local.api.errors import client_error
from neo_local.api.requests import CompilationRequest
from neo_local.archive import unpack_model_archive
from neo_local.backends import import_model, select_backend
from neo_local.frontends import get_frontend
from neo_local.frontends.base import ImportOptions
from neo_local.packaging import artifact_name, build_meta, packing, write_meta
from neo_local.targets.options import CompilerOptions
from neo_local.targets.registry import resolve_target
from neo_local.verify import verify

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CompilationResult:
    artifact_uri: str                      # ModelArtifacts.S3ModelArtifacts
    artifact_digest: str                   # ModelDigests.ArtifactDigest
    derived_information: Mapping[str, str] = field(default_factory=dict)  # DerivedInformation
    messages: tuple[str, ...] = ()         # what the user should know (e.g. verification done how)


def run_compilation(request: CompilationRequest, workdir: Path, progress: Progress) -> CompilationResult:
    """Run one job to the end. Raises ``JobFailure`` with a FailureReason on any failure."""
    if request.input_config is None:
        raise client_error(
            "InputConfiguration",
            f"ModelPackageVersionArn {request.model_package_version_arn} cannot be used: neo-local has no "
            "SageMaker model registry to read the model package from. Give the model archive in "
            "InputConfig instead (S3Uri, Framework, DataInputConfig) and run the job again.",
        )
    inp = request.input_config
    out = request.output_config
    options = CompilerOptions.parse(out.compiler_options)
    target = resolve_target(out, options)
    frontend = get_frontend(inp.framework)
    version_note = frontend.framework_version_note(inp.framework_version)
    messages = [m for m in (version_note, *target.notes, *_ignored_fields(request)) if m]
    for message in messages:
        progress(message)

    progress(f"Fetching {inp.s3_uri}")
    archive = storage.download(inp.s3_uri, workdir / "input")
    model_dir = unpack_model_archive(archive, workdir / "model")

    started = time.monotonic()
    progress(f"Importing the {inp.framework} model")
    model = import_model(
        frontend,
        target,
        model_dir,
        ImportOptions(
            data_input_config=inp.data_input_config,
            framework_version=inp.framework_version,
            compiler_options={**options.values, "dtype": options.dtype},
        ),
    )
    shapes = ", ".join(f"{s.name} {list(s.shape)} {s.dtype}" for s in model.inputs)
    progress(f"Imported {model.source_file}: inputs {shapes}")
    if model.derived:
        progress(f"Derived DataInputConfig {model.derived.get('DerivedDataInputConfig')}")

    progress(f"Compiling for {target.name} ({_describe(target.tvm_target) or target.backend})")
    folder = workdir / "artifact"
    built = select_backend(model, target)(model, target, folder)
    meta = build_meta(model, target, built, inp.framework)
    write_meta(folder, meta)
    for key, value in built.details.items():
        progress(f"{key}: {value}")
    progress(f"Compiled in {time.monotonic() - started:.1f} s")

    progress("Verifying the artifact against the framework")
    tarball = workdir / artifact_name(inp.s3_uri, target.name)
    with packing(folder, tarball) as finish_tarball:
        verification = verify(folder, model, target, workdir / "verify")
        meta["Verification"] = verification.as_meta()
        write_meta(folder, meta)
        messages.append(f"Verification {verification.status}: {verification.detail}")
        progress(messages[-1] + _errors(verification))
        digest = finish_tarball()
    progress(f"Uploading {tarball.name} to {out.s3_output_location}")
    uri = storage.upload(tarball, out.s3_output_location, kms_key_id=out.kms_key_id)
    return CompilationResult(
        artifact_uri=uri,
        artifact_digest=digest,
        derived_information=dict(model.derived),
        messages=tuple(messages),
    )


def _ignored_fields(request: CompilationRequest) -> list[str]:
    """What the request asks for that a local compiler cannot act on: said, never silent."""
    notes = []
    if request.vpc_config:
        notes.append("VpcConfig is recorded; it has no effect on a local compilation")
    kms = request.output_config.kms_key_id
    if kms and request.output_config.s3_output_location.startswith("s3://"):
        notes.append(f"KmsKeyId {kms}: the artifact is uploaded with SSE-KMS under this key.")
    elif kms:
        notes.append(f"KmsKeyId {kms} has no effect: S3OutputLocation is a local path, which is written unencrypted.")
    if request.tags:
        notes.append(f"Tags: {len(request.tags)} stored with the job (no effect on the compilation).")
    return notes


def _describe(target: Mapping) -> str:
    return ", ".join(f"{k}={v}" for k, v in target.items() if k != "kind")


def _errors(v) -> str:
    if v.max_abs_error is None:
        return ""
    return f" (max abs error {v.max_abs_error:.3g}, relative {v.max_rel_error:.3g})"
