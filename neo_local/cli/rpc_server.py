"""``neo-local rpc-server``: TVM's RPC server, in the foreground, on the device that
``neo-local benchmark ARTIFACT --rpc HOST:PORT`` times artifacts on.

It needs only TVM's runtime (``TVM_USE_RUNTIME_LIB=1`` works), as on a device without the
compiler. Ctrl-C or SIGTERM stops it, with the sessions it is serving.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from neo_local.cli.run import RunFailed
from neo_local.cli.values import UsageError


def add_rpc_server_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rpc-server",
        help="Serve this device to neo-local benchmark --rpc (TVM's RPC server, in the foreground).",
        description="Start TVM's RPC server on HOST:PORT and wait until Ctrl-C or SIGTERM. A client uploads a "
                    "compiled library, runs it on this machine and times it here (neo-local benchmark ARTIFACT "
                    "--rpc THIS_HOST:PORT). With --tracker, the server registers with that RPC tracker under "
                    "--key, and clients ask the tracker for a device of that key. Anyone who reaches the port "
                    "can run code on this machine: serve trusted networks only.",
        parents=parents,
        allow_abbrev=False,
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=9090, help="port to listen on (default 9090; 0: any free port)")
    parser.add_argument("--tracker", metavar="HOST:PORT", help="register with this RPC tracker")
    parser.add_argument("--key", default="", help="the device's key at the tracker (required with --tracker)")
    parser.set_defaults(handler=rpc_server_command)


def rpc_server_command(ns: argparse.Namespace, out: TextIO | None = None) -> int:
    from neo_local.rpc import RpcError, free_port, parse_endpoint, reachable, serve_until_stopped, start_server

    out = out or sys.stdout
    if not 0 <= ns.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    if bool(ns.tracker) != bool(ns.key):
        raise UsageError("--tracker and --key go together: the tracker and the key clients ask it for")
    try:
        tracker = parse_endpoint(ns.tracker) if ns.tracker else None
    except ValueError as e:
        raise UsageError(f"--tracker: {e}") from None
    # sessions' pools start in the server's process, so its environment holds the defaults
    from neo_local.runtime.threads import set_thread_defaults

    set_thread_defaults()
    try:
        if tracker:
            reachable(tracker, "RPC tracker")
        port = free_port(ns.host, ns.port)
        server = start_server(ns.host, port, tracker, ns.key)
    except OSError as e:
        raise RunFailed(f"cannot serve on {ns.host}:{ns.port}: {e.strerror or e}") from None
    except (RpcError, ValueError, RuntimeError) as e:  # the worker's error comes with its traceback
        raise RunFailed(f"cannot serve on {ns.host}:{ns.port}: {str(e).strip().splitlines()[-1]}") from None
    registered = f", registered with the RPC tracker {tracker} as {ns.key!r}" if tracker else ""
    out.write(f"neo-local rpc-server: listening on {ns.host}:{server.port}{registered} (Ctrl-C stops it)\n")
    out.flush()
    if not serve_until_stopped(server):
        raise RunFailed("the RPC server's worker process ended unexpectedly (its log is above)")
    out.write("neo-local rpc-server: stopped\n")
    return 0


