"""``neo-local rpc-server`` and ``neo-local benchmark --rpc`` on loopback: the server is a real
subprocess in TVM's runtime-only mode (``TVM_USE_RUNTIME_LIB=1``, as on a device without the
compiler), the artifact a real compiled one; timings are never asserted, outputs are."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import select
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from neo_local.cli.main import EXIT_JOB_FAILED, EXIT_USAGE, main
from neo_local.rpc import Endpoint, parse_endpoint

REPO = Path(__file__).resolve().parents[2]
FAST = ["--warmup", "1", "--repeat", "5", "--min-repeat", "3", "--budget", "0.05", "--threads", "1",
        "--min-time", "0"]
START_TIMEOUT_S = 120  # a cold start imports TVM on a busy 2-core machine


def start_server(log: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """``neo-local rpc-server --host 127.0.0.1 --port 0 ARGS`` in its own process group; returns
    the process and HOST:PORT once it says it listens."""
    env = {**os.environ, "TVM_USE_RUNTIME_LIB": "1"}
    with open(log, "w") as stderr:  # TVM logs every session there
        proc = subprocess.Popen([sys.executable, "-m", "neo_local.cli", "rpc-server", "--host", "127.0.0.1",
                                 "--port", "0", *args], stdout=subprocess.PIPE, stderr=stderr, text=True,
                                cwd=REPO, env=env, start_new_session=True)
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
    line = proc.stdout.readline() if ready else ""
    if "listening on 127.0.0.1:" not in line:
        stop(proc)
        pytest.fail(f"rpc-server did not start: {line!r} {log.read_text()[-2000:]}")
    return proc, line.split("listening on ")[1].split()[0].rstrip(",")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, group: bool = False) -> str:
    """Send ``sig`` (to the whole group: Ctrl-C in a terminal) and return what it printed after
    the first line; whatever is left of the group is killed in any case."""
    try:
        (os.killpg if group else os.kill)(proc.pid, sig)
        return proc.communicate(timeout=60)[0]
    finally:
        end_group(proc)


def end_group(proc: subprocess.Popen) -> None:
    """Kill what is left of a process group started here (TVM's workers outlive a killed server)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """HOST:PORT of a server for the module's tests; at the end it is stopped as Ctrl-C stops it
    (SIGINT to its process group) while a client holds a session, and must leave no process."""
    log = tmp_path_factory.mktemp("rpc") / "server.log"
    proc, address = start_server(log)
    yield address
    _ctrl_c_stops_the_server_and_its_sessions(proc, address, log)


def _ctrl_c_stops_the_server_and_its_sessions(proc: subprocess.Popen, address: str, log: Path) -> None:
    import psutil

    from neo_local.rpc import connect

    session, _ = connect(parse_endpoint(address))
    assert session.get_function("runtime.NumThreads")() >= 1
    workers = psutil.Process(proc.pid).children(recursive=True)
    assert len(workers) >= 2  # the listening worker and this session's process
    out = stop(proc, signal.SIGINT, group=True)
    assert proc.returncode == 0 and out == "neo-local rpc-server: stopped\n"
    assert "Traceback" not in log.read_text()
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive


@pytest.fixture
def unpacked(matmul_artifact, tmp_path) -> Path:
    with tarfile.open(matmul_artifact[0]) as tar:
        tar.extractall(tmp_path / "artifact", filter="data")
    return tmp_path / "artifact"


def test_benchmark_on_the_remote_device(server, matmul_artifact, capsys):
    assert main(["benchmark", str(matmul_artifact[0]), "--rpc", server, *FAST]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["remote"]["server"] == server
    device = report["remote"]["device"]
    assert device["machine"] == platform.machine().lower() and device["os"] == "LINUX"
    assert device["runtime_only"] is True  # the server ran without TVM's compiler
    assert report["threads"] == 1 and report["inputs"] == {"x": [1, 8], "y": [1, 4]}
    ours = report["neo_local"]
    assert 3 <= ours["runs"] <= 5 and 0 < ours["p50_ms"] <= ours["p90_ms"] <= ours["p99_ms"]
    assert ours["other_cpu_share"] is None  # this machine's load says nothing about the device's


def test_text_report_says_where_it_ran(server, matmul_artifact, capsys):
    assert main(["benchmark", str(matmul_artifact[0]), "--rpc", server, "--output", "text", *FAST]) == 0
    first, _, row = capsys.readouterr().out.splitlines()
    assert f"on the device at {server} ({platform.machine().lower()} LINUX): 1 threads" in first
    assert row.startswith("neo-local ") and row.endswith(" -")


def test_remote_outputs_equal_a_local_run(server, matmul_artifact, unpacked):
    """The device's outputs, copied back, against the same library run here and against numpy."""
    from onnx import numpy_helper
    from onnx_graphs import matmul_add_model

    from neo_local.benchmark import Plan, benchmark_remote
    from neo_local.frontends.base import TensorSpec
    from neo_local.rpc import RemoteVm, connect
    from neo_local.runtime import DLRModel
    from neo_local.verify import sample_inputs

    meta = json.loads((unpacked / "compiled.meta").read_text())
    specs = tuple(TensorSpec(i["name"], tuple(i["shape"]), i["dtype"]) for i in meta["Model"]["Inputs"])
    feeds = sample_inputs(specs, seed=7)
    session, remote = connect(parse_endpoint(server))
    report, remote_out = benchmark_remote(RemoteVm(session, remote, unpacked, meta), specs,
                                          Plan(warmup=1, max_repeat=3, min_repeat=3, budget_s=0.01, timed_s=0.0), 1, feeds)
    assert report.threads == 1 and len(report.neo_local.samples_ms) == 3
    local_out = DLRModel(unpacked).run(feeds)
    np.testing.assert_array_equal(remote_out[0], local_out[0])
    weight = numpy_helper.to_array(matmul_add_model().graph.initializer[0])
    np.testing.assert_allclose(remote_out[0], feeds["x"] @ weight + feeds["y"], rtol=1e-5, atol=1e-6)


def test_the_device_refuses_an_artifact_for_another_architecture(server, unpacked, capsys):
    meta_path = unpacked / "compiled.meta"
    meta = json.loads(meta_path.read_text())
    meta["Target"]["Arch"] = "ARM64"
    meta_path.write_text(json.dumps(meta))
    assert main(["benchmark", str(unpacked), "--rpc", server, *FAST]) == EXIT_JOB_FAILED
    err = capsys.readouterr().err
    machine = platform.machine().lower()
    assert f"the device at {server} ({machine} LINUX) cannot run this artifact: artifact was compiled for ml_c4 " \
           f"(LINUX ARM64, aarch64 CPUs) and cannot run on this {machine} machine" in err


def test_inputs_of_the_wrong_shape_are_refused_here(server, matmul_artifact, capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.ones((2, 8), np.float32))
    np.save(tmp_path / "y.npy", np.ones((1, 4), np.float32))
    inputs = ["--input", f"x={tmp_path / 'x.npy'}", "--input", f"y={tmp_path / 'y.npy'}"]
    assert main(["benchmark", str(matmul_artifact[0]), "--rpc", server, *inputs, *FAST]) == EXIT_JOB_FAILED
    assert "input 'x' must have shape [1, 8], got [2, 8]" in capsys.readouterr().err


def test_an_unreachable_server(matmul_artifact, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    assert main(["benchmark", str(matmul_artifact[0]), "--rpc", f"127.0.0.1:{port}", *FAST]) == EXIT_JOB_FAILED
    err = capsys.readouterr().err
    assert err == f"neo-local benchmark: cannot reach the RPC server at 127.0.0.1:{port}: Connection refused\n"


def test_a_busy_server(server, matmul_artifact, capsys, monkeypatch):
    """TVM's server serves one session at a time: the next client is told, not left waiting."""
    from tvm import rpc

    monkeypatch.setattr("neo_local.rpc.ANSWER_TIMEOUT_S", 2.0)
    endpoint = parse_endpoint(server)
    held = rpc.connect(endpoint.host, endpoint.port)
    try:
        assert main(["benchmark", str(matmul_artifact[0]), "--rpc", server, *FAST]) == EXIT_JOB_FAILED
    finally:
        del held  # ends the session; the client that gave up is then answered and closes at once
    assert (f"the RPC server at {server} accepted the connection but did not answer within 2 s: it serves one "
            f"session at a time, and another client is using it") in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--rpc", "127.0.0.1:9090", "--compare", "onnxruntime", "--model", "m.onnx"],
     "--compare runs the source model in this process, not on the --rpc device"),
    (["--key", "rk3399"], "--key names a device at the RPC tracker given by --rpc HOST:PORT"),
    (["--rpc", "9090"], "--rpc: expected HOST:PORT, got '9090'"),
])
def test_usage_errors(matmul_artifact, capsys, args, message):
    assert main(["benchmark", str(matmul_artifact[0]), *args]) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_the_server_says_why_it_cannot_serve(capsys, monkeypatch):
    monkeypatch.setenv("TVM_NUM_THREADS", "1")  # the command sets it for its sessions
    with socket.socket() as taken, socket.socket() as closed:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        closed.bind(("127.0.0.1", 0))
        port, nobody = taken.getsockname()[1], closed.getsockname()[1]
        closed.close()
        assert main(["rpc-server", "--host", "127.0.0.1", "--port", str(port)]) == EXIT_JOB_FAILED
        err = capsys.readouterr().err
        assert err == f"neo-local rpc-server: cannot serve on 127.0.0.1:{port}: Address already in use\n"
    assert main(["rpc-server", "--port", "0", "--tracker", f"127.0.0.1:{nobody}", "--key", "k"]) == EXIT_JOB_FAILED
    assert f"cannot reach the RPC tracker at 127.0.0.1:{nobody}: Connection refused" in capsys.readouterr().err
    assert main(["rpc-server", "--tracker", f"127.0.0.1:{nobody}"]) == EXIT_USAGE
    assert "--tracker and --key go together" in capsys.readouterr().err


