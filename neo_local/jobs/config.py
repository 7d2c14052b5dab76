"""Where neo-local keeps its jobs: ``$NEO_LOCAL_HOME`` (default ``~/.neo-local``).

    $NEO_LOCAL_HOME/jobs.db                 the job store (SQLite)
    $NEO_LOCAL_HOME/jobs/<name>/job-<job id>.log
                                            the job's log: progress, warnings, tracebacks
    $NEO_LOCAL_HOME/jobs/<name>/scratch-<job id>/
                                            the worker's scratch directory, removed at the end
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "NEO_LOCAL_HOME"


def home() -> Path:
    """The neo-local home directory (absolute; not created here)."""
    value = os.environ.get(HOME_ENV)
    base = Path(value).expanduser() if value else Path.home() / ".neo-local"
    return base.resolve()


def db_path() -> Path:
    return home() / "jobs.db"


@dataclass(frozen=True)
class JobPaths:
    """The files of one job under the home directory. The log and the scratch directory are the
    job id's: a job deleted and created again under its name gets new ones, which the first job's
    processes, still logging and removing their scratch directory as they exit, do not touch."""

    root: Path
    job_id: str = ""

    @classmethod
    def of(cls, name: str, job_id: str = "") -> "JobPaths":
        return cls(home() / "jobs" / name, job_id)

    @property
    def log(self) -> Path:
        return self.root / f"job-{self.job_id}.log"

    @property
    def scratch(self) -> Path:
        return self.root / f"scratch-{self.job_id}"

    def create(self) -> "JobPaths":
        self.root.mkdir(parents=True, exist_ok=True)
        return self
