"""The path of one job, inside its worker process.

fetch -> safe unpack -> frontend -> target -> backend -> package -> verify -> upload.
(Stub signature; implemented by the compiler work.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from neo_local.api.requests import CompilationRequest

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CompilationResult:
    artifact_uri: str                      # ModelArtifacts.S3ModelArtifacts
    artifact_digest: str                   # ModelDigests.ArtifactDigest
    derived_information: Mapping[str, str] = field(default_factory=dict)  # DerivedInformation
    messages: tuple[str, ...] = ()         # what the user should know (e.g. verification done how)


def run_compilation(request: CompilationRequest, workdir: Path, progress: Progress) -> CompilationResult:
    """Run one job to the end. Raises ``JobFailure`` with a FailureReason on any failure."""
    raise NotImplementedError
