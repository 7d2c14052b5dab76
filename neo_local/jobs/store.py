"""The job store: one SQLite table, safe for the API process, supervisors and workers at once.

Every call opens its own short connection (WAL mode, busy timeout) and runs one short
transaction; status changes are read-check-write inside ``BEGIN IMMEDIATE`` so that two
processes racing to end a job cannot both win. The store knows nothing about compilers.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

from neo_local.jobs import config
from neo_local.jobs.states import ACTIVE, IllegalTransition, Status, check_transition

BUSY_TIMEOUT_S = 30.0
FAILURE_REASON_MAX = 1024    # FailureReason's length limit in the service model
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS compilation_jobs (
    name                TEXT PRIMARY KEY,
    job_id              TEXT NOT NULL,
    arn                 TEXT NOT NULL,
    status              TEXT NOT NULL,
    request             TEXT NOT NULL,
    creation_time       REAL NOT NULL,
    last_modified_time  REAL NOT NULL,
    start_time          REAL,
    end_time            REAL,
    failure_reason      TEXT,
    artifact_uri        TEXT,
    artifact_digest     TEXT,
    derived_information TEXT NOT NULL DEFAULT '{}',
    messages            TEXT NOT NULL DEFAULT '[]',
    stop_requested      INTEGER NOT NULL DEFAULT 0,
    supervisor_pid      INTEGER,
    supervisor_started  REAL,
    worker_pid          INTEGER,
    worker_started      REAL
);
CREATE INDEX IF NOT EXISTS compilation_jobs_creation ON compilation_jobs (creation_time);
CREATE INDEX IF NOT EXISTS compilation_jobs_status ON compilation_jobs (status);
"""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class JobRecord:
    """One compilation job as stored. Times are timezone-aware (UTC)."""

    name: str
    job_id: str                                  # unique per job, guards against name reuse
    arn: str
    status: Status
    request: Mapping[str, Any]                   # the CreateCompilationJob request (paths made absolute)
    creation_time: datetime
    last_modified_time: datetime
    start_time: datetime | None = None           # CompilationStartTime
    end_time: datetime | None = None             # CompilationEndTime
    failure_reason: str | None = None
    artifact_uri: str | None = None              # ModelArtifacts.S3ModelArtifacts
    artifact_digest: str | None = None           # ModelDigests.ArtifactDigest
    derived_information: Mapping[str, str] = field(default_factory=dict)
    messages: tuple[str, ...] = ()
    stop_requested: bool = False
    supervisor_pid: int | None = None
    supervisor_started: float | None = None      # the process's create time (pid reuse guard)
    worker_pid: int | None = None
    worker_started: float | None = None

    @property
    def paths(self) -> config.JobPaths:
        return config.JobPaths.of(self.name, self.job_id)


# Columns a caller may set besides the status; times are datetimes, stored as epoch seconds.
_TIME_FIELDS = {"creation_time", "last_modified_time", "start_time", "end_time"}
_JSON_FIELDS = {"request", "derived_information", "messages"}
_UPDATABLE = {
    "start_time", "end_time", "failure_reason", "artifact_uri", "artifact_digest",
    "derived_information", "messages", "stop_requested", "supervisor_pid",
    "supervisor_started", "worker_pid", "worker_started",
}
_COLUMNS = [f.name for f in JobRecord.__dataclass_fields__.values()]  # type: ignore[attr-defined]


def _to_db(key: str, value: Any) -> Any:
    if value is None:
        return None
    if key in _TIME_FIELDS:
        return value.timestamp()
    if key in _JSON_FIELDS:
        return json.dumps(list(value) if key == "messages" else dict(value))
    if key == "status":
        return Status(value).value
    if key == "stop_requested":
        return int(bool(value))
    return value


def _from_row(row: sqlite3.Row) -> JobRecord:
    values: dict[str, Any] = {}
    for key in _COLUMNS:
        value = row[key]
        if value is not None:
            if key in _TIME_FIELDS:
                value = datetime.fromtimestamp(value, timezone.utc)
            elif key == "messages":
                value = tuple(json.loads(value))
            elif key in _JSON_FIELDS:
                value = json.loads(value)
            elif key == "status":
                value = Status(value)
            elif key == "stop_requested":
                value = bool(value)
        values[key] = value
    return JobRecord(**values)


class JobExists(Exception):
    """A job with this name is already in the store."""


class JobGone(Exception):
    """The job is no longer in the store (deleted, or replaced by a new job of the same name)."""


@dataclass(frozen=True)
class JobQuery:
    """ListCompilationJobs filters and order, in store terms."""

    name_contains: str | None = None
    status: Status | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    modified_after: datetime | None = None
    modified_before: datetime | None = None
    sort_by: str = "CreationTime"                # Name | CreationTime | Status
    descending: bool = False
    offset: int = 0
    limit: int | None = None


