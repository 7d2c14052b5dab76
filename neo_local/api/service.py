"""The API operations: Create/Describe/List/Stop/DeleteCompilationJob.

Each takes the keyword arguments boto3's sagemaker client takes and returns what it returns
(less ResponseMetadata). Jobs live in the SQLite store under ``$NEO_LOCAL_HOME``; each runs in
a detached supervisor process (``neo_local.jobs.supervisor``) that outlives the caller.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
import re
import shutil
from typing import Any, Mapping

from neo_local import storage
from neo_local.api import responses
from neo_local.api.errors import ResourceInUse, ResourceNotFound, ValidationException
from neo_local.api.validation import validate_create, validate_operation
from neo_local.jobs import joblog, launch, processes, reaper
from neo_local.jobs.joblog import JobLog
from neo_local.jobs.states import ACTIVE, STOPPABLE, TERMINAL, IllegalTransition, Status
from neo_local.jobs.store import JobExists, JobGone, JobQuery, JobRecord, JobStore, new_job_id, utcnow

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"
DEFAULT_MAX_RESULTS = 10
MAX_MAX_RESULTS = 100

_ROLE_ARN = re.compile(r"^arn:(aws[a-z\-]*):iam::(\d{12}):")

__all__ = [
    "create_compilation_job",
    "delete_compilation_job",
    "describe_compilation_job",
    "list_compilation_jobs",
    "read_job_log",
    "stop_compilation_job",
]


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def job_arn(name: str, role_arn: str | None) -> str:
    """arn:aws:sagemaker:<region>:<account>:compilation-job/<name>, the account from the role."""
    match = _ROLE_ARN.match(role_arn or "")
    partition, account = match.groups() if match else ("aws", DEFAULT_ACCOUNT)
    return f"arn:{partition}:sagemaker:{region()}:{account}:compilation-job/{name}"


# -- create --------------------------------------------------------------------------------


def _stored_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request as the job keeps it: a JSON copy with local paths made absolute."""
    stored = json.loads(json.dumps(request))
    inp = stored.get("InputConfig")
    if inp and isinstance(inp.get("S3Uri"), str):
        inp["S3Uri"] = storage.absolute_location(inp["S3Uri"])
    out = stored.get("OutputConfig")
    if out and isinstance(out.get("S3OutputLocation"), str):
        out["S3OutputLocation"] = storage.absolute_location(out["S3OutputLocation"])
    return stored


def create_compilation_job(**request: Any) -> dict[str, Any]:
    validate_create(request)
    name = request["CompilationJobName"]
    arn = job_arn(name, request.get("RoleArn"))
    now = utcnow()
    record = JobRecord(
        name=name, job_id=new_job_id(), arn=arn, status=Status.STARTING,
        request=_stored_request(request), creation_time=now, last_modified_time=now,
    )
    store = JobStore()
    try:
        store.insert(record)
    except JobExists:
        existing = store.get(name)
        raise ResourceInUse(
            f"Compilation job names must be unique within an AWS account and region, and a "
            f"compilation job with this name already exists ({existing.arn if existing else arn})",
            "CreateCompilationJob",
        ) from None
    paths = record.paths
    shutil.rmtree(paths.root, ignore_errors=True)  # leftovers of an earlier job of this name
    paths.create()
    JobLog.start(paths.log, f"Job {name} created ({arn})")
    _launch_supervisor(store, record)
    return {"CompilationJobArn": arn}


def _launch_supervisor(store: JobStore, record: JobRecord) -> None:
    paths = record.paths
    try:
        proc = launch.spawn("neo_local.jobs.supervisor", [record.name], paths.log, paths.root)
    except OSError as e:
        try:
            store.transition(record.name, Status.FAILED, job_id=record.job_id, end_time=utcnow(),
                             failure_reason=f"InternalError: Cannot start the job's supervisor process: {e}")
        except (IllegalTransition, JobGone):
            pass
        return
    try:
        store.update(record.name, job_id=record.job_id, supervisor_pid=proc.pid,
                     supervisor_started=processes.create_time(proc.pid))
    except JobGone:
        pass


# -- read ----------------------------------------------------------------------------------


def _job(store: JobStore, name: str, operation: str) -> JobRecord:
    record = store.get(name)
    if record is not None:
        record = reaper.reconcile(store, record)
    if record is None:
        raise ResourceNotFound(f"Could not find compilation job with name {name}", operation)
    return record


def describe_compilation_job(**request: Any) -> dict[str, Any]:
    validate_operation("DescribeCompilationJob", request)
    store = JobStore()
    return responses.describe(_job(store, request["CompilationJobName"], "DescribeCompilationJob"))


def read_job_log(name: str, offset: int = 0) -> tuple[str, int]:
    """The job log's text written since byte ``offset``, and the offset after it.

    While the job runs, only complete lines; once it has ended, everything."""
    record = JobStore().get(name)
    if record is None:
        raise ResourceNotFound(f"Could not find compilation job with name {name}", "ReadJobLog")
    return joblog.read(record.paths.log, offset, partial=record.status in TERMINAL)


# -- list ----------------------------------------------------------------------------------

_LIST = "ListCompilationJobs"
_TIME_FILTERS = {
    "CreationTimeAfter": "created_after",
    "CreationTimeBefore": "created_before",
    "LastModifiedTimeAfter": "modified_after",
    "LastModifiedTimeBefore": "modified_before",
}


