"""What every frontend is and returns.

A frontend knows one Framework value: which files of an unpacked archive are its model
(Neo's archive rules), how to read DataInputConfig for it, and how to import the model into
Relax. It knows nothing about targets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

Reference = Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str

    def as_meta(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class ImportOptions:
    """What a frontend reads from the request besides the archive."""

    data_input_config: str | None = None
    framework_version: str | None = None
    compiler_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportedModel:
    """A model in the compiler's IR with its interface and a way to check it.

    ``reference`` runs the source framework on the same inputs (used to verify the compiled
    artifact); ``derived`` holds what was derived rather than given, for DerivedInformation.
    """

    ir: Any
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    reference: Reference | None = None
    derived: Mapping[str, str] = field(default_factory=dict)
    source_file: str = ""
    #: what ``ir`` is: "relax" (a TVM IRModule) or another backend's input
    ir_kind: str = "relax"


class Frontend(ABC):
    """One framework. Subclasses set ``framework`` and ``suffixes`` and implement ``load``."""

    framework: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]
    #: what the import step needs installed, named in the error when it is missing
    requires: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def load(self, model_dir: Path, options: ImportOptions) -> ImportedModel:
        """Import the model found under ``model_dir`` (an unpacked archive)."""
