import pytest

from neo_local.api.errors import JobFailure
from neo_local.targets.options import CompilerOptions


def test_empty_options():
    assert CompilerOptions.parse(None) == CompilerOptions()
    assert CompilerOptions.parse("") == CompilerOptions()


def test_dtype_spellings():
    assert CompilerOptions.parse('{"DTYPE": "long"}').dtype == "int64"
    assert CompilerOptions.parse('{"dtype": "float"}').dtype == "float32"


def test_bad_dtype():
    with pytest.raises(JobFailure, match="CompilerOptions DTYPE 'int8' is not supported; use one of float32, float, int64, long"):
        CompilerOptions.parse('{"dtype": "int8"}')


def test_gpu_code_aliases_are_one_key():
    assert CompilerOptions.parse("{'gpu-code': 'sm_72'}").values == {"gpu_code": "sm_72"}
    assert CompilerOptions.parse('{"gpu_code": "sm_72"}').values == {"gpu_code": "sm_72"}


def test_mattr_string_and_list():
    assert CompilerOptions.parse('{"mattr": "+avx2,+fma"}').mattr == ("+avx2", "+fma")
    assert CompilerOptions.parse("{'mattr': ['+neon']}").mattr == ("+neon",)


def test_mattr_without_sign():
    with pytest.raises(JobFailure, match=r"mattr entries must start with \+ or - \(e.g. '\+avx2'\), got neon"):
        CompilerOptions.parse("{'mattr': ['neon']}")


def test_unknown_key_lists_known_keys():
    with pytest.raises(JobFailure, match="Unknown CompilerOptions key 'mcpus'. Known keys: .*mcpu"):
        CompilerOptions.parse('{"mcpus": "x"}')


def test_not_an_object():
    with pytest.raises(JobFailure, match="ClientError: OutputConfiguration: CompilerOptions must be a JSON object"):
        CompilerOptions.parse('["mcpu"]')
    with pytest.raises(JobFailure, match="CompilerOptions is not valid JSON"):
        CompilerOptions.parse("{mcpu: skylake")


def test_neuron_flag_string():
    options = CompilerOptions.parse('"--verbose 1 --num-neuroncores 2 -O2"')
    assert options.neuron_flags == "--verbose 1 --num-neuroncores 2 -O2"
    assert options.values == {} and options.mcpu is None
    with pytest.raises(JobFailure, match="cannot be split: No closing quotation"):
        CompilerOptions.parse('"--name \'x"')


def test_android_platform_levels():
    assert CompilerOptions.parse("{'ANDROID_PLATFORM': 25}").android_platform == 25
    assert CompilerOptions.parse('{"ANDROID_PLATFORM": "29"}').android_platform == 29
    for bad in ("20", "30", "true", '"x"'):
        with pytest.raises(JobFailure, match="ANDROID_PLATFORM must be an Android API level from 21 to 29, got"):
            CompilerOptions.parse(f'{{"ANDROID_PLATFORM": {bad}}}')


def test_precision_spellings():
    assert CompilerOptions.parse(None).precision == "float32"
    assert CompilerOptions.parse('{"precision": "bf16"}').precision == "bfloat16"
    assert CompilerOptions.parse("{'precision': 'fp32'}").precision == "float32"


def test_bad_precision():
    with pytest.raises(JobFailure, match="CompilerOptions precision 'int8' is not supported; use one of float32, fp32, "
                                         "bfloat16, bf16"):
        CompilerOptions.parse('{"precision": "int8"}')
