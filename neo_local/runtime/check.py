"""Run an artifact on saved inputs in a fresh process: ``python -m neo_local.runtime.check
ARTIFACT INPUTS.npz OUTPUTS.npz``. The job's verification and the tests use it, so what is
checked is the artifact as a user loads it, not the compiler's in-memory state."""

from __future__ import annotations

import sys

import numpy as np


def main(argv: list[str]) -> int:
    artifact, inputs_file, outputs_file = argv
    from neo_local.runtime import ArtifactError, DLRModel

    try:
        model = DLRModel(artifact)
        with np.load(inputs_file) as data:
            outputs = model.run({name: data[name] for name in model.get_input_names()})
    except ArtifactError as exc:
        print(f"ArtifactError: {exc}", file=sys.stderr)
        return 3
    np.savez(outputs_file, *outputs)
    return 0


if __name__ == "__main__":
    # tvm_ffi imports torch whenever it is installed (3 s of the check's 4.7 s on ResNet-50);
    # the artifact needs only the TVM runtime, as on a device, so this process goes without it
    sys.modules.setdefault("torch", None)  # type: ignore[arg-type]
    sys.exit(main(sys.argv[1:]))
