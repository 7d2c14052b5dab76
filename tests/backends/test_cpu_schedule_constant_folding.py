"""Constant folding in batched rounds (neo_local.backends.cpu_schedule.constant_folding)."""

from __future__ import annotations

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")

from tvm import relax, tirx  # noqa: E402
from tvm.script import tirx as T  # noqa: E402

from neo_local.backends.cpu_schedule import constant_folding  # noqa: E402
from neo_local.backends.cpu_schedule.constant_folding import fold_constants  # noqa: E402

X = relax.TensorType((2, 3, 4), "float32")


def _main(body, legalize: bool = True) -> tvm.IRModule:
    """main(x) = body(bb, x) in one dataflow block, legalized to kernels unless told otherwise."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", X)
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(body(bb, x))
        bb.emit_func_output(out)
    return relax.transform.LegalizeOps()(bb.get()) if legalize else bb.get()


def _parts(mod: tvm.IRModule) -> tuple[list[np.ndarray], list[str]]:
    """The constants main uses and the operators it calls (call_tir counted by name)."""
    constants, ops = [], []

    def visit(e) -> None:
        if isinstance(e, tvm.ir.expr.GenericConst):
            constants.append(e.value.numpy())
        elif isinstance(e, relax.Call) and isinstance(e.op, tvm.ir.Op):
            ops.append(e.op.name)

    relax.analysis.post_order_visit(mod["main"], visit)
    return constants, ops


def _run(mod: tvm.IRModule, x: np.ndarray) -> np.ndarray:
    vm = relax.VirtualMachine(tvm.compile(mod, "llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()


@pytest.fixture
def builds(monkeypatch) -> list[tuple[int, int]]:
    """Each build the folder makes: (kernels in the module, LLVM opt-level of the target)."""
    made, real = [], tirx.build

    def spy(mod, target=None, **kw):
        made.append((len(mod.functions_items()), int(tvm.target.Target(target).export().get("opt-level", -1))))
        return real(mod, target, **kw)

    monkeypatch.setattr(constant_folding.tirx, "build", spy)
    return made


def test_a_chain_of_calls_on_constants_folds_in_rounds_each_one_unoptimized_build(builds):
    w, v = np.arange(24, dtype="float32").reshape(3, 4, 2), np.full((4, 2, 3), 0.5, "float32")

    def body(bb, x):
        moved = bb.emit(relax.op.permute_dims(relax.const(w), [2, 0, 1]))  # round 1
        other = bb.emit(relax.op.permute_dims(relax.const(v), [1, 2, 0]))  # round 1, the same build
        summed = bb.emit(relax.op.add(moved, other))  # round 2
        return relax.op.add(x, summed)  # not constant: runs

    mod = _main(body)
    folded = fold_constants(mod)
    constants, ops = _parts(folded)
    assert ops == ["relax.call_tir"] and len(constants) == 1
    # the transposes gone; the add kept, the one kernel of both adds (one evaluated, one to run)
    assert sorted(gv.name_hint for gv, f in folded.functions_items() if isinstance(f, tirx.PrimFunc)) == ["add"]
    np.testing.assert_array_equal(constants[0], w.transpose(2, 0, 1) + v.transpose(1, 2, 0))
    assert builds == [(2, 0), (1, 0)]  # two rounds: both transposes built together, then the add
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype("float32")
    np.testing.assert_array_equal(_run(folded, x), _run(mod, x))


def test_operator_calls_are_legalized_only_where_their_tensors_are_constants(builds):
    w = np.arange(24, dtype="float32").reshape(2, 3, 4)

    def body(bb, x):
        doubled = bb.emit(relax.op.multiply(relax.const(w), relax.const(np.float32(2))))
        return relax.op.add(x, doubled)

    folded = fold_constants(_main(body, legalize=False))
    constants, ops = _parts(folded)
    assert ops == ["relax.add"], ops  # the add on x left as the operator it was
    np.testing.assert_array_equal(constants[0], w * 2)
    assert not [f for _, f in folded.functions_items() if isinstance(f, tirx.PrimFunc)]  # the multiply's evaluated
    assert builds == [(1, 0)]


def test_a_constant_tensor_becomes_a_shape():
    def body(bb, x):
        shape = bb.emit(relax.op.tensor_to_shape(relax.const(np.array([4, 6], "int64"))))
        return relax.op.reshape(x, shape)

    folded = fold_constants(_main(body, legalize=False))
    _, ops = _parts(folded)
    assert "relax.tensor_to_shape" not in ops
    assert [int(d) for d in folded["main"].ret_ty.shape.values] == [4, 6]


def test_a_static_shape_becomes_a_constant_tensor():
    def body(bb, x):
        dims = bb.emit(relax.op.shape_to_tensor(relax.ShapeExpr([2, 3, 4])))
        return relax.op.add(x, relax.op.astype(relax.op.sum(dims), "float32"))

    constants, ops = _parts(fold_constants(_main(body, legalize=False)))
    assert "relax.shape_to_tensor" not in ops and "relax.sum" not in ops
    assert [c.tolist() for c in constants] == [9.0]  # the shape, summed and cast, folded in turn


def test_a_split_constant_folds_into_its_parts():
    """A recurrence's weights split from one constant at every step (an exported GRU): the parts
    become constants, so what the steps compute from them folds too."""
    weights = np.arange(24, dtype="float32").reshape(6, 4)

    def body(bb, x):
        steps = []
        for _ in range(3):
            parts = bb.emit(relax.op.split(relax.const(weights), indices_or_sections=[2], axis=0))
            first = bb.emit(relax.op.permute_dims(bb.emit(relax.TupleGetItem(parts, 0))))  # [4, 2]
            steps.append(bb.emit(relax.op.sum(first)))
        return relax.op.add(x, relax.op.add(steps[0], relax.op.add(steps[1], steps[2])))

    constants, ops = _parts(fold_constants(_main(body, legalize=False)))
    assert not {"relax.split", "relax.permute_dims", "relax.sum"} & set(ops), ops
    assert [c.tolist() for c in constants] == [3 * float(weights[:2].sum())]


@T.prim_func
def _unbuildable(a: T.Buffer((4,), "float32"), b: T.Buffer((4,), "float32")):
    for i in T.thread_binding(4, thread="threadIdx.x"):
        b[i] = a[i]


def test_a_kernel_that_does_not_build_for_the_cpu_is_left_to_run():
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((4,), "float32"))
    gv = bb.add_func(_unbuildable, "gpu_copy")
    with bb.function("main", [x]):
        with bb.dataflow():
            copied = bb.emit(relax.call_tir(gv, [relax.const(np.ones(4, "float32"))], relax.TensorType((4,), "float32")))
            out = bb.emit_output(relax.op.add(x, copied))
        bb.emit_func_output(out)
    folded = fold_constants(bb.get())
    _, ops = _parts(folded)
    assert ops.count("relax.call_tir") == 1 and "relax.add" in ops
