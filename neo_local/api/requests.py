"""The CreateCompilationJob request as typed, frozen values.

Built from a request dict that has already passed ``validation.validate_create``; the
pipeline and the job store take these rather than loose dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class TargetPlatform:
    os: str
    arch: str
    accelerator: str | None = None


@dataclass(frozen=True)
class InputConfig:
    s3_uri: str
    framework: str
    data_input_config: str | None = None
    framework_version: str | None = None


@dataclass(frozen=True)
class OutputConfig:
    s3_output_location: str
    target_device: str | None = None
    target_platform: TargetPlatform | None = None
    compiler_options: str | None = None
    kms_key_id: str | None = None

    @property
    def target_name(self) -> str:
        """The name used in the artifact file name: the device, or os_arch[_accel]."""
        if self.target_device:
            return self.target_device
        assert self.target_platform is not None
        parts = [self.target_platform.os, self.target_platform.arch]
        if self.target_platform.accelerator:
            parts.append(self.target_platform.accelerator)
        return "_".join(parts)


@dataclass(frozen=True)
class CompilationRequest:
    job_name: str
    role_arn: str
    output_config: OutputConfig
    max_runtime_seconds: int
    input_config: InputConfig | None = None
    model_package_version_arn: str | None = None
    vpc_config: Mapping[str, Any] | None = None
    tags: tuple[Mapping[str, str], ...] = field(default_factory=tuple)

    @classmethod
    def from_api(cls, request: Mapping[str, Any]) -> "CompilationRequest":
        """From a (validated) CreateCompilationJob request dict."""
        inp = request.get("InputConfig")
        out = request["OutputConfig"]
        platform = out.get("TargetPlatform")
        return cls(
            job_name=request["CompilationJobName"],
            role_arn=request["RoleArn"],
            input_config=InputConfig(
                s3_uri=inp["S3Uri"],
                framework=inp["Framework"],
                data_input_config=inp.get("DataInputConfig"),
                framework_version=inp.get("FrameworkVersion"),
            ) if inp else None,
            output_config=OutputConfig(
                s3_output_location=out["S3OutputLocation"],
                target_device=out.get("TargetDevice"),
                target_platform=TargetPlatform(
                    os=platform["Os"], arch=platform["Arch"], accelerator=platform.get("Accelerator")
                ) if platform else None,
                compiler_options=out.get("CompilerOptions"),
                kms_key_id=out.get("KmsKeyId"),
            ),
            max_runtime_seconds=int(request["StoppingCondition"].get("MaxRuntimeInSeconds", 86400)),
            model_package_version_arn=request.get("ModelPackageVersionArn"),
            vpc_config=request.get("VpcConfig"),
            tags=tuple(request.get("Tags", ())),
        )
