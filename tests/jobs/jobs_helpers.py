"""Helpers shared by the job tests: requests, waiting for a status."""

from __future__ import annotations

import time

from neo_local.api.service import describe_compilation_job
from neo_local.jobs.store import JobRecord, JobStore

TERMINAL = {"COMPLETED", "FAILED", "STOPPED"}


def request(name: str, src: str, out: str, max_runtime: int = 120, **extra) -> dict:
    return {
        "CompilationJobName": name,
        "RoleArn": "arn:aws:iam::123456789012:role/neo",
        "InputConfig": {"S3Uri": src, "Framework": "ONNX", "DataInputConfig": '{"data": [1, 4]}'},
        "OutputConfig": {"S3OutputLocation": out, "TargetDevice": "ml_c5"},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
        **extra,
    }


def wait_for_status(name: str, statuses=TERMINAL, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = describe_compilation_job(CompilationJobName=name)
        if job["CompilationJobStatus"] in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} still {job['CompilationJobStatus']} after {timeout} s")
        time.sleep(0.1)


def wait_for_worker(name: str, timeout: float = 30.0) -> JobRecord:
    """The job's record once its worker runs."""
    deadline = time.monotonic() + timeout
    store = JobStore()
    while True:
        rec = store.get(name)
        if rec is not None and rec.worker_pid:
            return rec
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: no worker after {timeout} s ({rec and rec.status})")
        time.sleep(0.05)
