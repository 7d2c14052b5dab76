"""A blocking compile in the caller's process, for job runners and scripts."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from neo_local.api.requests import CompilationRequest
from neo_local.api.validation import validate_create

log = logging.getLogger("neo_local")

_DEFAULTS = {
    "RoleArn": "arn:aws:iam::000000000000:role/neo-local",
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
}


def compile(**request: Any) -> str:  # noqa: A001
    """Run a CreateCompilationJob request to the end here; return the artifact's URI.

    Takes the same keys as ``create_compilation_job``; CompilationJobName, RoleArn and
    StoppingCondition may be left out. Progress goes to the ``neo_local`` logger. Raises
    ``JobFailure`` (its ``reason`` is the FailureReason) or ``ValidationException``.
    """
    from neo_local.pipeline import run_compilation

    full = {"CompilationJobName": f"compile-{int(time.time())}", **_DEFAULTS, **request}
    validate_create(full)
    parsed = CompilationRequest.from_api(full)
    with tempfile.TemporaryDirectory(prefix="neo-local-") as tmp:
        result = run_compilation(parsed, Path(tmp), log.info)
    return result.artifact_uri
