"""Constant folding for the CPU pipeline: every call on constants evaluated at compile time, the
kernels of each round built together.

Relax's ``FoldConstant`` does the same job one call at a time: it legalizes every operator call
it meets, whether or not its arguments are constants (a conv on activations is lowered to a
kernel and thrown away), and builds and JIT-compiles each distinct kernel it evaluates as a
separate LLVM module (the weights' layout transforms, Winograd's weight transforms, batch-norm
folds: ResNet-50 has 169, about 38 ms each, 6.5 s of a 9-10 s optimization; DenseNet's layout
497). Here folding goes in rounds: a round replaces the uses of what the last round evaluated by
the constants, legalizes only the operator calls whose tensor arguments are all constants, and
collects the kernel calls (``call_tir``) whose arguments are; the round's kernels are then built
as one module, unoptimized (``opt-level`` 0: each runs once), and run. The rounds end when one
finds nothing to evaluate: as many as the longest chain of foldable calls (a weight's layout
transform, then its Winograd transform). The values are those ``FoldConstant`` computes: the same
kernels, on the same target ("llvm", the host).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax, tirx

from neo_local.backends.cpu_schedule.rewriting import is_call_tir, rebind, rewrite_functions

#: the target the kernels are evaluated on: this machine, LLVM unoptimized
EVAL_TARGET = {"kind": "llvm", "opt-level": 0}
#: operators folded without a kernel (``FoldConstant``'s special cases, and ``split``: an
#: exported GRU's recurrent weights are split from one constant, and its per-step products on them
#: (not constants, they were not folded) ran as dlight's GEMV, 1.5 GFLOP/s)
TENSOR_TO_SHAPE, SHAPE_TO_TENSOR, SPLIT = "relax.tensor_to_shape", "relax.shape_to_tensor", "relax.split"

_CALL_TIR = tvm.ir.Op.get("relax.call_tir")
#: argument kinds that are known at compile time besides constants
_STATIC = (relax.ShapeExpr, tvm.ir.expr.StringImm, tirx.IntImm, tirx.FloatImm)
#: what a kernel that does not build raises (TVM's errors are RuntimeErrors, or ValueErrors and
#: TypeErrors where the FFI maps them so)
_BUILD_ERRORS = (RuntimeError, ValueError, TypeError)


@dataclass(frozen=True)
class Pending:
    """A kernel call on constants, to evaluate: the var bound to it, its kernel, the inputs and
    the output's static shape and dtype."""

    var: relax.Var
    kernel: tvm.ir.GlobalVar
    inputs: tuple
    shape: tuple[int, ...]
    dtype: str


def _is_constant(expr: relax.Expr) -> bool:
    return isinstance(expr, tvm.ir.expr.Constant)


def _known(expr: relax.Expr) -> bool:
    """Whether an operator argument is known at compile time: a constant, a static value, or a
    tuple of them."""
    if isinstance(expr, relax.Tuple):
        return all(_known(field) for field in expr.fields)
    return _is_constant(expr) or isinstance(expr, _STATIC)


def _foldable(call: relax.Call) -> bool:
    """Whether ``call`` runs a kernel on constants and returns one tensor of static shape."""
    if not is_call_tir(call) or len(call.ty_args) != 1:
        return False
    out = call.ty_args[0]
    return (all(_is_constant(i) for i in call.args[1].fields) and isinstance(out, relax.TensorType)
            and out.shape is not None and all(isinstance(d, tirx.IntImm) for d in out.shape.values))


def _pending(var: relax.Var, call: relax.Call) -> Pending:
    """``var = call`` (``_foldable``) as an evaluation to make."""
    out = call.ty_args[0]
    return Pending(var, call.args[0], tuple(i.value for i in call.args[1].fields),
                   tuple(int(d) for d in out.shape.values), out.dtype)