def test_endpoints():
    assert parse_endpoint("device.local:9090") == Endpoint("device.local", 9090)
    assert parse_endpoint("[::1]:9091") == Endpoint("::1", 9091) and str(Endpoint("::1", 9091)) == "[::1]:9091"
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        parse_endpoint("host:70000")


def test_a_device_found_through_a_tracker(matmul_artifact, tmp_path, capsys):
    """TVM's tracker (it needs tornado, a test dependency) in front of the server."""
    from neo_local.rpc import reachable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tracker = subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port",
                                str(port), "--port-end", str(port + 1)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait(lambda: reachable(Endpoint("127.0.0.1", port), "tracker"))
        proc, _ = start_server(tmp_path / "server.log", "--tracker", f"127.0.0.1:{port}", "--key", "loop")
        try:
            _wait(lambda: _free_at_tracker(port, "loop"))
            assert main(["benchmark", str(matmul_artifact[0]), "--rpc", f"127.0.0.1:{port}", "--key", "loop",
                         *FAST]) == 0
            assert json.loads(capsys.readouterr().out)["remote"]["key"] == "loop"
            assert main(["benchmark", str(matmul_artifact[0]), "--rpc", f"127.0.0.1:{port}", "--key", "other",
                         *FAST]) == EXIT_JOB_FAILED
            assert "has no free server with key 'other'; keys: loop (" in capsys.readouterr().err
        finally:
            stop(proc)
    finally:
        end_group(tracker)


def _free_at_tracker(port: int, key: str) -> None:
    from tvm import rpc

    assert rpc.connect_tracker("127.0.0.1", port).summary()["queue_info"][key]["free"] >= 1


def _wait(check, timeout: float = START_TIMEOUT_S) -> None:
    """Retry ``check`` until it stops raising."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
