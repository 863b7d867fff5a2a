"""Python-native processes: an async function with a mailbox.

A Python process obeys the same signals as a Wasm process: it is linked,
monitored and killed the same way, ``die_when_link_dies`` decides whether a
failed link kills it or arrives as a :class:`~hostapi.data.LinkDied` message,
and its exit is reported to its links and monitors. It is cancelled when
killed; its function returning is a normal exit and an exception a failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import outcome
import trio

from hostapi.data import Message, ObjectMessage

from ._exit import NORMAL_EXIT, Exit, ExitReason
from ._process import Process

if TYPE_CHECKING:
    from hostapi.data import ProcessConfig
    from hostapi.ffi import Module

    from ._capture import CaptureStream
    from ._environment import Environment
    from ._events import SupervisorEvent
    from ._handle import ProcessHandle
    from ._runtime import Runtime
    from ._specs import ChildSpec, SupervisorFlags
    from ._supervisor import Supervisor

__all__ = ["Context", "ProcessExit", "ProcessFunction", "PythonProcess"]

ProcessFunction = Callable[..., Awaitable[Any]]


class ProcessExit(Exception):
    """Raised in a Python process to end it with a chosen reason, as Erlang's
    ``exit(Reason)``: ``raise ProcessExit(ExitReason.SHUTDOWN)``."""

    def __init__(self, reason: ExitReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.exit = Exit(reason, detail)


class PythonProcess(Process):
    """A process whose code is an async Python function."""

    __slots__ = ("args", "fn", "name", "ready", "result")

    kind = "python"

    def __init__(
        self,
        runtime: Runtime,
        environment: Environment,
        pid: int,
        fn: ProcessFunction,
        args: Sequence[Any],
    ) -> None:
        super().__init__(runtime, environment, pid)
        self.fn = fn
        self.args = tuple(args)
        self.result: outcome.Outcome[Any] | None = None
        #: Set by :meth:`Context.started` (and when the process ends).
        self.ready = trio.Event()

    def _release(self) -> None:
        self.ready.set()

    async def _body(self) -> Exit:
        try:
            value = await self.fn(Context(self), *self.args)
        except trio.Cancelled:
            raise
        except ProcessExit as e:
            self.result = outcome.Error(e)
            return e.exit
        except Exception as e:
            self.result = outcome.Error(e)
            return Exit(ExitReason.FAILURE, f"{type(e).__name__}: {e}")
        self.result = outcome.Value(value)
        return NORMAL_EXIT


class Context:
    """What a Python process's function receives: its identity and mailbox.

    Every operation acts as this process, exactly as the corresponding
    ``lunatic::*`` host call would for a Wasm process.
    """

    __slots__ = ("_proc",)

    def __init__(self, proc: PythonProcess) -> None:
        self._proc = proc

    @property
    def id(self) -> int:
        """This process's id in its environment."""
        return self._proc.id

    @property
    def environment_id(self) -> int:
        return self._proc.environment.id

    def __repr__(self) -> str:
        return f"<Context of {self._proc!r}>"

    # -- messages -----------------------------------------------------------

    def send(self, pid: int, data: bytes | Message, *, tag: int = 0) -> None:
        """Send ``data`` (bytes, or a message to forward) to ``pid``.

        A process that does not exist is not an error: the message is dropped.
        """
        self._proc.runtime.send(pid, data, tag=tag, environment=self._proc.environment)

    def send_object(self, pid: int, value: object, *, tag: int = 0) -> None:
        """Send any Python object to a Python process (it receives an
        :class:`~hostapi.data.ObjectMessage`); Wasm processes refuse them."""
        self.send(pid, ObjectMessage(value, tag))

    async def receive(self, *tags: int, timeout: float | None = None) -> Message:
        """The first message matching ``tags`` (any message when none given).

        Waits up to ``timeout`` seconds (forever when ``None``) and raises
        :class:`trio.TooSlowError` when none arrives in time.
        """
        box = self._proc.mailbox
        m = box.take(tags)
        if m is not None:
            await trio.lowlevel.checkpoint()
            return m
        m = await box.wait(tags, timeout)
        if m is None:
            raise trio.TooSlowError(f"no message within {timeout} s")
        return m

    def pending(self) -> int:
        """Number of queued messages."""
        return len(self._proc.mailbox)

    def started(self) -> None:
        """Say that initialization is done (a supervised child whose spec asks
        for it counts as started only from here, like ``task_status.started()``;
        failing before counts as a failed start)."""
        self._proc.ready.set()

    # -- signals --------------------------------------------------------------

    def link(self, pid: int, tag: int = 0) -> None:
        """Link with ``pid`` (both sides record ``tag``)."""
        self._proc.link(tag, pid)

    def unlink(self, pid: int) -> None:
        self._proc.unlink(pid)

    def monitor(self, pid: int) -> None:
        """Get a ProcessDied message when ``pid`` ends (at once if it does not exist)."""
        self._proc.monitor(pid)

    def stop_monitoring(self, pid: int) -> None:
        self._proc.stop_monitoring(pid)

    def die_when_link_dies(self, die: bool) -> None:
        """Whether a failed link kills this process (the default) or is a message."""
        self._proc.set_die_when_link_dies(die)

    def kill(self, pid: int) -> None:
        self._proc.kill(pid)

    def exists(self, pid: int) -> bool:
        return self._proc.environment.exists(pid)

    # -- spawning -------------------------------------------------------------

    async def spawn(
        self,
        module: Module,
        entry: str = "_start",
        params: Sequence[int] = (),
        *,
        config: ProcessConfig | None = None,
        link: int = 0,
        stdout: CaptureStream | None = None,
        stderr: CaptureStream | None = None,
    ) -> ProcessHandle:
        """Spawn a Wasm child; ``link`` != 0 links it to this process with that tag."""
        return await self._proc.runtime._spawn_wasm_api(
            self._proc, module, entry, params, config, link, stdout, stderr
        )

    async def spawn_python(self, fn: ProcessFunction, *args: Any, link: int = 0) -> ProcessHandle:
        """Spawn a Python child; ``link`` != 0 links it to this process with that tag."""
        return await self._proc.runtime._spawn_python(self._proc, fn, args, link)

    async def start_supervisor(
        self,
        flags: SupervisorFlags,
        children: Sequence[ChildSpec] = (),
        *,
        name: str = "sup",
        events: Callable[[SupervisorEvent], object] | None = None,
    ) -> Supervisor:
        """Start a supervisor as a child of this process, linked to it: if this
        process fails, the supervisor stops its children and exits too."""
        from ._supervisor import start_supervisor

        return await start_supervisor(
            self._proc.runtime, flags, children, name=name, events=events, parent=self._proc
        )
