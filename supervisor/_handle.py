"""The handle Python code holds on a process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import outcome

from ._exit import Exit, ExitReason

if TYPE_CHECKING:
    from ._process import Process

__all__ = ["ProcessHandle"]


class ProcessHandle:
    """A process as Python code sees it: its id, state and exit.

    ``await handle.wait()`` returns the :class:`Exit` once the process has
    ended. A handle stays valid after the process is gone.
    """

    __slots__ = ("_proc",)

    def __init__(self, proc: Process) -> None:
        self._proc = proc

    @property
    def id(self) -> int:
        """The process id, unique in its environment."""
        return self._proc.id

    @property
    def environment_id(self) -> int:
        return self._proc.environment.id

    @property
    def kind(self) -> str:
        """``"wasm"`` or ``"python"``."""
        return self._proc.kind

    @property
    def alive(self) -> bool:
        return self._proc.alive

    @property
    def exit(self) -> Exit | None:
        """How the process ended, or ``None`` while it runs."""
        return self._proc.exit

    @property
    def result(self) -> outcome.Outcome[Any] | None:
        """The entry's results or the function's return value (``outcome.Value``),
        or what made it fail (``outcome.Error``); ``None`` while it runs or when
        it was killed."""
        r: outcome.Outcome[Any] | None = getattr(self._proc, "result", None)
        return r

    async def wait(self) -> Exit:
        """Wait for the process to end; return its :class:`Exit`."""
        return await self._proc.wait()

    def kill(self) -> None:
        """Kill the process (reason ``killed``); nothing happens if it has ended."""
        self._proc.terminate(Exit(ExitReason.KILLED, "killed"))

    def info(self) -> dict[str, Any]:
        """Links, monitors, mailbox size and state, for debugging and tests."""
        return self._proc.info()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProcessHandle) and other._proc is self._proc

    def __hash__(self) -> int:
        return id(self._proc)

    def __repr__(self) -> str:
        return f"<ProcessHandle {self._proc!r}>"
