"""Every glibc Linux platform, end to end, with kernels that call the C math library: the cross
links find libm (they did not: the library named an ``expf`` nothing provides), and no library
names a glibc function at a version newer than the floor (``targets.glibc``), so it loads where
glibc is older than this host's. Each is run and compared where this host can (x86_64; aarch64 and
armv7 under qemu), checked structurally otherwise."""

import json
import re
import shutil
import subprocess
import tarfile

import pytest

import neo_local
from models.export import make_archive
from neo_local.targets import glibc
from onnx_graphs import math_functions_model, save

#: (TargetDevice or TargetPlatform, its linker, the statuses its check may reach here)
TARGETS = [
    ({"TargetDevice": "ml_c5"}, "gcc", {"passed", "skipped"}),
    ({"TargetDevice": "ml_c6g"}, "aarch64-linux-gnu-gcc", {"passed", "structural"}),
    ({"TargetDevice": "rasp3b"}, "arm-linux-gnueabihf-gcc", {"passed", "structural"}),
    ({"TargetPlatform": {"Os": "LINUX", "Arch": "X86"}}, "i686-linux-gnu-gcc", {"structural"}),
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("math")
    return make_archive([save(math_functions_model(), folder / "math.onnx")], folder / "math.tar.gz")


@pytest.mark.parametrize("output,linker,statuses", TARGETS, ids=lambda v: str(v) if isinstance(v, str) else None)
def test_math_kernels_link_libm_at_versions_no_newer_than_the_floor(archive, tmp_path, output, linker, statuses):
    if shutil.which(linker) is None:
        pytest.skip(f"{linker} is not installed (scripts/setup.sh installs it as root)")
    uri = neo_local.compile(
        InputConfig={"S3Uri": f"file://{archive}", "Framework": "ONNX", "DataInputConfig": '{"x": [1, 64]}'},
        OutputConfig={"S3OutputLocation": str(tmp_path / "out"), **output},
    )
    with tarfile.open(uri) as tar:
        tar.extractall(tmp_path / "a", filter="data")
    meta = json.loads((tmp_path / "a" / "compiled.meta").read_text())
    verification = meta["Verification"]
    assert verification["status"] in statuses, verification
    if verification["status"] == "passed":
        assert verification["max_rel_error"] < 1e-3
    library = tmp_path / "a" / "compiled.so"
    symbols = subprocess.run(["readelf", "-W", "--dyn-syms", library], capture_output=True, text=True).stdout
    needed = subprocess.run(["readelf", "-W", "-d", library], capture_output=True, text=True).stdout
    versioned = set(re.findall(r"\b\w+@GLIBC_[\d.]+", symbols))
    assert glibc.too_new(versioned) == []
    called = {name.split("@")[0] for name in versioned}
    assert {"powf", "sinf", "atanf", "asinf"} <= called, called
    assert "[libm.so.6]" in needed
