"""``lunatic::timer``: delayed messages (HOSTAPI.md section 2.5).

``send_after`` takes the scratch message and returns a timer id from the
caller's timer table; ``cancel_timer`` returns 1 if the id names a timer that
has not fired (fired timers leave the table at once, the fix of lunatic's
section 6.11, so a fired timer gives 0).
"""

from __future__ import annotations

from .abi import MASK64, Namespace
from .message import take_scratch
from .protocols import HostProcess

__all__ = ["namespace"]

namespace = Namespace("lunatic::timer")


@namespace.function("send_after (i64, i64) -> i64")
def send_after(proc: HostProcess, pid: int, delay_ms: int) -> int:
    """Queue the scratch message for ``pid`` after ``delay_ms``; the timer's id."""
    message = take_scratch(proc, "lunatic::timer::send_after")
    return proc.send_after(pid & MASK64, delay_ms & MASK64, message)


@namespace.function("cancel_timer (i64) -> i32")
def cancel_timer(proc: HostProcess, timer_id: int) -> int:
    """1 if a pending timer was cancelled, 0 otherwise (it never traps)."""
    return 1 if proc.cancel_timer(timer_id & MASK64) else 0
