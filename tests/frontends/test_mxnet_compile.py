"""An MXNet checkpoint using many operators (two outputs), compiled for ml_c4 and run in a fresh
process, against the torch module it was written from: TVM's import of every ONNX node the
MXNet translation emits (Resize, LRN, PRelu, Pad, ConvTranspose, Gemm, reductions, Softmax ...)."""

from pathlib import Path

import neo_local
from example_archives import CACHE, check_artifact
from models.mxnet_writer import build_mxnet_example


def test_operator_mix_compiles_and_matches_torch(tmp_path, record_property):
    example = build_mxnet_example("mxnet_ops_mix", CACHE / "mxnet")
    uri = neo_local.compile(
        InputConfig={"S3Uri": example.archive, "Framework": "MXNET", "DataInputConfig": example.data_input_config},
        OutputConfig={"S3OutputLocation": str(tmp_path / "out"), "TargetDevice": "ml_c4"},
    )
    check_artifact(Path(uri), example, tmp_path / "run", record_property)
