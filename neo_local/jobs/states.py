"""The compilation job state machine, as a table of allowed transitions."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """CompilationJobStatus, as the service spells it."""

    STARTING = "STARTING"
    INPROGRESS = "INPROGRESS"
    STOPPING = "STOPPING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    def __str__(self) -> str:
        return self.value


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.STARTING: frozenset({Status.INPROGRESS, Status.STOPPING, Status.FAILED, Status.STOPPED}),
    Status.INPROGRESS: frozenset({Status.COMPLETED, Status.FAILED, Status.STOPPING}),
    # A worker may finish (or fail) before the stop reaches it.
    Status.STOPPING: frozenset({Status.STOPPED, Status.FAILED, Status.COMPLETED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.STOPPED: frozenset(),
}

TERMINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
ACTIVE = frozenset(Status) - TERMINAL
STOPPABLE = frozenset({Status.STARTING, Status.INPROGRESS})


class IllegalTransition(Exception):
    """A status change that the state machine does not allow (e.g. out of a terminal state)."""

    def __init__(self, name: str, current: Status, wanted: Status) -> None:
        super().__init__(f"compilation job {name}: cannot go from {current} to {wanted}")
        self.name = name
        self.current = current
        self.wanted = wanted


def check_transition(name: str, current: Status, wanted: Status) -> None:
    if wanted not in TRANSITIONS[current]:
        raise IllegalTransition(name, current, wanted)
