"""Start a job's detached processes (supervisor, worker) with the right environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from neo_local.jobs import config


def package_root() -> str:
    """The directory that holds the neo_local package, for the children's PYTHONPATH."""
    return str(Path(__file__).resolve().parents[2])


def child_env() -> dict[str, str]:
    """The caller's environment, with NEO_LOCAL_HOME fixed and neo_local importable."""
    env = dict(os.environ)
    env[config.HOME_ENV] = str(config.home())
    parts = [package_root()] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    return env


def spawn(module: str, args: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """``python -m module args...`` in a new session (its own process group), output to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            start_new_session=True, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            env=child_env(), cwd=cwd, close_fds=True,
        )
