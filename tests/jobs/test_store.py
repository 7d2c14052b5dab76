"""The SQLite job store and the state machine: real SQLite files, real concurrent processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from neo_local.jobs import config
from neo_local.jobs.states import ACTIVE, TERMINAL, TRANSITIONS, IllegalTransition, Status
from neo_local.jobs.store import JobExists, JobGone, JobQuery, JobRecord, JobStore, new_job_id

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
REQUEST = {
    "CompilationJobName": "x",
    "RoleArn": "arn:aws:iam::123456789012:role/neo",
    "InputConfig": {"S3Uri": "/m.tar.gz", "Framework": "ONNX"},
    "OutputConfig": {"S3OutputLocation": "/out", "TargetDevice": "ml_c5"},
    "StoppingCondition": {"MaxRuntimeInSeconds": 900},
    "Tags": [{"Key": "k", "Value": "v"}],
}


def record(name: str, status: Status = Status.STARTING, minutes: int = 0, **kw) -> JobRecord:
    t = T0 + timedelta(minutes=minutes)
    return JobRecord(name=name, job_id=new_job_id(), arn=f"arn:aws:sagemaker:us-east-1:123456789012:compilation-job/{name}",
                     status=status, request={**REQUEST, "CompilationJobName": name},
                     creation_time=t, last_modified_time=t, **kw)


def test_transitions_table_is_complete():
    assert set(TRANSITIONS) == set(Status)
    assert TERMINAL == {Status.COMPLETED, Status.FAILED, Status.STOPPED}
    assert ACTIVE == {Status.STARTING, Status.INPROGRESS, Status.STOPPING}
    for targets in TRANSITIONS.values():
        assert Status.STARTING not in targets


def test_default_location_follows_neo_local_home(neo_home):
    store = JobStore()
    assert store.path == neo_home / "jobs.db" == config.db_path()
    assert config.JobPaths.of("j", "id1").log == neo_home / "jobs" / "j" / "job-id1.log"
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_insert_get_round_trip(tmp_path):
    store = JobStore(tmp_path / "j.db")
    rec = record("a", derived_information={"DerivedDataInputConfig": '{"data":[1,4]}'},
                 messages=("one", "two"), supervisor_pid=12, supervisor_started=1.5)
    store.insert(rec)
    assert store.get("a") == rec
    assert store.get("missing") is None
    with pytest.raises(JobExists):
        store.insert(replace(rec, job_id=new_job_id()))


def test_transitions_and_updates(tmp_path):
    store = JobStore(tmp_path / "j.db")
    rec = record("a")
    store.insert(rec)
    started = datetime.now(timezone.utc)
    got = store.transition("a", Status.INPROGRESS, job_id=rec.job_id, start_time=started)
    assert got == store.get("a")
    assert got.status == Status.INPROGRESS and got.start_time == started
    assert got.last_modified_time > rec.last_modified_time

    got = store.update("a", worker_pid=99, worker_started=2.0)
    assert (got.worker_pid, got.last_modified_time) == (99, store.get("a").last_modified_time)
    with pytest.raises(TypeError):
        store.update("a", arn="other")

    with pytest.raises(IllegalTransition):
        store.transition("a", Status.STARTING)
    with pytest.raises(IllegalTransition):  # expect guards a read-then-write race
        store.transition("a", Status.FAILED, expect=Status.STARTING)
    with pytest.raises(JobGone):
        store.transition("a", Status.FAILED, job_id="not-this-job")

    done = store.transition("a", Status.COMPLETED, artifact_uri="/out/m.tar.gz", artifact_digest="d")
    assert (done.status, done.artifact_uri) == (Status.COMPLETED, "/out/m.tar.gz")
    for status in Status:  # terminal stays terminal
        with pytest.raises(IllegalTransition):
            store.transition("a", status)
    assert store.get("a").status == Status.COMPLETED


def test_illegal_first_moves(tmp_path):
    store = JobStore(tmp_path / "j.db")
    store.insert(record("a"))
    with pytest.raises(IllegalTransition, match="cannot go from STARTING to COMPLETED"):
        store.transition("a", Status.COMPLETED)
    store.transition("a", Status.STOPPING, stop_requested=True)
    with pytest.raises(IllegalTransition):
        store.transition("a", Status.INPROGRESS)
    assert store.transition("a", Status.STOPPED).stop_requested is True


def test_long_failure_reason_is_cut_to_the_service_limit(tmp_path):
    store = JobStore(tmp_path / "j.db")
    store.insert(record("a"))
    got = store.transition("a", Status.FAILED, failure_reason="ClientError: " + "x" * 2000)
    assert len(got.failure_reason) == len(store.get("a").failure_reason) == 1024


def test_delete(tmp_path):
    store = JobStore(tmp_path / "j.db")
    rec = record("a")
    store.insert(rec)
    assert not store.delete("a", job_id="other")
    assert store.delete("a", job_id=rec.job_id)
    assert store.get("a") is None and not store.delete("a")
    with pytest.raises(JobGone):
        store.update("a", worker_pid=1)


def test_query_filters_sort_and_pages(tmp_path):
    store = JobStore(tmp_path / "j.db")
    for i, (name, status) in enumerate([("resnet-c5", Status.COMPLETED), ("MobileNet-m5", Status.FAILED),
                                        ("resnet-m4", Status.STARTING), ("bert", Status.COMPLETED)]):
        store.insert(record(name, status, minutes=i))
    names = lambda q: [r.name for r in store.query(q)]  # noqa: E731
    assert names(JobQuery()) == ["resnet-c5", "MobileNet-m5", "resnet-m4", "bert"]
    assert names(JobQuery(descending=True)) == ["bert", "resnet-m4", "MobileNet-m5", "resnet-c5"]
    assert names(JobQuery(sort_by="Name")) == ["MobileNet-m5", "bert", "resnet-c5", "resnet-m4"]
    assert names(JobQuery(sort_by="Status")) == ["resnet-c5", "bert", "MobileNet-m5", "resnet-m4"]
    assert names(JobQuery(name_contains="RESNET")) == ["resnet-c5", "resnet-m4"]
    assert names(JobQuery(status=Status.COMPLETED)) == ["resnet-c5", "bert"]
    assert names(JobQuery(created_after=T0, created_before=T0 + timedelta(minutes=3))) == ["MobileNet-m5", "resnet-m4"]
    assert names(JobQuery(modified_before=T0 + timedelta(minutes=1))) == ["resnet-c5"]
    assert names(JobQuery(modified_after=T0 + timedelta(minutes=2))) == ["bert"]
    assert names(JobQuery(offset=1, limit=2)) == ["MobileNet-m5", "resnet-m4"]
    assert {r.name for r in store.active()} == {"resnet-m4"}


_RACER = textwrap.dedent("""
    import sys
    from neo_local.jobs.states import IllegalTransition, Status
    from neo_local.jobs.store import JobStore
    from neo_local.jobs.store import JobRecord, new_job_id, utcnow
    me, n_shared, n_own = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = JobStore()
    wins = 0
    for i in range(n_own):
        t = utcnow()
        store.insert(JobRecord(name=f"{me}-{i}", job_id=new_job_id(), arn="a", status=Status.STARTING,
                               request={"n": i}, creation_time=t, last_modified_time=t))
        store.transition(f"{me}-{i}", Status.INPROGRESS)
        store.update(f"{me}-{i}", worker_pid=i)
        store.transition(f"{me}-{i}", Status.COMPLETED)
    for i in range(n_shared):
        try:
            store.transition(f"shared-{i}", Status.FAILED if me == "p1" else Status.COMPLETED,
                             failure_reason=me if me == "p1" else None)
            wins += 1
        except IllegalTransition:
            pass
    print(wins)
