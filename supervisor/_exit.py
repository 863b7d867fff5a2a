"""How a process ended: :class:`ExitReason` and the :class:`Exit` record."""

from __future__ import annotations

import enum

__all__ = ["Exit", "ExitReason"]


class ExitReason(enum.Enum):
    """OTP's exit reasons, as lunatrio reports them.

    * ``NORMAL``: the entry returned, WASI ``proc_exit(0)``, or a Python
      process's function returned;
    * ``SHUTDOWN``: stopped on request by a supervisor;
    * ``KILLED``: killed (``kill``, a link to a failed process, or the runtime
      shutting down);
    * ``FAILURE``: a trap, ``proc_exit(n != 0)``, running out of fuel, a
      missing entry, or an exception in a Python process.

    Guests see only lunatic's two-valued reason: ``NORMAL`` is Normal and every
    other reason is Failure (so links fire for all of them).
    """

    NORMAL = "normal"
    SHUTDOWN = "shutdown"
    KILLED = "killed"
    FAILURE = "failure"

    def __str__(self) -> str:
        return self.value


class Exit:
    """A process's exit record: its reason, a human-readable detail, and the
    WASI exit status when the process called ``proc_exit``."""

    __slots__ = ("detail", "reason", "status")

    def __init__(self, reason: ExitReason, detail: str = "", status: int | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.status = status

    @property
    def normal(self) -> bool:
        """True for ``NORMAL`` only: links fire for every other reason."""
        return self.reason is ExitReason.NORMAL

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Exit):
            return NotImplemented
        return (self.reason, self.detail, self.status) == (other.reason, other.detail, other.status)

    def __hash__(self) -> int:
        return hash((self.reason, self.detail, self.status))

    def __repr__(self) -> str:
        extra = f", status={self.status}" if self.status is not None else ""
        return f"Exit({self.reason.value!r}, {self.detail!r}{extra})"

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value


NORMAL_EXIT = Exit(ExitReason.NORMAL)