_SORT_COLUMNS = {
    "Name": ("name",),
    "CreationTime": ("creation_time", "name"),
    "Status": ("status", "creation_time", "name"),
}


class JobStore:
    """The SQLite job store at ``path`` (default: ``$NEO_LOCAL_HOME/jobs.db``)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else config.db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                db.executescript(_SCHEMA)  # idempotent: several processes may race here
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- reads ---------------------------------------------------------------------------

    def get(self, name: str) -> JobRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM compilation_jobs WHERE name = ?", (name,)).fetchone()
        return _from_row(row) if row else None

    def query(self, q: JobQuery = JobQuery()) -> list[JobRecord]:
        where, args = [], []
        if q.name_contains:
            where.append("instr(lower(name), lower(?)) > 0")
            args.append(q.name_contains)
        if q.status is not None:
            where.append("status = ?")
            args.append(Status(q.status).value)
        for column, op, value in (
            ("creation_time", ">", q.created_after), ("creation_time", "<", q.created_before),
            ("last_modified_time", ">", q.modified_after), ("last_modified_time", "<", q.modified_before),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(value.timestamp())
        direction = "DESC" if q.descending else "ASC"
        order = ", ".join(f"{c} {direction}" for c in _SORT_COLUMNS[q.sort_by])
        sql = "SELECT * FROM compilation_jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order} LIMIT ? OFFSET ?"
        args += [q.limit if q.limit is not None else -1, q.offset]
        with self._connect() as db:
            rows = db.execute(sql, args).fetchall()
        return [_from_row(r) for r in rows]

    def active(self) -> list[JobRecord]:
        """Jobs not yet in a terminal state."""
        marks = ",".join("?" * len(ACTIVE))
        with self._connect() as db:
            rows = db.execute(
                f"SELECT * FROM compilation_jobs WHERE status IN ({marks})", [s.value for s in ACTIVE]
            ).fetchall()
        return [_from_row(r) for r in rows]

    # -- writes --------------------------------------------------------------------------

    def insert(self, record: JobRecord) -> None:
        keys = list(_COLUMNS)
        sql = (f"INSERT INTO compilation_jobs ({', '.join(keys)}) "
               f"VALUES ({', '.join('?' * len(keys))})")
        try:
            with self._transaction() as db:
                db.execute(sql, [_to_db(k, getattr(record, k)) for k in keys])
        except sqlite3.IntegrityError as e:
            raise JobExists(record.name) from e

    def update(self, name: str, *, job_id: str | None = None, **fields: Any) -> JobRecord:
        """Set fields other than the status (pids, results). Raises JobGone."""
        with self._transaction() as db:
            current = self._current(db, name, job_id)
            self._write(db, name, fields)
        return replace(current, **fields)

    def transition(self, name: str, status: Status, *, job_id: str | None = None,
                   expect: Status | None = None, **fields: Any) -> JobRecord:
        """Move the job to ``status`` (checked against the transitions table) and set ``fields``.

        ``expect``: only if the job is still in this status (else IllegalTransition).
        Raises IllegalTransition or JobGone; sets LastModifiedTime.
        """
        status = Status(status)
        with self._transaction() as db:
            current = self._current(db, name, job_id)
            if expect is not None and current.status != expect:
                raise IllegalTransition(name, current.status, status)
            check_transition(name, current.status, status)
            fields = {**fields, "status": status, "last_modified_time": utcnow()}
            reason = fields.get("failure_reason")
            if reason is not None and len(reason) > FAILURE_REASON_MAX:
                fields["failure_reason"] = reason[: FAILURE_REASON_MAX - 3] + "..."
            self._write(db, name, fields)
        return replace(current, **fields)

    def delete(self, name: str, *, job_id: str | None = None) -> bool:
        sql, args = "DELETE FROM compilation_jobs WHERE name = ?", [name]
        if job_id is not None:
            sql += " AND job_id = ?"
            args.append(job_id)
        with self._transaction() as db:
            return db.execute(sql, args).rowcount > 0

    @staticmethod
    def _current(db: sqlite3.Connection, name: str, job_id: str | None) -> JobRecord:
        row = db.execute("SELECT * FROM compilation_jobs WHERE name = ?", (name,)).fetchone()
        if row is None or (job_id is not None and row["job_id"] != job_id):
            raise JobGone(name)
        return _from_row(row)

    @staticmethod
    def _write(db: sqlite3.Connection, name: str, fields: Mapping[str, Any]) -> None:
        unknown = set(fields) - _UPDATABLE - {"status", "last_modified_time"}
        if unknown:
            raise TypeError(f"not updatable: {', '.join(sorted(unknown))}")
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        db.execute(f"UPDATE compilation_jobs SET {sets} WHERE name = ?",
                   [_to_db(k, v) for k, v in fields.items()] + [name])
