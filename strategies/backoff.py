"""Restart backoff: wait before a restart, longer after each one (opt-in).

OTP restarts at once and leaves storms to the intensity limit; Akka and
ractor-supervisor offer backoff instead. With a :class:`Backoff`, the ``n``-th
consecutive restart of a child waits ``min(maximum, minimum * 2**(n-1))``
seconds, spread by up to ``jitter`` (a fraction) either way; a child that has
run for ``reset_after`` seconds starts again from ``minimum``. Restarts still
count against the intensity limit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """Exponential restart delays with jitter and reset."""

    minimum: float = 0.1
    maximum: float = 10.0
    jitter: float = 0.0
    reset_after: float = 60.0

    def __post_init__(self) -> None:
        if not 0 <= self.minimum <= self.maximum:
            raise ValueError(
                f"backoff needs 0 <= minimum <= maximum, got {self.minimum} and {self.maximum}"
            )
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff jitter must be between 0 and 1, got {self.jitter}")
        if self.reset_after <= 0:
            raise ValueError(f"backoff reset_after must be positive, got {self.reset_after}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before restart number ``attempt`` (1, 2, ...)."""
        if attempt < 1:
            raise ValueError(f"attempt counts from 1, got {attempt}")
        base = float(min(self.maximum, self.minimum * 2.0 ** min(attempt - 1, 64)))
        if self.jitter:
            spread = base * self.jitter
            base += (rng or random).uniform(-spread, spread)
        return max(0.0, base)

    def next_attempt(self, previous: int, ran_for: float) -> int:
        """The attempt number of the next restart of a child that ran ``ran_for``
        seconds after restart number ``previous`` (0: none yet)."""
        return 1 if ran_for >= self.reset_after else previous + 1
