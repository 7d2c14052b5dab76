"""Example model archives for end-to-end tests, built once and cached under .cache/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.build import BuildResult, build_example
from neo_local.verify import compare, run_artifact

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "test-models"


def built(name: str, fmt: str) -> BuildResult:
    """The archive of example ``name`` in ``fmt`` (onnx|torchscript), with its torch outputs."""
    return build_example(name, fmt, CACHE / fmt)


def check_artifact(artifact: Path, example: BuildResult, workdir: Path, record=None) -> tuple[float, float]:
    """Run ``artifact`` in a fresh process on the example's inputs; compare with torch's outputs
    and, for ONNX archives, with onnxruntime's. Returns (max abs, max rel) against torch."""
    feeds = example.load_inputs()
    actual = run_artifact(artifact, feeds, workdir)
    max_abs, max_rel = compare(example.load_outputs(), actual)
    if example.format == "onnx":
        ort_abs, ort_rel = compare(_onnxruntime(example, feeds), actual)
        assert ort_rel < 1e-4, f"vs onnxruntime: max abs {ort_abs:.3g}, rel {ort_rel:.3g}"
    if record is not None:
        record("max_abs_error", max_abs)
        record("max_rel_error", max_rel)
    print(f"{example.name} ({example.format}): max abs error {max_abs:.3g}, max rel error {max_rel:.3g}")
    assert max_rel < 1e-4, f"vs torch: max abs {max_abs:.3g}, rel {max_rel:.3g}"
    return max_abs, max_rel


def _onnxruntime(example: BuildResult, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import tarfile

    import onnxruntime as ort

    with tarfile.open(example.archive) as tar:
        model_bytes = tar.extractfile(example.model_file).read()
    return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"]).run(None, feeds)
