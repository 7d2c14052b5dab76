from pathlib import Path

from neo_local.matrix import BEGIN, END, render, splice

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_matrix_is_current():
    text = README.read_text()
    assert splice(text, render()) == text, "run: python -m neo_local.matrix --update README.md"


def test_matrix_lists_every_framework_and_device():
    matrix = render()
    assert "| ONNX | .onnx | supported |" in matrix
    assert "| MXNET | -symbol.json, .params | supported |" in matrix
    assert "| ml_c5 | LINUX / X86_64 | skylake-avx512 | supported: run on the host, compared |" in matrix
    assert "| ml_g4dn | LINUX / X86_64 | cascadelake | supported (CUDA (NVIDIA) kernels for the NVIDIA T4 (sm_75), " in (
        matrix
    )
    assert "| ml_p2 | | | refused (ClientError): Kepler (sm_37) is beyond CUDA 12's NVRTC |" in matrix
    assert "not yet (clear ClientError)" not in matrix
    assert "| Os=ANDROID, Arch=ARM64 | aarch64-linux-android<ANDROID_PLATFORM> | generic |" in matrix
    assert "Os=WINDOWS" not in matrix  # the API's TargetPlatform has no Windows
    assert BEGIN not in matrix and END not in matrix
