"""ai.onnx.ml operators on numeric tensors: Binarizer, ArrayFeatureExtractor and TreeEnsemble.

TreeEnsemble is evaluated without branches: every interior node's decision for every row at
once (one gather of the features, one comparison per mode), then a leaf is reached when all
decisions on its path go its way: ``decisions @ path_signs`` counts the satisfied ones, so each
leaf costs one matmul column, and the leaf weights are summed per target with another matmul.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neo_local.frontends.onnx_converters import OnnxNode, register
from neo_local.frontends.onnx_converters.relax_util import constant, dtype_of

ML = "ai.onnx.ml"


@register("Binarizer", 1, domain=ML)
def binarizer(bb: Any, node: OnnxNode) -> Any:
    """1 where ``x > threshold``, else 0, in the input's type."""
    from tvm import relax

    x = node.input(0)
    dtype = dtype_of(bb, x)
    threshold = float(node.attr("threshold", 0.0))
    if np.dtype(dtype).kind in "iu":  # integer x > t exactly when x > floor(t)
        threshold = np.floor(threshold)
    above = relax.op.greater(x, constant(threshold, dtype))
    return relax.op.astype(above, dtype)


@register("ArrayFeatureExtractor", 1, domain=ML)
def array_feature_extractor(bb: Any, node: OnnxNode) -> Any:
    """The elements at ``indices`` along the last axis."""
    from tvm import relax

    return relax.op.take(node.input(0), relax.op.astype(node.input(1), "int64"), axis=-1)


# --------------------------------------------------------------------------- TreeEnsemble

#: nodes_modes: LEQ, LT, GTE, GT, EQ, NEQ, MEMBER
_COMPARE = ("less_equal", "less", "greater_equal", "greater", "equal", "not_equal")
_MEMBER = 6
_SUM, _AVERAGE = 1, 0


@dataclass(frozen=True)
class _Paths:
    """Per leaf: the interior nodes on its path with the way (True/False) it goes at each."""

    signs: np.ndarray     # [interior nodes, leaves]: +1 the leaf needs the decision true, -1 false
    falses: np.ndarray    # [leaves]: how many decisions on the path must be false
    lengths: np.ndarray   # [leaves]: path length


def _paths(node: OnnxNode) -> _Paths:
    true_ids, false_ids = node.attr("nodes_truenodeids"), node.attr("nodes_falsenodeids")
    true_leaf, false_leaf = node.attr("nodes_trueleafs"), node.attr("nodes_falseleafs")
    leaves = len(node.attr("leaf_targetids"))
    signs = np.zeros((len(true_ids), leaves), np.float32)
    lengths = np.zeros(leaves, np.float32)

    def walk(index: int, path: list[tuple[int, float]]) -> None:
        branches = ((true_ids[index], true_leaf[index], 1.0), (false_ids[index], false_leaf[index], -1.0))
        for child, is_leaf, sign in branches:
            step = [*path, (index, sign)]
            if is_leaf:
                for n, s in step:
                    signs[n, child] = s
                lengths[child] = len(step)
            else:
                walk(child, step)

    for root in node.attr("tree_roots"):
        walk(root, [])
    return _Paths(signs, (signs < 0).sum(axis=0).astype(np.float32), lengths)


def _decisions(bb: Any, node: OnnxNode, x: Any) -> Any:
    """[rows, interior nodes] float32: 1 where the node's comparison holds (or the feature is NaN
    and the node sends missing values the true way)."""
    from onnx import numpy_helper
    from tvm import relax

    dtype = dtype_of(bb, x)
    modes = numpy_helper.to_array(node.attr("nodes_modes")).astype(np.int64)
    splits = numpy_helper.to_array(node.attr("nodes_splits")).astype(dtype)
    features = relax.op.take(x, constant(np.asarray(node.attr("nodes_featureids"), np.int64), "int64"), axis=1)
    features = bb.emit(features)  # [rows, nodes]
    decided = relax.op.zeros_like(relax.op.astype(features, "bool"))
    for mode, name in enumerate(_COMPARE):
        hit = relax.op.logical_and(getattr(relax.op, name)(features, constant(splits, dtype)),
                                   constant(modes == mode, "bool"))
        decided = relax.op.logical_or(decided, hit)
    if (modes == _MEMBER).any():
        decided = relax.op.logical_or(decided, _membership(bb, node, features, modes, dtype))
    tracks = node.attr("nodes_missing_value_tracks_true")
    if tracks is not None and any(tracks):
        missing = relax.op.logical_and(relax.op.isnan(features), constant(np.asarray(tracks, bool), "bool"))
        decided = relax.op.logical_or(decided, missing)
    return bb.emit(relax.op.astype(decided, "float32"))


def _membership(bb: Any, node: OnnxNode, features: Any, modes: np.ndarray, dtype: str) -> Any:
    """[rows, nodes] bool: the feature is one of a MEMBER node's values (``membership_values``
    lists each MEMBER node's set in node order, each ended by a NaN)."""
    from onnx import numpy_helper
    from tvm import relax

    values = numpy_helper.to_array(node.attr("membership_values")).astype(np.float64)
    sets, current = [], []
    for v in values:
        if np.isnan(v):
            sets.append(current)
            current = []
        else:
            current.append(v)
    table = np.full((len(modes), max(len(s) for s in sets)), np.nan)
    for n, members in zip(np.flatnonzero(modes == _MEMBER), sets):
        table[n, : len(members)] = members
    equal = relax.op.equal(relax.op.expand_dims(features, -1), constant(table.astype(dtype), dtype))
    return relax.op.greater(relax.op.max(relax.op.astype(equal, "int8"), axis=-1), relax.const(0, "int8"))


@register("TreeEnsemble", 1, domain=ML)
def tree_ensemble(bb: Any, node: OnnxNode) -> Any:
    """ai.onnx.ml TreeEnsemble (opset 5) with SUM or AVERAGE aggregation and no post transform."""
    from onnx import numpy_helper
    from tvm import relax

    aggregate, post = int(node.attr("aggregate_function", _SUM)), int(node.attr("post_transform", 0))
    if aggregate not in (_SUM, _AVERAGE) or post != 0:
        raise ValueError(f"TreeEnsemble with aggregate_function {aggregate} / post_transform {post} is not supported")
    x = node.input(0)
    dtype = dtype_of(bb, x)
    paths = _paths(node)
    satisfied = relax.op.add(relax.op.matmul(_decisions(bb, node, x), constant(paths.signs, "float32")),
                             constant(paths.falses, "float32"))
    reached = bb.emit(relax.op.astype(relax.op.equal(satisfied, constant(paths.lengths, "float32")), dtype))
    weights = numpy_helper.to_array(node.attr("leaf_weights")).astype(np.float64)
    targets = np.zeros((len(weights), int(node.attr("n_targets"))))
    targets[np.arange(len(weights)), np.asarray(node.attr("leaf_targetids"))] = weights
    if aggregate == _AVERAGE:
        targets /= len(node.attr("tree_roots"))
    return relax.op.matmul(reached, constant(targets.astype(dtype), dtype))