@relax.expr_functor.mutator
class _Round(relax.PyExprMutator):
    """One round of folding (module docstring): ``values`` (the last round's results by var, and
    this round's constants and shapes as it meets them) are substituted; ``pending`` collects the
    calls to evaluate."""

    def __init__(self, mod: tvm.IRModule, values: dict):
        super().__init__(mod)
        self.values = values
        self.pending: list[Pending] = []
        self.splits: dict = {}

    def visit_var_(self, var: relax.Var) -> relax.Expr:  # noqa: N802 (TVM's naming)
        return self.values[var] if var in self.values else super().visit_var_(var)

    def visit_dataflow_var_(self, var: relax.DataflowVar) -> relax.Expr:  # noqa: N802
        return self.values[var] if var in self.values else super().visit_dataflow_var_(var)

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:  # noqa: N802
        if binding.var in self.values:  # every use now reads the constant
            return
        value = self.visit_expr(binding.value)
        if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) and value.op != _CALL_TIR:
            value = self._lowered(value)
        if isinstance(value, relax.TupleGetItem) and _known(value.tuple_value) \
                and isinstance(value.tuple_value, relax.Tuple):
            value = value.tuple_value.fields[value.index]
        if _is_constant(value) or isinstance(value, relax.ShapeExpr) or (
                isinstance(value, relax.Tuple) and _known(value)):  # known now: the uses read it
            self.values[binding.var] = value
            return
        var = rebind(self, binding.var, value)
        if isinstance(value, relax.Call) and _foldable(value):
            self.pending.append(_pending(var, value))

    def _lowered(self, call: relax.Call) -> relax.Expr:
        """An operator call on known arguments inside a dataflow block, as the kernel call its
        legalization makes (or the value it folds to directly); any other call as it is."""
        if not self.builder_.current_block_is_dataflow() or not all(_known(a) for a in call.args):
            return call
        name = call.op.name
        if name == TENSOR_TO_SHAPE and _is_constant(call.args[0]):
            return relax.ShapeExpr([int(v) for v in call.args[0].value.numpy().reshape(-1)])
        if name == SHAPE_TO_TENSOR and isinstance(call.args[0], relax.ShapeExpr):
            return relax.const(np.array([int(v) for v in call.args[0].values], "int64"))
        if name == SPLIT and _is_constant(call.args[0]):  # a tuple, which no kernel call returns
            key = (hash(call.args[0].value), str(call.attrs.indices_or_sections), int(call.attrs.axis))
            if key not in self.splits:  # one weight split at every step of a recurrence: one set of parts
                self.splits[key] = relax.Tuple([relax.const(part) for part in _split(call)])
            return self.splits[key]
        legalize = call.op.get_attr("FLegalize")
        if legalize is None:
            return call
        lowered = self.builder_.normalize(legalize(self.builder_, self.builder_.normalize(call)))
        return lowered if isinstance(lowered, relax.Call) and _foldable(lowered) else call


def _split(call: relax.Call) -> list[np.ndarray]:
    """The parts of ``split`` on a constant (its sections, or the indices it splits at)."""
    at = call.attrs.indices_or_sections
    at = int(at) if isinstance(at, (int, tirx.IntImm)) else [int(i) for i in at]
    return [np.ascontiguousarray(part) for part in np.split(call.args[0].value.numpy(), at, int(call.attrs.axis))]


def _kernels(mod: tvm.IRModule, jobs: list[Pending]) -> dict:
    """The jobs' kernels built as one module: a callable per kernel (a kernel that does not build
    is left out, as ``FoldConstant`` leaves its calls unfolded)."""
    names = {gv: f"neo_local_fold_{i}" for i, gv in enumerate(dict.fromkeys(job.kernel for job in jobs))}
    funcs = {name: mod[gv].with_attr("global_symbol", name) for gv, name in names.items()}
    target = tvm.target.Target(EVAL_TARGET)
    try:
        lib = tirx.build(tvm.IRModule(funcs), target)
        return {gv: lib[name] for gv, name in names.items()}
    except _BUILD_ERRORS:  # find the ones that build
        built = {}
        for gv, name in names.items():
            try:
                built[gv] = tirx.build(tvm.IRModule({name: funcs[name]}), target)[name]
            except _BUILD_ERRORS:
                continue
        return built


def _evaluate(mod: tvm.IRModule, jobs: list[Pending]) -> dict:
    """Each job's result as a constant, by the job's var; jobs of one kernel on the same inputs
    (a recurrent model's per-step copies of one weight transform) share one evaluation and one
    constant, so that later rewrites see one weight and convert it once."""
    kernels = _kernels(mod, jobs)
    values, done = {}, {}
    for job in jobs:
        kernel = kernels.get(job.kernel)
        if kernel is None:
            continue
        key = (job.kernel.name_hint, *(hash(i) for i in job.inputs))  # a tensor's hash: its object
        if key not in done:
            out = tvm.runtime.empty(job.shape, job.dtype, tvm.cpu())
            kernel(*job.inputs, out)
            done[key] = relax.const(out)
        values[job.var] = done[key]
    return values


def _cleaned(mod: tvm.IRModule, evaluated: set[str]) -> tvm.IRModule:
    """``mod`` (the builder's, not the pass's input) without the bindings nothing uses any more,
    nor the ``evaluated`` kernels (by name) nothing calls any more."""
    called: set[str] = set()

    def visit(expr: relax.Expr) -> None:
        if isinstance(expr, tvm.ir.GlobalVar):
            called.add(expr.name_hint)

    for gv, func in mod.functions_items():
        if isinstance(func, relax.Function):
            mod[gv] = relax.analysis.remove_all_unused(func)
            relax.analysis.post_order_visit(mod[gv], visit)
    for name in evaluated - called:
        del mod[name]
    return mod


@tvm.transform.module_pass(opt_level=0, name="FoldConstantBatched")
def fold_constants(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
    """Every call on constants replaced by its value (module docstring)."""
    values: dict = {}
    evaluated: set[str] = set()
    while True:
        folder = _Round(mod, values)
        mod = rewrite_functions(folder, mod)
        values = _evaluate(mod, folder.pending) if folder.pending else {}
        if not values:
            return _cleaned(mod, evaluated)
        evaluated |= {job.kernel.name_hint for job in folder.pending if job.var in values}
