"""The vocabulary the strategies decide with: plain values, no runtime objects."""

from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["Action", "ChildView", "Plan", "Reason", "Restart", "Strategy"]


class Restart(enum.Enum):
    """When a child is restarted (OTP's restart types)."""

    #: Always restarted.
    PERMANENT = "permanent"
    #: Restarted only after an abnormal exit (not ``normal`` or ``shutdown``).
    TRANSIENT = "transient"
    #: Never restarted.
    TEMPORARY = "temporary"

    def __str__(self) -> str:
        return self.value


class Reason(enum.Enum):
    """Why a child exited, as the strategies see it (the runtime's exit reasons)."""

    NORMAL = "normal"
    SHUTDOWN = "shutdown"
    KILLED = "killed"
    FAILURE = "failure"

    @property
    def abnormal(self) -> bool:
        """``killed`` and ``failure``: the exits that count as crashes."""
        return self in (Reason.KILLED, Reason.FAILURE)

    def __str__(self) -> str:
        return self.value


class Strategy(enum.Enum):
    """Which children a supervisor restarts when one of them must be."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"
    SIMPLE_ONE_FOR_ONE = "simple_one_for_one"

    def __str__(self) -> str:
        return self.value


class Action(enum.Enum):
    """What happens to a child that exited on its own (OTP's ``do_restart``)."""

    #: Restart it (and apply the strategy to its siblings).
    RESTART = "restart"
    #: Keep its spec, with no process: it can be restarted through the API.
    KEEP = "keep"
    #: Delete its spec.
    REMOVE = "remove"


class ChildView(NamedTuple):
    """A child as a strategy sees it: its id, restart type and whether it runs."""

    id: str
    restart: Restart
    running: bool


class Plan(NamedTuple):
    """A strategy's decision.

    ``stop``: children to stop, in that order (newest first); ``restart``:
    children to start again, in that order (oldest first); ``remove``:
    temporary bystanders whose specs are deleted instead of restarted.
    """

    stop: tuple[str, ...]
    restart: tuple[str, ...]
    remove: tuple[str, ...]