""")


def test_concurrent_processes(tmp_path, neo_home):
    store = JobStore()
    n_shared, n_own = 40, 40
    for i in range(n_shared):
        store.insert(record(f"shared-{i}", Status.INPROGRESS))
    root = str(Path(__file__).resolve().parents[2])
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, me, str(n_shared), str(n_own)], cwd=root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for me in ("p1", "p2")]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    # every shared job was ended by exactly one of the two processes
    assert sum(int(out) for out, _ in outs) == n_shared
    jobs = store.query()
    assert len(jobs) == n_shared + 2 * n_own
    assert all(j.status in TERMINAL for j in jobs)
    assert all(j.failure_reason == ("p1" if j.status == Status.FAILED else None) for j in jobs)


def test_job_log_reads_whole_lines(tmp_path):
    from neo_local.jobs import joblog

    assert joblog.read(tmp_path / "job.log") == ("", 0)
    log = joblog.JobLog.start(tmp_path / "job.log", "first")
    log.write("second\nthird")
    text, offset = joblog.read(log.path)
    assert [line.split(" ", 1)[1] for line in text.splitlines()] == ["first", "second", "third"]
    with open(log.path, "a") as f:
        f.write("partial")
    assert joblog.read(log.path, offset) == ("", offset)
    assert joblog.read(log.path, offset, partial=True) == ("partial", offset + 7)


def test_job_log_lines_after_the_file_is_gone_are_dropped(tmp_path):
    """A deleted job's exiting processes write no log file of their own."""
    from neo_local.jobs import joblog

    log = joblog.JobLog(tmp_path / "job.log")
    log.write("late")
    log.raw("a traceback")
    assert not log.path.exists()
