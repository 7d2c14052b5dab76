"""A darknet classifier (odd sizes through maxpool, grouped conv, route groups, shortcut,
dropout, avgpool, batch-normalized connected layer, softmax, cost; leaky, mish, relu, logistic,
swish, tanh) compiled for ml_c4 with DataInputConfig given, run in a fresh process, against the
torch implementation of the same cfg and weights."""

from pathlib import Path

import neo_local
from example_archives import CACHE, check_artifact
from models.darknet_writer import build_darknet_example


def test_classifier_compiles_and_matches_torch(tmp_path, record_property):
    example = build_darknet_example("darknet_classifier", CACHE / "darknet")
    uri = neo_local.compile(
        InputConfig={"S3Uri": example.archive, "Framework": "DARKNET", "DataInputConfig": '{"data": [1, 3, 76, 76]}'},
        OutputConfig={"S3OutputLocation": str(tmp_path / "out"), "TargetDevice": "ml_c4"},
    )
    check_artifact(Path(uri), example, tmp_path / "run", record_property)
