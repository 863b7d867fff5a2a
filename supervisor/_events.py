"""The supervision event stream: what every supervisor of a tree did, in order.

Each :class:`SupervisorEvent` has a timestamp (seconds since the tree
started, on Trio's clock, so a ``MockClock`` drives it), its kind, the
supervisor's id path (``root/sub``), the child's id and process id, and for
exits the reason (``normal``, ``shutdown``, ``killed``, ``failure``) with its
detail. Kinds:

========================  ==============================================
``supervisor_started``    a supervisor has started all its children
``child_started``         a child process is running
``child_exited``          a child ended (on its own or stopped)
``start_failed``          starting a child failed
``restart``               a child is about to be restarted
``intensity_exceeded``    too many restarts: the supervisor gives up
``shutdown_timeout``      a Python child outlived its shutdown timeout
``supervisor_stopped``    a supervisor ended
========================  ==============================================

Events reach subscribers (async iterators, for tests and experiments) and
stdlib logging in the spirit of OTP's supervisor reports: restarts, start
errors and the intensity limit at error level, starts at info, the rest at
debug. Records are formatted lazily.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

import trio

from ._logs import heard

__all__ = ["EventBus", "SupervisorEvent"]

logger = logging.getLogger("supervisor.events")

#: Event kinds and the log level of each.
KINDS: Final = {
    "supervisor_started": logging.INFO,
    "child_started": logging.INFO,
    "child_exited": logging.DEBUG,
    "start_failed": logging.ERROR,
    "restart": logging.ERROR,
    "intensity_exceeded": logging.ERROR,
    "shutdown_timeout": logging.WARNING,
    "supervisor_stopped": logging.INFO,
    "fault_injected": logging.INFO,
}

# OTP's report names (errorContext) for the error-level events.
_CONTEXT: Final = {
    "start_failed": "start_error",
    "restart": "child_terminated",
    "intensity_exceeded": "reached_max_restart_intensity",
    "shutdown_timeout": "shutdown_error",
}


@dataclass(frozen=True)
class SupervisorEvent:
    """One thing a supervisor did or saw."""

    t: float
    event: str
    supervisor: str
    child: str | None = None
    pid: int | None = None
    reason: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the format of ``lunatrio supervise --events``)."""
        d = asdict(self)
        d["t"] = round(self.t, 6)
        return d

    def brief(self) -> tuple[str, str | None, str | None]:
        """``(event, child, reason)``: what most trace assertions compare."""
        return (self.event, self.child, self.reason)


class EventBus:
    """Delivers a tree's events to its subscribers, listeners and the log."""

    def __init__(self) -> None:
        self.started = trio.current_time()
        self._channels: list[trio.MemorySendChannel[SupervisorEvent]] = []
        self._listeners: list[Callable[[SupervisorEvent], object]] = []

    def emit(
        self,
        event: str,
        supervisor: str,
        child: str | None = None,
        pid: int | None = None,
        reason: str | None = None,
        detail: str = "",
    ) -> SupervisorEvent:
        e = SupervisorEvent(
            trio.current_time() - self.started, event, supervisor, child, pid, reason, detail
        )
        level = KINDS.get(event, logging.INFO)
        if heard(logger, level):
            _log(level, e)
        for listener in self._listeners:
            listener(e)
        if self._channels:
            alive = []
            for ch in self._channels:
                try:
                    ch.send_nowait(e)
                    alive.append(ch)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            self._channels = alive
        return e

    def listen(self, listener: Callable[[SupervisorEvent], object]) -> None:
        """Call ``listener(event)`` for every event from now on (synchronously)."""
        self._listeners.append(listener)

    def subscribe(self) -> trio.MemoryReceiveChannel[SupervisorEvent]:
        """A channel receiving every event from now on (unbounded)."""
        send, receive = trio.open_memory_channel[SupervisorEvent](math.inf)
        self._channels.append(send)
        return receive


def _log(level: int, e: SupervisorEvent) -> None:
    context = _CONTEXT.get(e.event)
    extra = {
        "supervisor": e.supervisor,
        "event": e.event,
        "child": e.child,
        "pid": e.pid,
        "reason": e.reason,
        "detail": e.detail,
        "error_context": context,
    }
    logger.log(
        level,
        "supervisor %s: %s %s (pid %s)%s%s",
        e.supervisor,
        context or e.event,
        e.child if e.child is not None else "-",
        e.pid if e.pid is not None else "-",
        f": {e.reason}" if e.reason else "",
        f": {e.detail}" if e.detail else "",
        extra=extra,
    )
