"""Builds tuning candidates in a child process, so that a config TVM takes minutes to lower
(measured: a 7x7 stride-2 stem with kh/kw unrolled and padding per row, over 100 s where its
neighbours take 5 s) costs at most ``BUILD_TIMEOUT_S`` and is skipped, not waited for.

The child imports TVM once and builds one kernel per request (the PrimFunc as TVM's JSON),
exporting a shared library with the target's linker; a child past its time is killed and the
next request starts a fresh one.
"""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import tvm
from tvm import tirx

from neo_local.api.errors import tvm_error_line

BUILD_TIMEOUT_S = 60.0
#: how long a fresh child may take to import TVM on a busy machine before its first build counts
START_ALLOWANCE_S = 60.0


class BuildFailed(RuntimeError):
    """The candidate did not build: TVM's error, or the time limit."""


class Builder:
    def __init__(self, tvm_target: Mapping[str, Any], linker: str | None = None,
                 timeout_s: float = BUILD_TIMEOUT_S) -> None:
        self.tvm_target = dict(tvm_target)
        self.linker = linker
        self.timeout_s = timeout_s
        self.folder = Path(tempfile.mkdtemp(prefix="neo-local-tune-"))
        self._count = 0
        self._child: Any = None
        self._conn: Any = None

    def build(self, func: tirx.PrimFunc) -> Path:
        """The library of ``func`` alone (its entry point ``main``)."""
        fresh = self._child is None
        if fresh:
            self._start()
        self._count += 1
        path = self.folder / f"kernel{self._count}.so"
        self._conn.send((tvm.ir.save_json(func.with_attr("global_symbol", "main")), str(path)))
        if not self._conn.poll(self.timeout_s + (START_ALLOWANCE_S if fresh else 0.0)):
            self._stop()
            raise BuildFailed(f"not built within {self.timeout_s:g} s")
        status, detail = self._conn.recv()
        if status != "ok":
            raise BuildFailed(detail)
        return path

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._child = ctx.Process(target=_serve, args=(child_conn, self.tvm_target, self.linker), daemon=True,
                                  name="neo-local-tuning-builder")
        self._child.start()
        child_conn.close()

    def _stop(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child.join()
            self._conn.close()
        self._child = self._conn = None

    def close(self) -> None:
        if self._child is not None:
            self._conn.send(None)
            self._child.join(10)
        self._stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _serve(conn: Any, tvm_target: dict, linker: str | None) -> None:
    """The child: build each (PrimFunc JSON, library path) it is sent, answer ("ok"|"error", detail)."""
    import tvm

    from neo_local.backends.cpu_schedule.tir_pipeline import pipeline
    from neo_local.backends.link import fcompile

    target, tir_pipeline = tvm.target.Target(tvm_target), pipeline()
    link = fcompile(tvm_target, linker)
    while True:
        request = conn.recv()
        if request is None:
            return
        text, path = request
        try:
            func = tvm.ir.load_json(text)
            lib = tvm.compile(tvm.IRModule({"main": func}), target=target, tir_pipeline=tir_pipeline)
            lib.export_library(path, fcompile=link)
            conn.send(("ok", path))
        except Exception as exc:  # noqa: BLE001 (TVM's errors, reported to the tuner)
            conn.send(("error", first_line(exc)))


def first_line(exc: BaseException) -> str:
    """The line of a TVM error that says what failed, cut to a progress line's length."""
    return tvm_error_line(exc)[:300]
