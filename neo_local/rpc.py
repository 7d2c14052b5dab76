"""TVM RPC for timing an artifact on another machine: the device side (``neo-local rpc-server``)
and this side (``neo-local benchmark --rpc``).

Both use the RPC of the apache-tvm wheel. The device needs only TVM's runtime
(``TVM_USE_RUNTIME_LIB=1`` works). Besides TVM's own functions, the server registers two that
let this side check an artifact before uploading it: what the device is, and the runtime's own
"can this machine run it" check (OS, CPU architecture and features, GPU runtime), run there.
"""

from __future__ import annotations

import json
import platform
import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

# Imported here, not in the functions that hold a session: importing TVM the first time leaves a
# reference cycle with the frames on the stack (a caught exception's traceback), which would
# keep such a function's session open, and with it the server, until the garbage collector runs.
import tvm
import tvm_ffi
from tvm import rpc
from tvm.runtime.vm import VirtualMachine

from neo_local.runtime.threads import SET_THREADS

DEVICE_INFO = "neo_local.device_info"
CHECK_ARTIFACT = "neo_local.check_artifact"
#: seconds to wait for a TCP connection to a server or tracker before saying it is unreachable
CONNECT_TIMEOUT_S = 10.0
#: seconds to wait for a server to answer a connection: it serves one session at a time, and
#: TVM's client would wait for the current one to end without a word
ANSWER_TIMEOUT_S = 60.0
_TIMED = "neo_local_timed"  # the VM closure time_evaluator runs: main on the uploaded inputs


class RpcError(RuntimeError):
    """The server, the tracker or the session failed; the message says where and why."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """``HOST:PORT`` (an IPv6 host in brackets: ``[::1]:9090``)."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return Endpoint(host, int(port))


