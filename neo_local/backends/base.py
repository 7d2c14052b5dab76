"""What a backend returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class BuiltModel:
    """The files a backend wrote into the artifact folder and how the runtime opens them."""

    library: str                       # file name inside the artifact folder
    runtime: str                       # runtime kind the loader dispatches on
    compiler_versions: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    #: entries of compiled.meta's Model that the built model defines itself (Core ML names its
    #: outputs and has flexible inputs); they replace the imported model's
    model_meta: Mapping[str, Any] = field(default_factory=dict)
