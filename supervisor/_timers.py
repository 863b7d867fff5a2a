"""Delayed messages: one Trio task per runtime serves every timer.

``lunatic::timer::send_after`` queues a message for a process after a delay.
Timers are kept in a heap and served by a single task that sleeps until the
earliest deadline (so a timer costs a heap entry, not a task). The target is
resolved when the timer is created; a target that has died by the time the
timer fires loses the message. A timer outlives the process that created it.
Cancelled and fired timers are gone: a cancelled entry is skipped when it
comes up, and the heap is rebuilt once more than half of it is cancelled.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from hostapi.data import Message

    from ._process import Process

__all__ = ["Timer", "TimerService"]


class Timer:
    """One pending delivery; :meth:`cancel` is idempotent."""

    __slots__ = ("deadline", "message", "on_fire", "seq", "service", "target")

    def __init__(
        self,
        service: TimerService,
        deadline: float,
        seq: int,
        target: Process | None,
        message: Message,
        on_fire: Callable[[], object] | None,
    ) -> None:
        self.service = service
        self.deadline = deadline
        self.seq = seq
        self.target = target
        self.message: Message | None = message
        self.on_fire = on_fire

    def __lt__(self, other: Timer) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)

    def cancel(self) -> bool:
        """Stop the delivery; False if the timer already fired or was cancelled."""
        if self.message is None:
            return False
        self.message = None
        self.target = None
        self.service._cancelled()
        return True


class TimerService:
    """The timers of one runtime."""

    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._live = 0
        self._dead = 0
        self._scope: trio.CancelScope | None = None
        self._running = False

    @property
    def pending(self) -> int:
        """Timers that have neither fired nor been cancelled."""
        return self._live

    @property
    def size(self) -> int:
        """Entries in the heap (pending ones and cancelled ones not yet dropped)."""
        return len(self._heap)

    def schedule(
        self,
        nursery: trio.Nursery,
        delay: float,
        target: Process | None,
        message: Message,
        on_fire: Callable[[], object] | None = None,
    ) -> Timer:
        """Deliver ``message`` to ``target`` in ``delay`` seconds (0: at once, asynchronously)."""
        deadline = trio.current_time() + max(0.0, delay)
        timer = Timer(self, deadline, next(self._seq), target, message, on_fire)
        heapq.heappush(self._heap, timer)
        self._live += 1
        if not self._running:
            self._running = True
            nursery.start_soon(self._serve)
        elif self._scope is not None and deadline < self._scope.deadline:
            self._scope.deadline = deadline
        return timer

    def _cancelled(self) -> None:
        self._live -= 1
        self._dead += 1
        if self._dead > 64 and self._dead * 2 > len(self._heap):
            self._heap = [t for t in self._heap if t.message is not None]
            heapq.heapify(self._heap)
            self._dead = 0

    async def _serve(self) -> None:
        try:
            while self._heap:
                with trio.CancelScope(deadline=self._heap[0].deadline) as scope:
                    self._scope = scope
                    await trio.sleep_forever()
                self._scope = None
                now = trio.current_time()
                while self._heap and self._heap[0].deadline <= now:
                    self._fire(heapq.heappop(self._heap))
        finally:
            self._running = False
            self._scope = None

    def _fire(self, timer: Timer) -> None:
        message = timer.message
        if message is None:
            self._dead -= 1
            return
        self._live -= 1
        timer.message = None
        target, timer.target = timer.target, None
        if target is not None and target.alive:
            target.mailbox.push(message)
        if timer.on_fire is not None:
            timer.on_fire()
