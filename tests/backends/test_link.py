"""The link step of a TVM library (``backends.link``): a kernel calling libm, exported for each
glibc toolchain here, links libm and names only versions at or below the glibc floor; CPU
libraries carry the thread pool, GPU hosts' do not."""

from __future__ import annotations

import shutil
import subprocess

import pytest

tvm = pytest.importorskip("tvm")

from tvm.script import ir as I  # noqa: E402
from tvm.script import tirx as T  # noqa: E402

from neo_local.backends import link  # noqa: E402
from neo_local.targets.binaries import structural_check  # noqa: E402


@I.ir_module
class Exp:
    @T.prim_func
    def main(x: T.Buffer((64,), "float32"), out: T.Buffer((64,), "float32")):
        for i in T.parallel(64):
            out[i] = T.call_extern("float32", "expf", x[i])


TOOLCHAINS = [
    ("x86_64-linux-gnu", None, "X86_64"),
    ("aarch64-linux-gnu", "aarch64-linux-gnu-gcc", "ARM64"),
    ("armv7l-linux-gnueabihf", "arm-linux-gnueabihf-gcc", "ARM_EABIHF"),
]


def test_nothing_to_add_leaves_tvms_default_link():
    assert link.fcompile({"kind": "llvm", "mtriple": "x86_64-pc-windows-gnu"}) is None
    assert link.fcompile({"kind": "llvm", "mtriple": "x86_64-linux-gnu"}) is not None


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu-host"])
@pytest.mark.parametrize("mtriple,linker,arch", TOOLCHAINS)
def test_a_libm_kernel_links_within_the_glibc_floor(tmp_path, mtriple, linker, arch, gpu):
    if linker is not None and shutil.which(linker) is None:
        pytest.skip(f"{linker} is not installed (scripts/setup.sh installs it as root)")
    target = {"kind": "llvm", "mtriple": mtriple, **({"mfloat-abi": "hard"} if "gnueabihf" in mtriple else {})}
    library = tmp_path / "lib.so"
    tvm.compile(Exp, target=tvm.target.Target(target)).export_library(
        str(library), fcompile=link.fcompile(target, linker, gpu=gpu)
    )
    summary = structural_check(library, "LINUX", arch)  # refuses a version above the floor
    assert "libm.so.6" in summary.split(";")[0]
    symbols = subprocess.run(["readelf", "-W", "--dyn-syms", library], capture_output=True, text=True).stdout
    assert "expf@GLIBC_" in symbols
    assert ("neo_local_set_threads" in symbols) is not gpu  # the thread pool's function
