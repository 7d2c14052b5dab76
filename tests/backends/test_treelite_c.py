"""tree-c backend: compiler flags from the target, the library's C ABI, tree and linear models
built from a NativeModel by hand and checked against numpy / XGBoost, and compiler errors."""

import ctypes
import os
import subprocess

import numpy as np
import pytest

from models.tree_models import SKLEARN_KINDS, save_sklearn, sklearn_model, synthetic_data, xgboost_model
from neo_local.api.errors import JobFailure
from neo_local.backends import select_backend
from neo_local.backends.treelite_c import build, cpu_flags, entry_source
from neo_local.frontends.base import ImportedModel, TensorSpec
from neo_local.frontends.tree_common import LinearModel, NativeModel, Scaler, TreeEnsemble
from neo_local.targets.spec import TargetSpec


def _target(mcpu="core-avx2", mattr=(), name="ml_c4", linker=None):
    tvm_target = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": mcpu}
    if mattr:
        tvm_target["mattr"] = list(mattr)
    return TargetSpec(name=name, os="LINUX", arch="X86_64", tvm_target=tvm_target, linker=linker)


def _imported(ir: NativeModel) -> ImportedModel:
    return ImportedModel(
        ir=ir,
        inputs=(TensorSpec("data", (1, ir.num_feature), "float32"),),
        outputs=(TensorSpec("out", (1, ir.num_output), "float32"),),
        ir_kind="tree-c",
    )


def _predict(library, x: np.ndarray, k: int) -> np.ndarray:
    lib = ctypes.CDLL(str(library))
    lib.neo_predict.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    lib.neo_predict.restype = ctypes.c_int32
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.full((x.shape[0], k), -7.0, dtype=np.float32)
    assert lib.neo_predict(x.ctypes.data, x.shape[0], out.ctypes.data) == 0
    return out


@pytest.mark.parametrize("mcpu,mattr,expected", [
    ("core-avx2", (), ["-march=haswell", "-mtune=haswell"]),
    ("haswell", (), ["-march=haswell", "-mtune=haswell"]),
    ("skylake-avx512", (), ["-march=skylake-avx512", "-mtune=skylake-avx512"]),
    ("znver3", ("+avx2", "-avx512f"), ["-march=znver3", "-mtune=znver3", "-mavx2", "-mno-avx512f"]),
    ("x86-64", (), ["-march=x86-64", "-mtune=generic"]),
])
def test_cpu_flags_follow_mcpu_and_mattr(mcpu, mattr, expected):
    assert cpu_flags(_target(mcpu, mattr)) == expected


def test_the_backend_is_selected_by_ir_kind():
    ir = NativeModel(3, LinearModel(np.ones((1, 3)), np.zeros(1)))
    assert select_backend(_imported(ir), _target()) is build


def test_linear_model_with_scaler_matches_numpy(tmp_path):
    rng = np.random.default_rng(0)
    f = 5
    coef, intercept = rng.standard_normal((3, f)), rng.standard_normal(3)
    mean, scale = rng.standard_normal(f), rng.uniform(0.5, 2.0, f)
    ir = NativeModel(f, LinearModel(coef, intercept, "softmax"), scalers=(Scaler(mean, scale),))
    built = build(_imported(ir), _target(), tmp_path)
    assert built.library == "compiled.so" and built.runtime == "tree-c"
    assert built.compiler_versions["cc-flags"] == "-O3 -fPIC -std=gnu99 -ffp-contract=off -march=haswell -mtune=haswell -shared"
    assert "12." in built.compiler_versions["cc"]  # the gcc on this machine
    assert "treelite" not in built.compiler_versions  # no trees, no treelite

    x = rng.standard_normal((64, f)).astype(np.float32)
    scaled = ((x - mean).astype(np.float32) / scale).astype(np.float32)
    z = scaled.astype(np.float64) @ coef.T + intercept
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    got = _predict(tmp_path / "compiled.so", x, 3)
    print(f"linear softmax: max abs error {np.abs(got - expected).max():.3g}")
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_logistic_link_gives_both_class_probabilities(tmp_path):
    coef, intercept = np.array([[1.5, -2.0]]), np.array([0.25])
    ir = NativeModel(2, LinearModel(coef, intercept, "logistic"))
    assert ir.num_output == 2
    build(_imported(ir), _target(), tmp_path)
    x = np.array([[0, 0], [1, 1], [-3, 2]], dtype=np.float32)
    p = 1 / (1 + np.exp(-(x.astype(np.float64) @ coef[0] + intercept[0])))
    np.testing.assert_allclose(_predict(tmp_path / "compiled.so", x, 2), np.stack([1 - p, p], axis=1), rtol=1e-6)


