"""A process's mailbox: ordered messages and at most one waiting receive.

Matching follows HOSTAPI.md section 4.5: an empty filter takes the oldest
message; a filter takes the oldest message whose tag is set and listed, and
untagged messages never match a filter. A waiting receive examines only
messages that arrive while it waits (the queue was searched just before), and
a matching arrival is handed to it directly. A receive that times out or is
cancelled leaves no waiter behind (the fix of lunatic's section 6.1).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import outcome
import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

from hostapi.data import Message

__all__ = ["Mailbox"]


class Mailbox:
    """Messages in arrival order plus the one receive that may be waiting."""

    __slots__ = ("_any", "_queue", "_tags", "_waiter")

    def __init__(self) -> None:
        self._queue: deque[Message] = deque()
        self._waiter: trio.lowlevel.Task | None = None
        self._tags: Sequence[int] = ()
        self._any = False

    def _abort(self, _: object) -> Abort:
        self._waiter = None
        return Abort.SUCCEEDED

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, message: Message) -> None:
        """Deliver ``message``: to the waiting receive if it matches, else queue it."""
        task = self._waiter
        if task is not None and (self._any or (message.tag and message.tag in self._tags)):
            self._waiter = None
            reschedule(task, outcome.Value(message))
            return
        self._queue.append(message)

    def take(self, tags: Sequence[int]) -> Message | None:
        """Remove and return the first queued message matching ``tags``."""
        q = self._queue
        if not q:
            return None
        if not tags:
            return q.popleft()
        for i, m in enumerate(q):
            t = m.tag
            if t and t in tags:
                del q[i]
                return m
        return None

    async def wait(self, tags: Sequence[int], timeout: float | None) -> Message | None:
        """Wait for a newly arriving message matching ``tags`` (any when empty).

        Returns ``None`` when ``timeout`` seconds pass first. Only one receive
        can wait at a time: a process is one sequential thread of control.
        """
        if self._waiter is not None:
            raise RuntimeError("a receive is already waiting on this mailbox")
        if timeout is not None and timeout <= 0:
            return None
        self._waiter = current_task()
        self._tags = tags
        self._any = not tags
        if timeout is None:
            message: Message = await wait_task_rescheduled(self._abort)
            return message
        with trio.move_on_after(timeout):
            message = await wait_task_rescheduled(self._abort)
            return message
        return None

    def drain(self) -> list[Message]:
        """Remove every queued message (a dead process drops its mailbox)."""
        items = list(self._queue)
        self._queue.clear()
        return items
