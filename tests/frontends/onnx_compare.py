"""Compile a small ONNX graph through neo-local's ONNX import and compare it with onnxruntime."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import onnx
from onnx import helper

from neo_local.frontends.base import TensorSpec
from neo_local.frontends.onnx_import import import_onnx, onnxruntime_reference


def onnx_model(nodes: list[Any], inputs: list[Any], outputs: list[Any], initializers=(), opset: int = 17) -> Any:
    """A checked single-graph model at the given default-domain opset."""
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def run_compiled(model: Any, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The model imported as the ONNX frontend does, compiled for llvm and run on ``feeds``."""
    import tvm
    from tvm import relax

    specs = tuple(TensorSpec(n, a.shape, str(a.dtype)) for n, a in feeds.items())
    mod, _ = import_onnx(model, specs, "model.onnx")
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    result = vm["main"](*[tvm.runtime.tensor(a) for a in feeds.values()])
    return [result.numpy()] if hasattr(result, "numpy") else [r.numpy() for r in result]


def compile_and_compare(model: Any, feeds: Mapping[str, np.ndarray], rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Every output of the compiled model matches onnxruntime's (shape, dtype kind and values)."""
    got = run_compiled(model, feeds)
    expected = onnxruntime_reference(model.SerializeToString())(feeds)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        assert g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)


def seeded(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)
