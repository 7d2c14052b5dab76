"""The runtime's thread defaults: a thread per physical core, not bound to cores (in TVM's pool
and in the one Linux CPU libraries carry)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from neo_local import compile as neo_compile
from neo_local.runtime.threads import thread_env
from neo_local.targets.cpu_features import host_cpu_name, physical_cores
from models import make_archive
from onnx_graphs import relu_model, save

#: loads an artifact, runs it once, and prints each thread's CPU affinity
_CHILD = """
import glob, json, os, sys
import numpy as np
from neo_local.runtime import DLRModel
m = DLRModel(sys.argv[1])
m.run([np.ones(m.get_input_shapes()[0], np.float32)])
tids = [int(t.rsplit("/", 1)[1]) for t in glob.glob("/proc/self/task/*")]
print(json.dumps([sorted(os.sched_getaffinity(t)) for t in tids]))
"""


def test_thread_env_defaults_and_keeps_the_users_values():
    assert thread_env({}) == {"TVM_NUM_THREADS": str(physical_cores()), "TVM_BIND_THREADS": "0"}
    assert thread_env({"TVM_NUM_THREADS": "3", "TVM_BIND_THREADS": "1"}) == {
        "TVM_NUM_THREADS": "3", "TVM_BIND_THREADS": "1"}


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
                    reason="reads Linux thread affinities; needs two CPUs for a thread pool")
def test_a_runtime_process_binds_no_thread_to_a_core_unless_asked(tmp_path):
    # a large elementwise op: its kernel is parallel, so the first run starts TVM's pool
    archive = make_archive([save(relu_model(shape=(64, 65536)), tmp_path / "r.onnx")], tmp_path / "r.tar.gz")
    artifact = neo_compile(
        InputConfig={"S3Uri": str(archive), "Framework": "ONNX", "DataInputConfig": '{"data": [64, 65536]}'},
        # this host's CPU (ml_c5's AVX-512 code would not load on an AVX2 host), scheduled: parallel
        OutputConfig={"S3OutputLocation": str(tmp_path / "out"), "TargetPlatform": {"Os": "LINUX", "Arch": "X86_64"},
                      "CompilerOptions": json.dumps({"mcpu": host_cpu_name()})},
    )

    def affinities(**env: str) -> list[list[int]]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("TVM_")}
        proc = subprocess.run([sys.executable, "-c", _CHILD, artifact], env={**base, "TVM_NUM_THREADS": "2", **env},
                              capture_output=True, text=True, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])

    assert [a for a in affinities(TVM_BIND_THREADS="1") if len(a) == 1], "no worker bound to a core: no pool started?"
    assert not [a for a in affinities() if len(a) == 1]
