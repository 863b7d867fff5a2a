"""Restart intensity: at most ``intensity`` restarts in any ``period`` seconds.

OTP's algorithm (``supervisor:add_restart/3``): one counter per supervisor;
before every restart attempt the current time, in whole seconds, is added to
the list of restart times, and those older than ``now - period`` are dropped
(the window is inclusive). If more than ``intensity`` remain, the supervisor
gives up. A cascade of one_for_all or rest_for_one counts once; an attempt
that fails and is retried counts again.

Time is whatever the caller passes, so a supervisor can use Trio's clock (and
tests a ``MockClock``).
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["RestartIntensity"]


class RestartIntensity:
    """The sliding window of one supervisor's restarts."""

    __slots__ = ("_restarts", "intensity", "period")

    def __init__(self, intensity: int, period: int) -> None:
        if isinstance(intensity, bool) or not isinstance(intensity, int) or intensity < 0:
            raise ValueError(f"intensity must be an integer >= 0, got {intensity!r}")
        if isinstance(period, bool) or not isinstance(period, int) or period <= 0:
            raise ValueError(f"period must be an integer > 0 (seconds), got {period!r}")
        self.intensity = intensity
        self.period = period
        self._restarts: deque[int] = deque()

    def add(self, now: float) -> bool:
        """Record a restart at time ``now`` (seconds); False if it is one too many.

        Times only grow, so the oldest restarts are at the right end and
        dropping the expired ones costs nothing per restart on average.
        """
        second = math.floor(now)
        threshold = second - self.period
        restarts = self._restarts
        restarts.appendleft(second)
        while restarts[-1] < threshold:
            restarts.pop()
        return len(restarts) <= self.intensity

    @property
    def recent(self) -> tuple[int, ...]:
        """The restart times still in the window (newest first)."""
        return tuple(self._restarts)
