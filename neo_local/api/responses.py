"""Shape JobRecords into DescribeCompilationJob / ListCompilationJobs answers.

Members appear in the service model's order and only when they have a value, as the service
answers; times are timezone-aware datetimes in local time, as boto3 returns them.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from dateutil.tz import tzlocal

from neo_local.jobs.states import Status
from neo_local.jobs.store import JobRecord


def _time(value: datetime | None) -> datetime | None:
    return value.astimezone(tzlocal()) if value is not None else None


def _compact(members: list[tuple[str, Any]]) -> dict[str, Any]:
    return {k: v for k, v in members if v is not None and v != {}}


def describe(record: JobRecord) -> dict[str, Any]:
    """The DescribeCompilationJob response for ``record``."""
    request = copy.deepcopy(dict(record.request))
    derived = dict(record.derived_information)
    return _compact([
        ("CompilationJobName", record.name),
        ("CompilationJobArn", record.arn),
        ("CompilationJobStatus", Status(record.status).value),
        ("CompilationStartTime", _time(record.start_time)),
        ("CompilationEndTime", _time(record.end_time)),
        ("StoppingCondition", request.get("StoppingCondition")),
        ("ModelPackageVersionArn", request.get("ModelPackageVersionArn")),
        ("CreationTime", _time(record.creation_time)),
        ("LastModifiedTime", _time(record.last_modified_time)),
        ("FailureReason", record.failure_reason if record.status == Status.FAILED else None),
        ("ModelArtifacts", {"S3ModelArtifacts": record.artifact_uri} if record.artifact_uri else None),
        ("ModelDigests", {"ArtifactDigest": record.artifact_digest} if record.artifact_digest else None),
        ("RoleArn", request.get("RoleArn")),
        ("InputConfig", request.get("InputConfig")),
        ("OutputConfig", request.get("OutputConfig")),
        ("VpcConfig", request.get("VpcConfig")),
        ("DerivedInformation", derived or None),
    ])


def summary(record: JobRecord) -> dict[str, Any]:
    """The CompilationJobSummary for ``record``."""
    output = record.request.get("OutputConfig", {})
    platform = output.get("TargetPlatform") or {}
    return _compact([
        ("CompilationJobName", record.name),
        ("CompilationJobArn", record.arn),
        ("CreationTime", _time(record.creation_time)),
        ("CompilationStartTime", _time(record.start_time)),
        ("CompilationEndTime", _time(record.end_time)),
        ("CompilationTargetDevice", output.get("TargetDevice")),
        ("CompilationTargetPlatformOs", platform.get("Os")),
        ("CompilationTargetPlatformArch", platform.get("Arch")),
        ("CompilationTargetPlatformAccelerator", platform.get("Accelerator")),
        ("LastModifiedTime", _time(record.last_modified_time)),
        ("CompilationJobStatus", Status(record.status).value),
    ])
