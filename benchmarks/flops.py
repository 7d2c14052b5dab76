"""How much arithmetic a model is: 2 x the multiply-adds of its convolutions and matmuls.

Counted once per model on the Relax module neo-local's own frontend imports (so every framework
is counted the same way, before any neo-local rewrite), from static shapes:

- conv1d/2d/3d: output elements x (weight elements / output channels), i.e. x C_in/groups x kernel;
- conv transposes: input elements x (weight elements / input channels);
- matmul (dense layers, attention products): output elements x the reduced dimension.

Elementwise work, pooling, softmax and the like are left out: GFLOP/s here means the rate of
the multiply-adds that dominate a CNN or transformer, as in published sgemm and conv figures.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

_CONV = {"relax.nn.conv1d", "relax.nn.conv2d", "relax.nn.conv3d"}
_CONV_T = {"relax.nn.conv1d_transpose", "relax.nn.conv2d_transpose", "relax.nn.conv3d_transpose"}
_MATMUL = "relax.matmul"


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def call_flops(call: Any) -> int:
    """2 x multiply-adds of one Relax call; 0 for ops not counted or shapes not static."""
    from neo_local.backends.cpu_schedule.rewriting import static_shape

    name = getattr(call.op, "name", "")
    if name not in _CONV | _CONV_T and name != _MATMUL:
        return 0
    shapes = [static_shape(call.args[0]), static_shape(call.args[1]), static_shape(call)]
    if any(s is None for s in shapes):
        return 0
    data, weight, out = shapes
    if name == _MATMUL:
        return 2 * _numel(out) * data[-1]
    channel = "O" if name in _CONV else "I"
    per_element = _numel(weight) // weight[str(call.attrs.kernel_layout).index(channel)]
    return 2 * _numel(out if name in _CONV else data) * per_element


def relax_flops(mod: Any) -> int:
    """Sum of ``call_flops`` over every call in every Relax function of ``mod``, private
    functions inlined first (the frontend's recurrences: one function may be called for several
    layers)."""
    from tvm import relax

    from neo_local.backends.cpu_schedule.rewriting import relax_calls

    mod = relax.transform.InlinePrivateFunctions()(mod)
    return sum(call_flops(call) for call in relax_calls(mod))


def model_flops(archive: str, framework: str, data_input_config: str | None,
                compiler_options: dict[str, Any]) -> int | None:
    """FLOPs of one inference of the model in ``archive``, as neo-local's frontend imports it;
    None for models that are not Relax (tree ensembles)."""
    from neo_local.archive import unpack_model_archive
    from neo_local.frontends import get_frontend
    from neo_local.frontends.base import ImportOptions

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = unpack_model_archive(Path(archive), Path(tmp))
        options = ImportOptions(data_input_config=data_input_config, compiler_options=compiler_options)
        imported = get_frontend(framework).load(model_dir, options)
        return relax_flops(imported.ir) if imported.ir_kind == "relax" else None


def flops_step(built: dict[str, Any]) -> int | None:
    """``model_flops`` of a suite build (benchmarks.suite ``Built``), for ``measure.in_child``."""
    return model_flops(built["archive"], built["framework"], built["data_input_config"], built["compiler_options"])
