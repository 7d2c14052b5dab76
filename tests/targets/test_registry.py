"""The device table and TargetPlatform rules: every row builds, every enum value has an outcome."""

import botocore.session
import pytest

from neo_local.api.errors import JobFailure
from neo_local.api.requests import OutputConfig, TargetPlatform
from neo_local.targets.devices import DEVICES
from neo_local.targets.options import CompilerOptions
from neo_local.targets.registry import resolve_target


def _enum(shape: str) -> list[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return list(model.shape_for(shape).enum)


def _resolve(device=None, platform=None, options=None):
    return resolve_target(OutputConfig("/tmp/out", device, platform), CompilerOptions.parse(options))


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_every_device_row_builds_a_tvm_target(name):
    import tvm

    spec = _resolve(name)
    target = tvm.target.Target(dict(spec.tvm_target))
    assert str(target.attrs["mcpu"]) == DEVICES[name].mcpu
    assert spec.name == name and spec.device_type == "cpu"
    assert "avx2" in spec.cpu_features  # every x86 row today is at least AVX2


def test_every_api_target_device_has_an_outcome():
    for name in _enum("TargetDevice"):
        if name in DEVICES:
            assert _resolve(name).name == name
        else:
            with pytest.raises(JobFailure) as err:
                _resolve(name)
            assert err.value.reason.startswith(f"ClientError: OutputConfiguration: TargetDevice {name}:")
            assert "Supported TargetDevice values: lambda, ml_c4, ml_c5" in err.value.reason


def test_avx512_devices_need_avx512():
    assert "avx512f" in _resolve("ml_c5").cpu_features
    assert "avx512f" not in _resolve("ml_c4").cpu_features


def test_platform_x86_64_with_mcpu_and_single_quoted_mattr():
    spec = _resolve(platform=TargetPlatform("LINUX", "X86_64"), options="{'mcpu': 'znver3', 'mattr': ['+avx2']}")
    assert spec.name == "LINUX_X86_64"
    assert spec.tvm_target == {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "znver3", "mattr": ["+avx2"]}


def test_platform_default_cpu_is_generic_x86_64():
    spec = _resolve(platform=TargetPlatform("LINUX", "X86_64"))
    assert spec.tvm_target["mcpu"] == "x86-64"
    assert "avx" not in spec.cpu_features


def test_unsupported_platform_is_refused_with_choices():
    with pytest.raises(JobFailure) as err:
        _resolve(platform=TargetPlatform("ANDROID", "ARM64"))
    assert err.value.reason == (
        "ClientError: OutputConfiguration: TargetPlatform Os=ANDROID, Arch=ARM64 is not supported by neo-local yet. "
        "Supported: Os=LINUX, Arch=X86_64"
    )


def test_unknown_mcpu_names_close_matches():
    with pytest.raises(JobFailure) as err:
        _resolve("ml_c4", options='{"mcpu": "skylake-avx"}')
    assert "CompilerOptions mcpu 'skylake-avx' is not a CPU that LLVM knows for x86_64-linux-gnu." in err.value.reason
    assert "Did you mean: skylake-avx512" in err.value.reason


def test_device_mcpu_can_be_overridden():
    assert _resolve("ml_c5", options='{"mcpu": "znver3"}').tvm_target["mcpu"] == "znver3"
