"""The tree-c runtime engine through DLRModel: any number of rows, NaN as missing, clear errors,
and no treelite/tl2cgen needed to run an artifact."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from models.tree_models import synthetic_data, xgboost_model
from neo_local.backends.base import BuiltModel
from neo_local.backends.treelite_c import build
from neo_local.frontends.base import ImportedModel, TensorSpec
from neo_local.frontends.tree_common import LinearModel, NativeModel, TreeEnsemble
from neo_local.packaging import build_meta, write_meta
from neo_local.runtime import ArtifactError, DLRModel
from neo_local.runtime.engines.tree import open_engine
from neo_local.targets.spec import TargetSpec

TARGET = TargetSpec(name="ml_c4", os="LINUX", arch="X86_64",
                    tvm_target={"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "core-avx2"})


def _artifact(folder, ir: NativeModel, output_shape, rows=1) -> BuiltModel:
    model = ImportedModel(
        ir=ir,
        inputs=(TensorSpec("data", (rows, ir.num_feature), "float32"),),
        outputs=(TensorSpec("out", output_shape, "float32"),),
        ir_kind="tree-c",
    )
    built = build(model, TARGET, folder)
    write_meta(folder, build_meta(model, TARGET, built, "XGBOOST"))
    return built


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory):
    import treelite

    folder = tmp_path_factory.mktemp("tree-artifact")
    booster = xgboost_model("multiclass")
    booster.save_model(str(folder / "src.json"))
    trees = bytes(treelite.frontend.load_xgboost_model(str(folder / "src.json")).serialize_bytes())
    (folder / "src.json").unlink()
    _artifact(folder, NativeModel(7, TreeEnsemble(trees, 3)), (1, 3))
    return folder, booster


@pytest.mark.parametrize("rows", [0, 1, 5, 1000])
def test_any_number_of_rows(multiclass, rows):
    import xgboost

    folder, booster = multiclass
    model = DLRModel(folder)
    assert model.get_input_shapes() == [[1, 7]]  # as compiled.meta records it
    x, _ = synthetic_data("multiclass", seed=rows, rows=max(rows, 1))
    x = x[:rows]
    if rows:
        x[::3, 2] = np.nan
    (out,) = model.run({"data": x})
    assert out.shape == (rows, 3) and out.dtype == np.float32
    if rows:
        expected = booster.predict(xgboost.DMatrix(x))
        print(f"{rows} rows: max abs error {np.abs(out - expected).max():.3g}")
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_float64_and_lists_are_converted(multiclass):
    folder, _ = multiclass
    model = DLRModel(folder)
    x = np.zeros((2, 7))
    np.testing.assert_array_equal(model.run(x)[0], model.run([x.astype(np.float32).tolist()])[0])


def test_the_feature_count_is_checked(multiclass):
    folder, _ = multiclass
    model = DLRModel(folder)
    with pytest.raises(ArtifactError, match=r"input 'data' must have shape \[1, 7\] \(any number of rows\), got \[4, 6\]"):
        model.run(np.zeros((4, 6), dtype=np.float32))
    with pytest.raises(ArtifactError, match=r"got \[7\]"):
        model.run(np.zeros(7, dtype=np.float32))


def test_one_dimensional_output(tmp_path):
    ir = NativeModel(3, LinearModel(np.array([[1.0, 2.0, 3.0]]), np.array([0.5])))
    _artifact(tmp_path, ir, (2,), rows=2)
    (out,) = DLRModel(tmp_path).run(np.array([[1, 1, 1], [0, 0, 2], [1, 0, 0]], dtype=np.float32))
    np.testing.assert_allclose(out, [6.5, 6.5, 1.5])


def test_an_other_abi_version_is_refused(tmp_path):
    (tmp_path / "fake.c").write_text(
        "#include <stdint.h>\nint32_t neo_abi_version(void) { return 2; }\n"
        "int32_t neo_num_feature(void) { return 1; }\nint32_t neo_num_output(void) { return 1; }\n"
    )
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(tmp_path / "compiled.so"), str(tmp_path / "fake.c")], check=True)
    meta = {"Runtime": {"Library": "compiled.so"}, "Model": {"Outputs": [{"name": "o", "shape": [1], "dtype": "float32"}]}}
    with pytest.raises(ArtifactError, match="compiled.so has tree-c ABI version 2; this runtime reads version 1"):
        open_engine(tmp_path, meta, "cpu", 0)
    with pytest.raises(ArtifactError, match="tree-c artifacts run on the cpu, not cuda"):
        open_engine(tmp_path, meta, "cuda", 0)


def test_running_needs_neither_treelite_nor_tl2cgen(multiclass):
    folder, _ = multiclass
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        from neo_local.runtime import DLRModel
        out = DLRModel({str(folder)!r}).run(np.zeros((3, 7), dtype=np.float32))[0]
        print(json.dumps({{"shape": list(out.shape), "loaded": sorted(m for m in ("treelite", "tl2cgen", "xgboost", "sklearn", "tvm") if m in sys.modules)}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == {"shape": [3, 3], "loaded": []}
