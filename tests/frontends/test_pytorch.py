"""PyTorch frontend: TorchScript archives, DataInputConfig forms, DTYPE, and its errors."""

import numpy as np
import pytest
import torch

from neo_local.api.errors import JobFailure
from neo_local.frontends import get_frontend
from neo_local.frontends.base import ImportOptions


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x):
        return torch.relu(self.fc(x)), x.sum(dim=1)


def _script(path):
    torch.jit.trace(Tiny().eval(), torch.zeros(2, 6)).save(str(path))


def _load(tmp_path, config, **options):
    return get_frontend("PYTORCH").load(tmp_path, ImportOptions(data_input_config=config, compiler_options=options))


def test_list_form_names_inputs_and_outputs(tmp_path):
    _script(tmp_path / "model.pth")
    imported = _load(tmp_path, "[[2, 6]]")
    assert [(s.name, s.shape, s.dtype) for s in imported.inputs] == [("input0", (2, 6), "float32")]
    assert [(o.name, o.shape) for o in imported.outputs] == [("output0", (2, 3)), ("output1", (2,))]
    x = np.ones((2, 6), dtype=np.float32)
    ref = imported.reference({"input0": x})
    assert np.allclose(ref[1], 6.0)


def test_dict_form_keeps_the_given_name(tmp_path):
    _script(tmp_path / "model.pt")
    assert _load(tmp_path, '{"data": [2, 6]}').inputs[0].name == "data"


def test_data_input_config_is_required(tmp_path):
    _script(tmp_path / "model.pt")
    with pytest.raises(JobFailure, match="DataInputConfig is required for PyTorch models"):
        _load(tmp_path, None)


def test_a_state_dict_is_not_torchscript(tmp_path):
    torch.save(Tiny().state_dict(), tmp_path / "weights.pth")
    with pytest.raises(JobFailure) as err:
        _load(tmp_path, "[[2, 6]]")
    assert err.value.reason.startswith("ClientError: InputConfiguration: weights.pth is not a TorchScript model (")
    assert "torch.jit.trace(model, example).save('model.pth')" in err.value.reason


def test_shape_the_model_cannot_take(tmp_path):
    _script(tmp_path / "model.pt")
    with pytest.raises(JobFailure, match=r"model.pt could not be run with the DataInputConfig shapes \[\[2, 5\]\] \(float32\)"):
        _load(tmp_path, "[[2, 5]]")


def test_two_model_files(tmp_path):
    _script(tmp_path / "a.pt")
    _script(tmp_path / "b.pth")
    with pytest.raises(JobFailure, match=r"Exactly one .pt, .pth or .pt2 file is allowed for PYTORCH models, found 2: a.pt, b.pth"):
        _load(tmp_path, "[[2, 6]]")


def test_int64_dtype(tmp_path):
    class Lookup(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.emb = torch.nn.Embedding(10, 4)

        def forward(self, ids):
            return self.emb(ids).mean(dim=1)

    torch.jit.trace(Lookup().eval(), torch.zeros(1, 5, dtype=torch.int64)).save(str(tmp_path / "m.pt"))
    imported = _load(tmp_path, '{"ids": [1, 5]}', dtype="int64")
    assert imported.inputs[0].dtype == "int64"
    assert imported.outputs[0].shape == (1, 4)


def _export(path, module=None, example=None):
    module = module or Tiny().eval()
    example = example or (torch.zeros(2, 6),)
    torch.export.save(torch.export.export(module, example), str(path))


def test_exported_program_needs_no_data_input_config(tmp_path):
    _export(tmp_path / "model.pt2")
    imported = _load(tmp_path, None)
    assert [(s.name, s.shape, s.dtype) for s in imported.inputs] == [("x", (2, 6), "float32")]
    assert [o.shape for o in imported.outputs] == [(2, 3), (2,)]
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_allclose(imported.reference({"x": x})[1], x.sum(axis=1))


def test_exported_program_shapes_are_fixed(tmp_path):
    _export(tmp_path / "model.pt2")
    assert _load(tmp_path, '{"x": [2, 6]}').inputs[0].shape == (2, 6)
    assert _load(tmp_path, "[[2, 6]]").inputs[0].name == "x"
    with pytest.raises(JobFailure) as err:
        _load(tmp_path, '{"x": [4, 6]}')
    assert err.value.reason == (
        'ClientError: InputConfiguration: DataInputConfig {"x": [4, 6]} does not match the exported program\'s '
        "inputs x [2, 6]; an ExportedProgram's shapes are fixed at export (DataInputConfig may be left out)"
    )


def test_pt2_that_is_not_an_exported_program(tmp_path):
    (tmp_path / "model.pt2").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(JobFailure, match="model.pt2 is not an ExportedProgram saved with torch.export.save"):
        _load(tmp_path, None)


class _Fn(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


#: one module per entry of ATEN_CONVERTERS (the aten operator it exports to after decomposition)
_CONVERTED = {
    "amax.default": lambda x: torch.amax(x, dim=(1, 3), keepdim=True),
    "amin.default": lambda x: torch.amin(x, dim=-1),
    "prod.dim_int": lambda x: x.prod(dim=2, keepdim=True),
    "elu.default": torch.nn.functional.selu,
    "upsample_nearest2d.vec": lambda x: torch.nn.functional.interpolate(x, size=(7, 11), mode="nearest"),
    "div.Tensor_mode": lambda x: (x * 10).long() // 3 + torch.div((x * 10).long(), 4, rounding_mode="trunc"),
}


def test_every_own_aten_converter_is_tested():
    from neo_local.frontends.pytorch import ATEN_CONVERTERS

    assert set(_CONVERTED) == set(ATEN_CONVERTERS)


@pytest.mark.parametrize("op", sorted(_CONVERTED))
def test_own_aten_converter_matches_torch(tmp_path, op):
    """Operators TVM 0.27 lacks (amax, amin, prod over a dim) or gets wrong (elu's scale, so selu;
    nearest upsampling to a non-multiple size) compile and match torch through the .pt2 route."""
    import tvm
    from tvm import relax

    module = _Fn(_CONVERTED[op]).eval()
    x = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    program = torch.export.export(module, (x,))
    assert op in {str(n.target).removeprefix("aten.") for n in program.run_decompositions().graph.nodes}
    torch.export.save(program, str(tmp_path / "model.pt2"))
    imported = _load(tmp_path, None)
    vm = relax.VirtualMachine(tvm.compile(imported.ir, target="llvm"), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(x.numpy())).numpy()
    expected = module(x).numpy()
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