@pytest.mark.parametrize("finish", ["none", "argmax"])
def test_tree_ensemble_matches_xgboost_with_missing_values(tmp_path, finish):
    import treelite
    import xgboost

    booster = xgboost_model("multiclass")
    path = tmp_path / "m.json"
    booster.save_model(str(path))
    trees = bytes(treelite.frontend.load_xgboost_model(str(path)).serialize_bytes())
    ir = NativeModel(7, TreeEnsemble(trees, 3), finish=finish)
    build(_imported(ir), _target(), tmp_path / "out")
    x, _ = synthetic_data("multiclass", seed=9, rows=200)
    x[::4, 0] = np.nan
    x[1::5, 3] = np.nan
    got = _predict(tmp_path / "out" / "compiled.so", x, ir.num_output)
    expected = booster.predict(xgboost.DMatrix(x))
    if finish == "argmax":
        np.testing.assert_array_equal(got[:, 0], expected.argmax(axis=1))
    else:
        print(f"xgboost trees: max abs error {np.abs(got - expected).max():.3g}")
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_big_ensembles_are_split_over_files_and_compiled_in_parallel(tmp_path):
    import treelite
    import xgboost

    x, y = synthetic_data("regression", rows=300)
    booster = xgboost.train({"max_depth": 3, "nthread": 1}, xgboost.DMatrix(x, label=y), 150)
    booster.save_model(str(tmp_path / "m.ubj"))
    tl = treelite.frontend.load_xgboost_model(str(tmp_path / "m.ubj"))
    ir = NativeModel(7, TreeEnsemble(bytes(tl.serialize_bytes()), 1))
    built = build(_imported(ir), _target(), tmp_path / "out")
    # tl2cgen: main.c + 150 trees in 3 files of up to 64; then neo_predict.c
    assert built.details["c_files"] == 1 + 3 + 1
    got = _predict(tmp_path / "out" / "compiled.so", x, 1)[:, 0]
    np.testing.assert_allclose(got, booster.predict(xgboost.DMatrix(x)), rtol=1e-5, atol=1e-4)


def test_library_exports_the_abi_and_needs_only_libc_and_libm(tmp_path):
    ir = NativeModel(4, LinearModel(np.ones((2, 4)), np.zeros(2)))
    build(_imported(ir), _target(), tmp_path)
    library = tmp_path / "compiled.so"
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True).stdout
    for name in ("neo_abi_version", "neo_num_feature", "neo_num_output", "neo_predict"):
        assert f" T {name}" in symbols
    needed = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True).stdout
    libs = sorted(line.split("[")[1].rstrip("]") for line in needed.splitlines() if "(NEEDED)" in line)
    assert "libc.so.6" in libs and set(libs) <= {"libc.so.6", "libm.so.6"}, libs
    lib = ctypes.CDLL(str(library))
    assert (lib.neo_abi_version(), lib.neo_num_feature(), lib.neo_num_output()) == (1, 4, 2)


def test_avx512_target_is_built_with_avx512(tmp_path):
    ir = NativeModel(16, LinearModel(np.ones((8, 16)), np.zeros(8)))
    built = build(_imported(ir), _target("skylake-avx512", name="ml_c5"), tmp_path)
    assert "-march=skylake-avx512" in built.compiler_versions["cc-flags"]
    disassembly = subprocess.run(["objdump", "-d", str(tmp_path / "compiled.so")], capture_output=True, text=True).stdout
    assert "ymm" in disassembly or "zmm" in disassembly  # vectorized for the target, not baseline SSE2


def test_an_mcpu_the_c_compiler_does_not_know(tmp_path):
    ir = NativeModel(2, LinearModel(np.ones((1, 2)), np.zeros(1)))
    with pytest.raises(JobFailure) as err:
        build(_imported(ir), _target("not-a-cpu"), tmp_path, cc="cc")
    assert err.value.reason.startswith(
        "ClientError: OutputConfiguration: the C compiler cc that builds tree and linear models cannot build for "
        "ml_c4 with -march=not-a-cpu -mtune=not-a-cpu (mcpu not-a-cpu): "
    ), err.value.reason


