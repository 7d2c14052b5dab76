"""Load and run compiled artifacts: ``DLRModel(path).run(inputs)``, as DLR does."""

from neo_local.runtime.model import ArtifactError, DLRModel

__all__ = ["ArtifactError", "DLRModel"]
