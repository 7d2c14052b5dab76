"""Relax's ``FoldConstant`` with its kernels built by LLVM unoptimized.

``FoldConstant`` evaluates every call on constants (the weights' layout transforms and
repacking, Winograd's weight transform, batch-norm folds) by building each distinct kernel with
the global ``tirx.build`` for a plain "llvm" target, and running it once. LLVM's default
optimization level made those builds 22 ms each: ResNet-50 has 169 of them (3.7 s of an 11 s
optimization), DenseNet-121's layout 497. Built at ``opt-level`` 0 they take 6-8 ms and run once
anyway: ResNet-50's Relax passes 11.4 -> 9.3-10.1 s, DenseNet's 27.1 -> 21.5 s, EfficientNet's
11.1 -> 8.6 s (one process, Zen 3). Levels 1-3 measured slower, build and run together (ResNet-50's
folding 5.9 s at 0, 7.1-8.1 s at 1, 2 and 3). The values are the same computations (layout moves are
exact; a weight transform may round differently where LLVM would have fused a multiply-add).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import tvm
import tvm_ffi
from tvm import relax

#: the global function ``FoldConstant`` builds its kernels with
BUILD_FUNCTION = "tirx.build"


@contextlib.contextmanager
def _unoptimized_builds() -> Iterator[None]:
    """``BUILD_FUNCTION`` builds for its target at LLVM opt-level 0 while the context is open."""
    build = tvm_ffi.get_global_func(BUILD_FUNCTION)

    def unoptimized(func: Any, target: Any) -> Any:
        config = dict(tvm.target.Target(target).export()) if target is not None else {"kind": "llvm"}
        if config.get("kind") == "llvm":
            config["opt-level"] = 0
        return build(func, tvm.target.Target(config))

    tvm_ffi.register_global_func(BUILD_FUNCTION, unoptimized, override=True)
    try:
        yield
    finally:
        tvm_ffi.register_global_func(BUILD_FUNCTION, build, override=True)


@tvm.transform.module_pass(opt_level=0, name="FoldConstantUnoptimized")
def fold_constants(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
    """``relax.transform.FoldConstant`` with its evaluation kernels built unoptimized."""
    with _unoptimized_builds():
        return relax.transform.FoldConstant()(mod)