def test_a_cpu_newer_than_the_c_compiler_gets_its_x86_64_level(tmp_path):
    """gcc 12 does not know znver5 (LLVM does): the model is built for x86-64-v4, the level of Zen 5's
    features, tuned generically, and says so in its flags; a cc that knows znver5 takes it as it is."""
    ir = NativeModel(16, LinearModel(np.ones((8, 16)), np.zeros(8)))
    built = build(_imported(ir), _target("znver5"), tmp_path)
    knows = subprocess.run(["cc", "-march=znver5", "-x", "c", "-c", "-o", os.devnull, "-"], input="int x;\n",
                           capture_output=True, text=True).returncode == 0
    want = "-march=znver5 -mtune=znver5" if knows else "-march=x86-64-v4 -mtune=generic"
    assert want in built.compiler_versions["cc-flags"], built.compiler_versions


def test_the_compiler_can_be_replaced(tmp_path):
    """A cross compiler plugs in as ``cc`` (or the target's ``linker``); here a wrapper script."""
    log = tmp_path / "calls.txt"
    wrapper = tmp_path / "my-cc"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec gcc "$@"\n')
    wrapper.chmod(0o755)
    ir = NativeModel(2, LinearModel(np.ones((1, 2)), np.zeros(1)))
    built = build(_imported(ir), _target(), tmp_path / "a", cc=str(wrapper))
    assert built.compiler_versions["cc"].startswith(f"{wrapper}: gcc")
    assert "-shared" in log.read_text()
    build(_imported(ir), _target(linker=str(wrapper)), tmp_path / "b")
    assert str(tmp_path / "b" / "compiled.so") in log.read_text()
    with pytest.raises(JobFailure, match="no C compiler '/nonexistent/cc' on this machine"):
        build(_imported(ir), _target(), tmp_path / "c", cc="/nonexistent/cc")


def test_entry_source_writes_exact_constants():
    ir = NativeModel(1, LinearModel(np.array([[0.1]]), np.array([1 / 3])))
    source = entry_source(ir, header=None)
    assert (0.1).hex() in source and (1 / 3).hex() in source


@pytest.mark.parametrize("kind", SKLEARN_KINDS)
def test_every_sklearn_kind_converts_and_builds_to_the_estimators_numbers(kind, tmp_path):
    """The loader's conversion run here (this test made the pickle), built, called through ctypes,
    compared with predict_proba / predict. End to end through compile(): tests/test_pipeline_trees.py."""
    from neo_local.frontends.sklearn import _native_model
    from neo_local.frontends.sklearn_loader import convert

    estimator = sklearn_model(kind)
    model_file = save_sklearn(estimator, tmp_path / "model.joblib")
    info = convert(model_file, tmp_path)
    with np.load(tmp_path / "arrays.npz", allow_pickle=False) as arrays:
        ir = _native_model(info, {k: arrays[k] for k in arrays.files}, tmp_path)
    build(_imported(ir), _target(), tmp_path / "out")
    x, _ = synthetic_data("regression", seed=2, rows=200)
    classifier = info["classifier"]
    expected = estimator.predict_proba(x) if classifier else estimator.predict(x)
    got = _predict(tmp_path / "out" / "compiled.so", x, ir.num_output).reshape(expected.shape)
    err = np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-6)
    print(f"{kind}: {info['estimator']}, max rel error {err:.3g}")
    assert err < 1e-5


def test_gpu_targets_are_refused_not_given_cpu_code():
    from neo_local.api.requests import OutputConfig
    from neo_local.targets.options import CompilerOptions
    from neo_local.targets.registry import resolve_target

    deeplens = resolve_target(OutputConfig("/tmp/out", "deeplens"), CompilerOptions.parse(None))
    with pytest.raises(JobFailure) as err:
        cpu_flags(deeplens)
    assert err.value.reason == (
        "ClientError: OutputConfiguration: tree and linear models are built as C code for CPUs only, not for "
        "deeplens's Intel HD Graphics 505; for its CPU give TargetPlatform Os=LINUX, Arch=X86_64 with CompilerOptions "
        '{"mcpu": "goldmont"}'
    )
