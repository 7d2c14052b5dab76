"""The example model builders, exporters and the ``models.build`` CLI."""

from __future__ import annotations

import dataclasses
import json
import tarfile

import numpy as np
import pytest
import torch

from models import EXAMPLES, get
from models.build import build_example, main
from models.export import example_inputs, make_archive, reference_outputs

# the issue #6 benchmark families (224x224, 1000 classes): built at full size only in slow runs,
# at a tiny input by test_family_builders_at_a_tiny_input
FAMILIES = ["mobilenet_v3_like", "efficientnet_like", "densenet_like", "inception_like", "squeezenet_like",
            "shufflenet_v2_like", "vgg_like", "vit_like", "resnext_like"]
ALL = [n if n not in FAMILIES else pytest.param(n, marks=pytest.mark.slow) for n in EXAMPLES]
# ResNet-50's ONNX export takes several seconds and ~100 MB: only in slow runs
SMALL = [n for n in EXAMPLES if n not in ("resnet50_like", *FAMILIES)]
EXPORTED = [*SMALL, *(pytest.param(n, marks=pytest.mark.slow) for n in ("resnet50_like", *FAMILIES))]


def _outputs(name: str, seed: int, input_seed: int = 0) -> list[np.ndarray]:
    ex = get(name)
    return reference_outputs(ex.build(seed), example_inputs(ex, input_seed))


@pytest.mark.parametrize("name", ALL)
def test_builder_is_deterministic_per_seed(name):
    a, b, c = _outputs(name, 0), _outputs(name, 0), _outputs(name, 1)
    assert len(a) == len(get(name).outputs)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert max(float(np.abs(x - z).max()) for x, z in zip(a, c)) > 1e-3


@pytest.mark.parametrize("name", ALL)
def test_output_depends_on_input(name):
    """Weights are scaled so the input matters: a broken conv cannot hide under a constant.
    SqueezeNet ends in a global average of a 13x13 map with no dense layer after it, so two noise
    images differ there by about 1% of the largest output (measured 1.1%), not 5%."""
    a, b = _outputs(name, 0, 0)[0], _outputs(name, 0, 1)[0]
    assert np.all(np.isfinite(a))
    share = {"squeezenet_like": 0.005}.get(name, 0.05)
    assert float(np.abs(a - b).max()) > share * float(np.abs(a).max())


@pytest.mark.parametrize("name", ALL)
def test_module_state(name):
    m = get(name).build(0)
    assert not m.training
    assert not any(p.requires_grad for p in m.parameters())
    for bn in (x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)):
        # batch norm must not be an identity (zero mean, unit variance, unit scale, zero shift)
        assert float(bn.running_mean.abs().max()) > 1e-3
        assert float((bn.running_var - 1).abs().max()) > 1e-3
        assert float((bn.weight - 1).abs().max()) > 1e-3
        assert float(bn.bias.abs().max()) > 1e-3
    for ln in (x for x in m.modules() if isinstance(x, torch.nn.LayerNorm)):
        assert float((ln.weight - 1).abs().max()) > 1e-3 and float(ln.bias.abs().max()) > 1e-3


def test_registry_specs():
    assert {"resnet_like", "mobilenet_like", "two_input_net", "int64_input_net", "resnet50_like"} <= set(EXAMPLES)
    ex = EXAMPLES["two_input_net"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ex.name = "x"
    assert json.loads(ex.data_input_config()) == {"input0": [1, 3, 32, 32], "input1": [1, 3, 32, 32]}
    assert EXAMPLES["resnet50_like"].inputs == (("input0", (1, 3, 224, 224), "float32"),)
    feeds = example_inputs(EXAMPLES["int64_input_net"], 0)
    assert feeds["input0"].dtype == np.int64 and feeds["input0"].shape == (1, 16)
    assert 0 <= feeds["input0"].min() and feeds["input0"].max() < 100
    assert _outputs("int64_input_net", 0)[0].shape == (1, 4)
    assert _outputs("resnet_like", 0)[0].shape == (1, 10)
    with pytest.raises(KeyError, match="unknown example model"):
        get("nope")


def test_resnet_like_options():
    from models import resnet_like

    m = resnet_like(seed=0, width=8, blocks=(2, 1))
    with torch.no_grad():
        assert m(torch.zeros(1, 3, 64, 64)).shape == (1, 10)


@pytest.mark.parametrize("name", FAMILIES)
def test_family_builders_at_a_tiny_input(name, tmp_path):
    """Each family builds, depends on its input and exports to ONNX that onnxruntime runs like
    torch, at 64x64 (Inception at 75, the least its stem and reduction allow)."""
    import onnxruntime as ort

    from models import zoo
    from models.export import to_onnx

    size = 75 if name == "inception_like" else 64
    model = getattr(zoo, name)(seed=0, size=size)
    x = np.random.default_rng(0).standard_normal((2, 1, 3, size, size)).astype("float32")
    want = [reference_outputs(model, [v])[0] for v in x]
    assert want[0].shape == (1, 1000) and np.all(np.isfinite(want[0]))
    assert float(np.abs(want[0] - want[1]).max()) > 0.01 * float(np.abs(want[0]).max())
    path = to_onnx(model, [x[0]], tmp_path / "m.onnx", ["input0"])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"input0": x[0]})[0], want[0], rtol=0,
                               atol=1e-4 * max(1.0, float(np.abs(want[0]).max())))