def reachable(endpoint: Endpoint, what: str) -> None:
    """Raise RpcError unless a TCP connection to ``endpoint`` opens: TVM's own connect gives no
    reason and its tracker client retries for a minute."""
    try:
        socket.create_connection((endpoint.host, endpoint.port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise RpcError(f"cannot reach the {what} at {endpoint}: {e.strerror or e}") from None


# --------------------------------------------------------------------------- the device side


def free_port(host: str, port: int = 0) -> int:
    """``port`` if it can be listened on now, else OSError; with 0, any free port (TVM's server
    cannot bind port 0 itself, and reports a taken port with its worker's traceback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as TVM's server binds
        s.bind((host, port))
        return s.getsockname()[1]


def start_server(host: str, port: int, tracker: Endpoint | None, key: str) -> Any:
    """Start TVM's RPC server (``tvm.rpc.Server``: a worker process that listens and forks one
    process per session) with neo-local's device functions; returns it once it listens.

    The worker starts with SIGINT ignored, so that Ctrl-C in a terminal reaches only this
    process, which then ends the worker and its sessions (``Server.terminate``)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return rpc.Server(host, port, port + 1, tracker_addr=(tracker.host, tracker.port) if tracker else None,
                          key=key, server_init_callback=register_device_functions)
    finally:
        signal.signal(signal.SIGINT, previous)


def serve_until_stopped(server: Any) -> bool:
    """Block until SIGINT or SIGTERM (True) or until the server's worker ends by itself
    (False), then end the worker and its sessions."""
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            if not server.proc.is_alive():
                return False
        return True
    finally:
        server.terminate()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def register_device_functions() -> None:
    """Register DEVICE_INFO and CHECK_ARTIFACT; runs in the server's worker before it listens
    (sessions are forked from it and inherit them)."""
    tvm_ffi.register_global_func(DEVICE_INFO, lambda: json.dumps(device_info()), override=True)
    tvm_ffi.register_global_func(CHECK_ARTIFACT, _why_not_runnable, override=True)


def device_info() -> dict[str, Any]:
    """What the report says about the device, and its core count (the default thread count)."""
    from neo_local.targets.cpu_features import host_os, physical_cores

    return {
        "machine": platform.machine().lower(),
        "os": host_os(),
        "physical_cores": physical_cores(),
        "tvm": tvm.__version__,
        "runtime_only": bool(tvm.base._RUNTIME_ONLY),
    }


def _why_not_runnable(meta_json: str, dev_type: str) -> str:
    """The device runtime's refusal of an artifact (its compiled.meta), or "" when it can run it."""
    from neo_local.runtime.model import ArtifactError, check_runnable

    try:
        check_runnable(json.loads(meta_json), dev_type)
    except ArtifactError as e:
        return str(e)
    return ""


# --------------------------------------------------------------------------- this side


@dataclass(frozen=True)
class Remote:
    """Where an artifact ran: the server (or the tracker and the key it was asked for) and what
    the device said it is (None from a plain TVM server, which lacks neo-local's functions)."""

    endpoint: Endpoint
    key: str | None
    device: Mapping[str, Any] | None

    def summary(self) -> dict[str, Any]:
        where = {"tracker": str(self.endpoint), "key": self.key} if self.key else {"server": str(self.endpoint)}
        return {**where, "device": dict(self.device) if self.device else None}

    @property
    def where(self) -> str:
        """The device in words: ``the device at HOST:PORT (x86_64 LINUX)``."""
        at = (f"the device with key {self.key} at the RPC tracker {self.endpoint}" if self.key
              else f"the device at {self.endpoint}")
        return f"{at} ({self.device['machine']} {self.device['os']})" if self.device else at


def connect(endpoint: Endpoint, key: str | None = None) -> tuple[Any, Remote]:
    """A session with the server at ``endpoint``, or, with ``key``, with a free server of that key
    registered at the tracker at ``endpoint``."""
    reachable(endpoint, "RPC tracker" if key else "RPC server")
    try:
        session = _from_tracker(endpoint, key) if key else _answered(endpoint)
    except RpcError:
        raise
    except (RuntimeError, OSError) as e:
        what = "RPC tracker" if key else "RPC server"
        raise RpcError(f"cannot reach the {what} at {endpoint}: {e}") from None
    try:
        device = json.loads(session.get_function(DEVICE_INFO)())
    except AttributeError:  # a server without neo-local's functions
        device = None
    return session, Remote(endpoint, key, device)


def _answered(endpoint: Endpoint) -> Any:
    """``rpc.connect`` within ANSWER_TIMEOUT_S. A connection it gives up on is left to its thread,
    which closes it if the server answers later."""
    result: dict[str, Any] = {}

    def connect_here() -> None:
        try:
            result["session"] = rpc.connect(endpoint.host, endpoint.port)
        except Exception as e:  # noqa: BLE001 - raised again in the caller's thread
            result["error"] = e

    thread = threading.Thread(target=connect_here, name=f"rpc-connect-{endpoint}", daemon=True)
    thread.start()
    thread.join(ANSWER_TIMEOUT_S)
    if thread.is_alive():
        raise RpcError(f"the RPC server at {endpoint} accepted the connection but did not answer within "
                       f"{ANSWER_TIMEOUT_S:g} s: it serves one session at a time, and another client is using it")
    if "error" in result:
        raise result["error"]
    return result["session"]


def _from_tracker(endpoint: Endpoint, key: str) -> Any:
    """Ask the tracker for a free server of ``key``; refuse at once rather than queue for a busy
    or absent one (the tracker would hold the request until one frees up)."""
    tracker = rpc.connect_tracker(endpoint.host, endpoint.port)
    queue = tracker.summary().get("queue_info", {})
    if queue.get(key, {}).get("free", 0) < 1:
        keys = ", ".join(f"{k} ({v.get('free', 0)} free)" for k, v in sorted(queue.items())) or "none"
        raise RpcError(f"the RPC tracker at {endpoint} has no free server with key {key!r}; keys: {keys}")
    return tracker.request(key, max_retry=1)


class RemoteVm:
    """An artifact's Relax VM on the remote device: the library uploaded and loaded there, the
    inputs copied there once; runs are timed there by TVM's time_evaluator."""

    def __init__(self, session: Any, remote: Remote, folder: Path, meta: Mapping[str, Any]) -> None:
        gpu = meta.get("Target", {}).get("Gpu")
        dev_type = gpu["TVMTarget"]["kind"] if gpu else "cpu"
        if remote.device is not None:
            why = session.get_function(CHECK_ARTIFACT)(json.dumps(meta), dev_type)
            if why:
                raise RpcError(f"{remote.where} cannot run this artifact: {why}")
        library = meta["Runtime"]["Library"]
        session.upload(str(folder / library), library)
        self.remote = remote
        self._session = session
        self._device = session.device(dev_type, 0)
        self._library = _load(session, remote, library, meta)
        self._vm = VirtualMachine(self._library, self._device)
        self._inputs: list[Any] = []

    def set_threads(self, threads: int | None) -> int:
        """Use ``threads`` threads on the device (None: its runtime's default); the count in use.
        A Linux CPU library runs its kernels on neo-local's pool (``backends.thread_pool``; one per
        process), the others on TVM's."""
        if self._library.implements_function(SET_THREADS, True):
            return int(self._library.get_function(SET_THREADS, True)(threads or 0))
        if threads:
            self._session.get_function("runtime.config_threadpool")(1, threads)  # 1: TVM's default affinity
        return int(self._session.get_function("runtime.NumThreads")())

    def set_inputs(self, arrays: list[np.ndarray]) -> None:
        self._inputs = [tvm.runtime.tensor(a, self._device) for a in arrays]
        self._vm.set_input("main", *self._inputs)
        self._vm.save_function("main", _TIMED, *self._inputs, include_return=False)

    def run(self) -> list[np.ndarray]:
        """One run on the inputs set; the outputs copied back."""
        self._vm.invoke_stateful("main")
        return [t.numpy() for t in _outputs(self._vm)]

    def timer(self) -> Callable[[int], list[float]]:
        """``f(n)``: n runs timed on the device (after one untimed run), their seconds."""
        return lambda n: list(self._vm.time_evaluator(_TIMED, self._device, number=1, repeat=n)().results)


def _load(session: Any, remote: Remote, library: str, meta: Mapping[str, Any]) -> Any:
    """The uploaded library, loaded on the device. A plain TVM server (not neo-local rpc-server)
    cannot check the artifact first, and a library for another machine then fails to load with
    a misleading "No such file": say what the library is for."""
    try:
        return session.load_module(library)
    except RuntimeError as e:
        if remote.device is not None:
            raise
        target = meta.get("Target", {})
        raise RpcError(f"{remote.where} could not load {library}, compiled for "
                       f"{meta['Requirements']['TargetDevice']} ({target.get('Os')} {target.get('Arch')}); the "
                       f"server is not neo-local rpc-server, so the artifact was not checked against the device "
                       f"first. TVM said: {str(e).strip().splitlines()[-1]}") from None


def _outputs(vm: Any, *index: int) -> list[Any]:
    """The tensors of main's last result, nested tuples flattened. Not ``vm.get_outputs``: its
    recursive closure is a reference cycle that keeps the session, and with it the server (which
    serves one session at a time), busy until the garbage collector runs."""
    arity = vm["get_output_arity"]("main", *index)
    if arity == -1:
        return [vm["get_output"]("main", *index)]
    return [t for i in range(arity) for t in _outputs(vm, *index, i)]
