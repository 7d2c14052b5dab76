"""What every frontend is and returns.

A frontend knows one Framework value: which files of an unpacked archive are its model
(Neo's archive rules), how to read DataInputConfig for it, and how to import the model into
Relax. It knows nothing about targets.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from importlib.metadata import PackageNotFoundError, version as package_version
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from neo_local.api.errors import client_error

Reference = Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]

#: the attribute that marks a private Relax function as a recurrence a backend may run as a kernel
#: of its own; the function is also a correct Relax function (its steps unrolled), which backends
#: without such a kernel inline. Its value names the cell, one direction with ONNX's equations and
#: default activations: "lstm" (gates i, o, f, c; no peepholes, clip or coupled gates) takes
#: (inputs projected with their bias [T, B, 4H], R [4H, H], R's bias [4H], h0 [B, H], c0 [B, H])
#: and returns (Y [T, B, H], h_T [B, H], c_T [B, H]); "gru" (gates z, r, h; linear_before_reset)
#: the same without c. Time runs backwards where ``REVERSE_ATTR`` is 1.
RECURRENCE_ATTR = "neo_local.recurrence"
REVERSE_ATTR = "neo_local.reverse"


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
    #: what ``reference`` runs, for the verification record
    reference_label: str = "the framework"
    derived: Mapping[str, str] = field(default_factory=dict)
    source_file: str = ""
    #: what ``ir`` is: "relax" (a TVM IRModule) or another backend's input
    ir_kind: str = "relax"
    #: the largest absolute output error verification accepts for this model (e.g. a number of
    #: quantization steps for a quantized model); None: the relative ``verify.TOLERANCE``
    tolerance: float | None = None


def quantized_tolerance_for(quantized_ops: int, output_step: float) -> float:
    """The absolute output error verification allows a quantized model: one output step per two
    quantized operators, at least 2 (each requantization may round a tie differently from the
    framework's kernels, and later layers carry such steps on)."""
    return max(2, (quantized_ops + 1) // 2) * output_step


class Frontend(ABC):
    """One framework. Subclasses set ``framework`` and ``suffixes`` and implement ``load``."""

    framework: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]
    #: the packages the import step reads models with (their versions go into the job log)
    requires: ClassVar[tuple[str, ...]] = ()
    #: FrameworkVersion values Neo accepts for this framework; empty: the field does not apply
    framework_versions: ClassVar[tuple[str, ...]] = ()
    #: what reads the model, where that is not the packages in ``requires``
    reader: ClassVar[str | None] = None

    def framework_version_note(self, version: str | None) -> str | None:
        """Check FrameworkVersion; say what it means here (the installed framework reads the model)."""
        if version is None:
            return None
        if not self.framework_versions:
            raise client_error(
                "InputConfiguration",
                f"FrameworkVersion does not apply to {self.framework} models (Neo uses it for MXNet, PyTorch, "
                "TensorFlow and TensorFlow Lite); leave it out",
            )
        if not any(version == v or version.startswith(v + ".") for v in self.framework_versions):
            raise client_error(
                "InputConfiguration",
                f"FrameworkVersion {version} is not one Neo supports for {self.framework}; "
                f"use one of {', '.join(self.framework_versions)}",
            )
        readers = self.reader or ", ".join(f"{p} {_installed(p)}" for p in self.requires)
        return f"FrameworkVersion {version}: the model is read with {readers}, which reads models saved by {self.framework} {version}"

    @abstractmethod
    def load(self, model_dir: Path, options: ImportOptions) -> ImportedModel:
        """Import the model found under ``model_dir`` (an unpacked archive)."""


def _installed(package: str) -> str:
    try:
        return package_version(package)
    except PackageNotFoundError:
        return "(not installed)"
