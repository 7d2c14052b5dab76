"""The tuning records database: the best schedule config found per (workload, target).

A JSON-lines file (default ``~/.cache/neo-local/tuning/records.jsonl``; env
``NEO_LOCAL_TUNING_RECORDS`` or CompilerOptions ``tuning.records`` name another), one record per
line. Every compile reads it, so a model that shares a layer with a tuned one gets that layer's
config at once. The workload key is the kernel's structural hash (its loops, shapes, dtypes and
arithmetic, not its names), so it is the same in every process and every model; the target key
is triple + mcpu + mattr + vector lanes. Writers append whole lines under an exclusive
``flock``, so concurrent compiles never interleave; a reader takes, per key, the fastest record.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import tvm_ffi
from tvm import tirx

from neo_local.backends.cpu_schedule.schedules import TUNABLE

log = logging.getLogger(__name__)

RECORDS_ENV = "NEO_LOCAL_TUNING_RECORDS"
DEFAULT_RECORDS = Path.home() / ".cache" / "neo-local" / "tuning" / "records.jsonl"
#: bump when the schedules' knobs change meaning: older records are then ignored
SCHEMA = 1


def records_path(given: str | None = None) -> Path:
    """The database file: ``given`` (CompilerOptions), else the env variable, else the default."""
    return Path(given or os.environ.get(RECORDS_ENV) or DEFAULT_RECORDS).expanduser()


def workload_key(func: tirx.PrimFunc) -> str:
    """A key for the kernel that is stable across processes and models: the structural hash of
    its parameters, buffers and body (attributes such as its name dropped)."""
    bare = tirx.PrimFunc(func.params, func.body, func.ret_type)
    return f"{tvm_ffi.structural_hash(bare, map_free_vars=True) & (2**64 - 1):016x}"


def target_key(tvm_target: Mapping[str, Any], lanes: int) -> str:
    """triple/mcpu/mattr/lanes: the schedule's speed depends on these, not on the link options."""
    mattr = ",".join(sorted(str(a) for a in tvm_target.get("mattr", ())))
    return f"{tvm_target.get('mtriple', '') or 'host'}/{tvm_target.get('mcpu', '') or 'generic'}/{mattr}/{lanes}"


def describe(func: tirx.PrimFunc) -> str:
    """The kernel's buffers in words (shapes and dtypes), for people reading the records."""
    return " ".join(f"{[int(d) for d in p.shape]}{p.dtype}" for p in func.params if hasattr(p, "shape"))


@dataclass(frozen=True)
class Record:
    workload: str
    target: str
    kind: str
    config: Mapping[str, Any]
    time_us: float
    default_us: float
    description: str = ""

    def as_config(self) -> object:
        return TUNABLE[self.kind].config(**self.config)

    def line(self) -> str:
        return json.dumps({"schema": SCHEMA, **dataclasses.asdict(self)}, sort_keys=True)


def make_record(workload: str, target: str, kind: str, config: object, time_us: float, default_us: float,
                description: str = "") -> Record:
    return Record(workload, target, kind, dataclasses.asdict(config), round(time_us, 3), round(default_us, 3),
                  description)


class Records:
    """The records of one database file for one target, best per workload."""

    def __init__(self, path: Path, target: str) -> None:
        self.path = path
        self.target = target
        self.best: dict[str, Record] = {}
        for record in _read(path):
            if record.target == target:
                self._keep(record)

    def _keep(self, record: Record) -> None:
        old = self.best.get(record.workload)
        if old is None or record.time_us < old.time_us:
            self.best[record.workload] = record

    def lookup(self, func: tirx.PrimFunc) -> tuple[str, object] | None:
        """(kind, config) of the record for ``func``, or None (the schedules' defaults)."""
        record = self.best.get(workload_key(func))
        return None if record is None else (record.kind, record.as_config())

    def add(self, records: list[Record]) -> None:
        """Append ``records`` to the file (one locked write) and keep them here; a file that
        cannot be written is said on the log, never a failed compile (this one uses them anyway)."""
        if not records:
            return
        text = "".join(r.line() + "\n" for r in records)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    f.write(text)
                    f.flush()
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        except OSError as exc:
            log.warning("tuning records %s not written: %s", self.path, exc)
        for record in records:
            self._keep(record)


def _read(path: Path) -> list[Record]:
    """Every well-formed record of the current schema; other lines are skipped (with a log line)."""
    if not path.exists():
        return []
    try:
        with open(path, encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_SH)
            try:
                lines = f.read().splitlines()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("tuning records %s not read (compiling with the default configs): %s", path, exc)
        return []
    records, bad = [], 0
    for line in lines:
        try:
            raw = json.loads(line)
            if raw.pop("schema", None) != SCHEMA or raw.get("kind") not in TUNABLE:
                raise ValueError("another schema")
            record = Record(**raw)
            record.as_config()
            records.append(record)
        except (ValueError, TypeError):
            bad += 1
    if bad:
        log.info("tuning records %s: %d line(s) skipped (malformed or from another schema)", path, bad)
    return records