def test_resnet50_like_shape():
    m = get("resnet50_like").build(0)
    n_params = sum(p.numel() for p in m.parameters())
    assert 25_000_000 < n_params < 26_000_000  # torchvision's resnet50 has 25.56M
    assert m.fc.in_features == 2048 and m.fc.out_features == 1000
    assert [len(s) for s in _stages(m)] == [3, 4, 6, 3]


def test_resnext_like_shape():
    m = get("resnext_like").build(0)
    n_params = sum(p.numel() for p in m.parameters())
    assert 24_500_000 < n_params < 25_500_000  # torchvision's resnext50_32x4d has 25.03M
    assert [len(s) for s in _stages(m)] == [3, 4, 6, 3]
    assert {blk.conv2.groups for blk in m.layers} == {32}
    assert [m.layers[i].conv2.in_channels for i in (0, 3, 7, 13)] == [128, 256, 512, 1024]


def _stages(m):
    stages, cur, width = [], [], None
    for blk in m.layers:
        if blk.conv1.out_channels != width:
            width = blk.conv1.out_channels
            cur = []
            stages.append(cur)
        cur.append(blk)
    return stages


@pytest.mark.parametrize("name", EXPORTED)
def test_onnx_archive_matches_torch(name, tmp_path):
    import onnxruntime as ort

    r = build_example(name, "onnx", tmp_path)
    assert r.framework == "ONNX" and not r.cached
    with tarfile.open(r.archive, "r:gz") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [f"{name}.onnx"] and members[0].isfile()
        model = tar.extractfile(members[0]).read()
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == get(name).input_names
    feeds = r.load_inputs()
    got = sess.run(None, feeds)
    want = reference_outputs(get(name).build(0), feeds)
    for g, w in zip(got, want, strict=True):
        # float32 sums in another order: EfficientNet's logits reach 36, where onnxruntime's AVX-512
        # kernels land 1.03e-4 (3e-6 relative) from torch's
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-4)
    # the stored torch outputs are the same
    for s, w in zip(r.load_outputs(), want, strict=True):
        np.testing.assert_array_equal(s, w)


@pytest.mark.parametrize("name", SMALL)
def test_torchscript_archive_matches_torch(name, tmp_path):
    r = build_example(name, "torchscript", tmp_path)
    assert r.framework == "PYTORCH"
    with tarfile.open(r.archive, "r:gz") as tar:
        assert tar.getnames() == [f"{name}.pt"]
        tar.extractall(tmp_path / "x", filter="data")
    loaded = torch.jit.load(str(tmp_path / "x" / f"{name}.pt"))
    got = reference_outputs(loaded, r.load_inputs())
    for g, w in zip(got, r.load_outputs(), strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5)


def test_build_is_cached_and_reproducible(tmp_path):
    first = build_example("two_input_net", "onnx", tmp_path)
    data = first.archive_path.read_bytes()
    again = build_example("two_input_net", "onnx", tmp_path)
    assert again.cached and again.archive == first.archive
    forced = build_example("two_input_net", "onnx", tmp_path, force=True)
    assert not forced.cached and forced.archive_path.read_bytes() == data
    # another seed or format is not "up to date"
    assert not build_example("two_input_net", "onnx", tmp_path, seed=1).cached
    assert not build_example("two_input_net", "torchscript", tmp_path).cached


def test_builds_of_one_example_in_parallel_processes_make_it_once(tmp_path):
    """Test workers run in parallel (pytest-xdist): the second waits for the first's build, then reuses it."""
    import subprocess
    import sys

    script = ("import json, sys; from models.build import build_example; "
              "r = build_example('two_input_net', 'onnx', sys.argv[1]); "
              "print(json.dumps([r.cached, len(r.load_outputs())]))")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = sorted(json.loads(p.communicate(timeout=300)[0]) for p in procs)
    assert results == [[False, 1], [True, 1]]


def test_make_archive(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "m.onnx").write_bytes(b"x")
    (tmp_path / "b" / "m.onnx").write_bytes(b"y")
    (tmp_path / "a" / "extra.txt").write_text("z")
    out = make_archive([tmp_path / "a" / "m.onnx", tmp_path / "a" / "extra.txt"], tmp_path / "o.tar.gz")
    with tarfile.open(out, "r:gz") as tar:
        assert tar.getnames() == ["m.onnx", "extra.txt"]
    with pytest.raises(ValueError, match="same name"):
        make_archive([tmp_path / "a" / "m.onnx", tmp_path / "b" / "m.onnx"], tmp_path / "p.tar.gz")


def test_cli(tmp_path, capsys):
    assert main(["int64_input_net", "--format", "onnx", "--out", str(tmp_path)]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rec["archive"] == str(tmp_path / "int64_input_net.tar.gz")
    assert rec["data_input_config"] == '{"input0": [1, 16]}'
    for suffix in (".tar.gz", ".inputs.npz", ".outputs.npz", ".build.json"):
        assert (tmp_path / f"int64_input_net{suffix}").exists()
    with np.load(tmp_path / "int64_input_net.inputs.npz") as z:
        assert z["input0"].dtype == np.int64
    with pytest.raises(SystemExit):
        main(["no_such_model", "--out", str(tmp_path)])