def _parse_time(field: str, value: Any):
    from botocore.utils import parse_to_aware_datetime

    try:
        return parse_to_aware_datetime(value)
    except (ValueError, TypeError, OverflowError) as e:
        raise ValidationException(
            f"Value '{value}' at '{field}' failed to satisfy constraint: must be a timestamp "
            f"(a datetime, an ISO 8601 string or epoch seconds): {e}", _LIST) from None


def _list_query(request: Mapping[str, Any]) -> JobQuery:
    times = {attr: _parse_time(key, request[key])
             for key, attr in _TIME_FILTERS.items() if request.get(key) is not None}
    sort_by = request.get("SortBy") or "CreationTime"
    order = request.get("SortOrder") or "Ascending"
    status = request.get("StatusEquals")
    for field, value, allowed in (
        ("SortBy", sort_by, ("Name", "CreationTime", "Status")),
        ("SortOrder", order, ("Ascending", "Descending")),
        ("StatusEquals", status, tuple(s.value for s in Status)),
    ):
        if value is not None and value not in allowed:
            raise ValidationException(
                f"Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy "
                f"enum value set: [{', '.join(allowed)}]", _LIST)
    return JobQuery(name_contains=request.get("NameContains") or None,
                    status=Status(status) if status else None,
                    sort_by=sort_by, descending=order == "Descending", **times)


def _query_digest(q: JobQuery) -> str:
    key = json.dumps([q.name_contains, q.status and q.status.value,
                      *(t and t.timestamp() for t in (q.created_after, q.created_before,
                                                       q.modified_after, q.modified_before)),
                      q.sort_by, q.descending])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _encode_token(offset: int, q: JobQuery) -> str:
    raw = json.dumps({"offset": offset, "query": _query_digest(q)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_token(token: str, q: JobQuery) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        offset = data["offset"]
        digest = data["query"]
        if not isinstance(offset, int) or offset < 0 or not isinstance(digest, str):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
        raise ValidationException(
            "Invalid NextToken: it is not a token that ListCompilationJobs returned.", _LIST) from None
    if digest != _query_digest(q):
        raise ValidationException(
            "Invalid NextToken: it was returned for different filters or sort order; pass the "
            "same filters, SortBy and SortOrder as the call that returned it.", _LIST)
    return offset


def list_compilation_jobs(**request: Any) -> dict[str, Any]:
    validate_operation(_LIST, request)
    q = _list_query(request)
    max_results = request.get("MaxResults", DEFAULT_MAX_RESULTS)
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= MAX_MAX_RESULTS:
        raise ValidationException(
            f"Value '{max_results}' at 'maxResults' failed to satisfy constraint: Member must have "
            f"value between 1 and {MAX_MAX_RESULTS}", _LIST)
    offset = _decode_token(request["NextToken"], q) if request.get("NextToken") else 0
    store = JobStore()
    for record in store.active():
        reaper.reconcile(store, record)
    page = store.query(dataclasses.replace(q, offset=offset, limit=max_results + 1))
    answer: dict[str, Any] = {"CompilationJobSummaries": [responses.summary(r) for r in page[:max_results]]}
    if len(page) > max_results:
        answer["NextToken"] = _encode_token(offset + max_results, q)
    return answer


# -- stop, delete --------------------------------------------------------------------------


def stop_compilation_job(**request: Any) -> dict[str, Any]:
    validate_operation("StopCompilationJob", request)
    name = request["CompilationJobName"]
    store = JobStore()
    record = _job(store, name, "StopCompilationJob")
    if record.status in STOPPABLE:
        try:
            store.transition(name, Status.STOPPING, job_id=record.job_id, stop_requested=True)
            JobLog(record.paths.log).write("StopCompilationJob: stop requested")
            return {}
        except IllegalTransition as e:
            record = store.get(name) or record
            status = e.current
        except JobGone:
            raise ResourceNotFound(f"Could not find compilation job with name {name}",
                                   "StopCompilationJob") from None
    else:
        status = record.status
    raise ValidationException(
        f"Compilation job {name} is in status {status} and cannot be stopped; only jobs in status "
        f"{' or '.join(s.value for s in sorted(STOPPABLE))} can be stopped.", "StopCompilationJob")


def delete_compilation_job(**request: Any) -> dict[str, Any]:
    validate_operation("DeleteCompilationJob", request)
    name = request["CompilationJobName"]
    store = JobStore()
    record = _job(store, name, "DeleteCompilationJob")
    if record.status in ACTIVE:
        hint = ("wait until its status is STOPPED" if record.status == Status.STOPPING
                else "stop it with StopCompilationJob, then delete it once its status is STOPPED")
        raise ValidationException(
            f"Compilation job {name} is in status {record.status} and cannot be deleted; only jobs in "
            f"status {', '.join(s.value for s in sorted(TERMINAL))} can be deleted: {hint}.",
            "DeleteCompilationJob")
    if not store.delete(name, job_id=record.job_id):
        raise ResourceNotFound(f"Could not find compilation job with name {name}", "DeleteCompilationJob")
    shutil.rmtree(record.paths.root, ignore_errors=True)
    return {}
