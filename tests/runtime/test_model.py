"""DLRModel: loads tarballs and folders, checks inputs, refuses what it cannot run."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from neo_local import compile as neo_compile
from neo_local.runtime import ArtifactError, DLRModel
from models import make_archive
from onnx_graphs import matmul_add_model, save


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rt")
    archive = make_archive([save(matmul_add_model(), tmp / "mm.onnx")], tmp / "mm.tar.gz")
    uri = neo_compile(
        InputConfig={"S3Uri": str(archive), "Framework": "ONNX"},
        OutputConfig={"S3OutputLocation": str(tmp / "out"), "TargetDevice": "ml_c4"},
    )
    assert uri == str(tmp / "out" / "mm-ml_c4.tar.gz")
    return Path(uri)


def _expected(x, y):
    w = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    return x @ w + y


def test_run_by_name_and_by_order(artifact):
    m = DLRModel(artifact)
    assert m.get_input_names() == ["x", "y"]
    assert m.get_input_dtypes() == ["float32", "float32"]
    assert m.get_input_shapes() == [[1, 8], [1, 4]]
    assert m.get_output_names() == ["out"]
    x = np.random.default_rng(1).standard_normal((1, 8)).astype(np.float32)
    y = np.ones((1, 4), np.float32)
    by_name = m.run({"y": y, "x": x})
    by_order = m.run([x, y])
    assert len(by_name) == 1
    np.testing.assert_allclose(by_name[0], _expected(x, y), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(by_name[0], by_order[0])


def test_inputs_of_other_layouts_and_dtypes_give_the_same_result(artifact):
    """An exact array goes to the engine as it is; a transposed view, float64 values and nested
    lists are conformed first, and give the same outputs."""
    m = DLRModel(artifact)
    x = np.random.default_rng(3).standard_normal((1, 8)).astype(np.float32)
    y = np.full((1, 4), 0.5, np.float32)
    want = _expected(x, y)
    assert m._prepare([x, y])[0] is x
    strided = np.asfortranarray(np.repeat(x, 2, axis=0))[:1]  # (1, 8), not C-contiguous
    for xs, ys in ((x, y), (strided, y), (x.astype(np.float64), y.tolist())):
        np.testing.assert_allclose(m.run([xs, ys])[0], want, rtol=1e-5, atol=1e-5)


def test_runs_reuse_input_buffers_but_never_share_results(artifact):
    """The engine copies each run's inputs into the same device tensors; a result already returned
    is the caller's own copy, and the caller's arrays are never written."""
    m = DLRModel(artifact)
    rng = np.random.default_rng(2)
    runs = [(rng.standard_normal((1, 8)).astype(np.float32), rng.standard_normal((1, 4)).astype(np.float32))
            for _ in range(3)]
    kept = [(x.copy(), y.copy()) for x, y in runs]
    outs = [m.run([x, y])[0] for x, y in runs]
    for (x, y), out, (x0, y0) in zip(runs, outs, kept):
        np.testing.assert_allclose(out, _expected(x, y), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(y, y0)
    assert not np.shares_memory(outs[0], outs[1])


def test_float64_inputs_are_cast(artifact):
    m = DLRModel(artifact)
    out = m.run({"x": np.zeros((1, 8)), "y": np.ones((1, 4))})
    np.testing.assert_allclose(out[0], np.ones((1, 4)))


def test_input_errors(artifact):
    m = DLRModel(artifact)
    with pytest.raises(ArtifactError, match=r"inputs must be exactly \['x', 'y'\]; unknown: \['z'\], missing: \['y'\]"):
        m.run({"x": np.zeros((1, 8), np.float32), "z": np.zeros((1, 4), np.float32)})
    with pytest.raises(ArtifactError, match=r"input 'x' must have shape \[1, 8\], got \[2, 8\]"):
        m.run({"x": np.zeros((2, 8), np.float32), "y": np.zeros((1, 4), np.float32)})
    with pytest.raises(ArtifactError, match="input 'x' must be float32, got complex128"):
        m.run({"x": np.zeros((1, 8), complex), "y": np.zeros((1, 4), np.float32)})


def test_unpacked_folder(artifact, tmp_path):
    shutil.unpack_archive(artifact, tmp_path)
    assert DLRModel(tmp_path).get_output_names() == ["out"]


def test_refuses_code_for_cpu_features_this_host_lacks(artifact, tmp_path):
    shutil.unpack_archive(artifact, tmp_path)
    meta = json.loads((tmp_path / "compiled.meta").read_text())
    meta["Target"]["CpuFeatures"] += ["no_such_cpu_flag"]
    (tmp_path / "compiled.meta").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="uses CPU features this machine lacks: no_such_cpu_flag"):
        DLRModel(tmp_path)


def test_refuses_unknown_runtime_and_non_artifacts(artifact, tmp_path):
    shutil.unpack_archive(artifact, tmp_path)
    meta = json.loads((tmp_path / "compiled.meta").read_text())
    meta["Runtime"]["Kind"] = "tensorrt"
    (tmp_path / "compiled.meta").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="artifact runtime 'tensorrt' is not one this runtime can load"):
        DLRModel(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactError, match="has no compiled.meta: not a neo-local artifact"):
        DLRModel(tmp_path / "empty")


def test_tarball_with_a_link_is_refused(artifact, tmp_path):
    import io
    import tarfile

    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(artifact) as src, tarfile.open(bad, "w:gz") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member))
        link = tarfile.TarInfo("escape")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        dst.addfile(link, io.BytesIO())
    with pytest.raises(ArtifactError, match="unexpected entry 'escape': an artifact holds only plain files"):
        DLRModel(bad)
