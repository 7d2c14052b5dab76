"""int8 (QDQ) ONNX examples: a float example of ``models.EXAMPLES`` exported to ONNX and quantized
statically by onnxruntime's own quantizer, as a user quantizes a model before uploading it.

    python -m models.quantized resnet_like_qdq --out DIR [--seed N] [--force]

writes the four files of ``models.cache.BuildFiles`` (archive, inputs, outputs, record) plus the
float model's build under ``DIR/float/``. The recorded outputs are onnxruntime's on the quantized
file (the source framework of a QDQ model). Quantization: QDQ format, per-channel int8 weights,
activations of onnxruntime's default type (int8), MinMax calibration on 8 seeded images, and
``reduce_range`` (7-bit weights), which onnxruntime advises on x86 without VNNI: with full-range
weights its AVX2 kernels (vpmaddubsw) saturate int16 pair sums and its outputs leave the ONNX
semantics (measured on resnet_like_qdq: 11 output steps from onnx.reference; 0 with reduce_range).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from models.cache import BuildFiles, example_main

#: quantized example -> the float example it is made from
EXAMPLES = {"resnet_like_qdq": "resnet_like", "resnet50_qdq": "resnet50_like", "mobilenet_qdq": "mobilenet_like",
            "mobilenet_v3_qdq": "mobilenet_v3_like", "shufflenet_qdq": "shufflenet_v2_like"}
CALIBRATION_IMAGES = 8


@dataclass(frozen=True)
class QuantizedBuild:
    name: str
    framework: str
    archive: str
    model_file: str
    inputs_npz: str
    outputs_npz: str  # onnxruntime's outputs on the quantized model
    float_archive: str  # the float model it was quantized from (its .build.json beside it)
    float_model_file: str  # the .onnx inside float_archive
    float_outputs_npz: str  # torch's outputs of the float module
    data_input_config: str
    key: str
    cached: bool = False


def _key(name: str, seed: int, float_key: str) -> str:
    h = hashlib.sha256(json.dumps([name, seed, float_key, CALIBRATION_IMAGES]).encode())
    for package in ("onnx", "onnxruntime"):
        h.update(version(package).encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def _calibration(input_name: str, shape: tuple[int, ...], seed: int):
    """onnxruntime's calibration reader over seeded images (other seeds than the test inputs')."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(seed + 1000)
            self._feeds = iter([{input_name: rng.standard_normal(shape).astype(np.float32)}
                                for _ in range(CALIBRATION_IMAGES)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    return Reader()


def quantize(float_onnx: Path, out: Path, input_name: str, shape: tuple[int, ...], seed: int) -> Path:
    """``quantize_static`` of ``float_onnx`` into ``out`` (QDQ, per-channel 7-bit weights, ORT's default types)."""
    from onnxruntime.quantization import QuantFormat, quantize_static

    quantize_static(float_onnx, out, _calibration(input_name, shape, seed), quant_format=QuantFormat.QDQ,
                    per_channel=True, reduce_range=True)
    return out


def onnxruntime_outputs(model: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, feeds)


def build_quantized_example(name: str, out_dir: str | Path, seed: int = 0, force: bool = False) -> QuantizedBuild:
    """Build (or reuse) quantized example ``name`` under ``out_dir``; see the module doc."""
    from models.build import build_example

    if name not in EXAMPLES:
        raise KeyError(f"unknown quantized example {name!r}; known: {', '.join(EXAMPLES)}")
    fp32 = build_example(EXAMPLES[name], "onnx", Path(out_dir) / "float", seed=seed, force=force)
    files = BuildFiles.under(out_dir, name)
    key = _key(name, seed, fp32.key)

    def make() -> QuantizedBuild:
        from models.export import make_archive

        (spec,) = fp32.inputs
        inputs = fp32.load_inputs()
        model_file = f"{name}.onnx"
        with tempfile.TemporaryDirectory(dir=files.archive.parent, prefix=f".{name}-") as tmp:
            source = Path(tmp) / fp32.model_file
            with tarfile.open(fp32.archive) as tar:
                source.write_bytes(tar.extractfile(fp32.model_file).read())
            model = quantize(source, Path(tmp) / model_file, spec["name"], tuple(spec["shape"]), seed)
            outputs = onnxruntime_outputs(model, inputs)
            make_archive([model], files.archive)
        files.save_arrays(inputs, outputs)
        return QuantizedBuild(
            name=name, framework="ONNX", archive=str(files.archive), model_file=model_file,
            inputs_npz=str(files.inputs_npz), outputs_npz=str(files.outputs_npz), float_archive=fp32.archive,
            float_model_file=fp32.model_file, float_outputs_npz=fp32.outputs_npz,
            data_input_config=fp32.data_input_config, key=key,
        )

    return files.build_once(key, QuantizedBuild, force, make)


def main(argv: list[str] | None = None) -> int:
    return example_main("python -m models.quantized", __doc__.splitlines()[0], EXAMPLES, build_quantized_example,
                        argv)


if __name__ == "__main__":
    sys.exit(main())
