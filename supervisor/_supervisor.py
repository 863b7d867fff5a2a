"""Supervisors: OTP's supervisor, as a process of the runtime.

A supervisor is a Python process that catches link failures
(``die_when_link_dies(False)``), spawns each child linked to it, monitors it,
and turns every child exit into a decision in one loop: the restart table of
:mod:`strategies.restart`, then its strategy's plan, bounded by the restart
intensity. Children are Wasm processes, Python processes or supervisors,
supervised alike. Everything it does reaches its tree's event stream.

The loop serves, in arrival order: child exits (``ProcessDied``, whose exit
record gives the real reason), the API calls of :class:`Supervisor` (sent as
object messages), retries of failed restarts (a message it sends itself, so
it stays responsive between attempts, as OTP does), delayed restarts (backoff)
and stop requests.

Stopping a child (OTP's ``shutdown/1``):

* ``brutal_kill``: killed at once (``killed``);
* a Wasm child that does not catch link failures: stopped at once, like a
  process that does not trap exits (``shutdown``), even while it spins;
* a Wasm child that catches them: sent lunatic-rs's AbstractProcess shutdown
  request, given its timeout to return, then killed (``killed``);
* a Python child: cancelled (``shutdown``); one that shields itself past its
  timeout is reported (``shutdown_timeout``) and waited for;
* a child supervisor: asked to stop its own children in order, then exit.

A supervisor stops its children newest first (a ``simple_one_for_one`` one all
at once) and exits with reason ``shutdown``: when asked to, when its restart
intensity is exceeded (its parent then applies its own strategy), when
``auto_shutdown`` fires, or when its parent process fails.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import outcome
import trio

from hostapi.data import DataMessage, LinkDied, ObjectMessage, ProcessDied
from hostapi.protocols import SpawnError
from strategies import (
    Action,
    Backoff,
    ChildView,
    Reason,
    Restart,
    RestartIntensity,
    Strategy,
    auto_shutdown_triggered,
    restart_decision,
    strategy_for,
)

from ._events import EventBus, SupervisorEvent
from ._exit import Exit, ExitReason
from ._handle import ProcessHandle
from ._python import Context, ProcessExit, PythonProcess
from ._specs import (
    BRUTAL_KILL,
    INFINITY,
    ChildSpec,
    PythonChild,
    SupervisorChild,
    SupervisorFlags,
    WasmChild,
    check_children,
)

if TYPE_CHECKING:
    from ._process import Process
    from ._runtime import Runtime

__all__ = [
    "AlreadyPresent",
    "AlreadyStarted",
    "ChildCounts",
    "ChildInfo",
    "NoProc",
    "NotFound",
    "Restarting",
    "Running",
    "SimpleOneForOne",
    "StartFailed",
    "Supervisor",
    "SupervisorError",
    "open_supervisor",
    "run_supervisor",
    "start_supervisor",
]

#: lunatic-rs's AbstractProcess handler number for a shutdown request (5.7).
_SHUTDOWN_HANDLER: Final = 32

# -- errors -----------------------------------------------------------------------


class SupervisorError(Exception):
    """Base of the errors a supervisor's API raises (named after OTP's results)."""


class AlreadyStarted(SupervisorError):
    """``start_child``: a child with this id is running (``already_started``)."""

    def __init__(self, child: str, process: ProcessHandle) -> None:
        super().__init__(f"child {child!r} is already started as process {process.id}")
        self.child = child
        self.process = process


class AlreadyPresent(SupervisorError):
    """``start_child``: a child with this id exists but is not running."""


class Running(SupervisorError):
    """``restart_child`` / ``delete_child``: the child is running."""


class Restarting(SupervisorError):
    """``restart_child`` / ``delete_child``: the child is being restarted."""


class NotFound(SupervisorError):
    """No such child (``not_found``)."""


class SimpleOneForOne(SupervisorError):
    """The call makes no sense for a ``simple_one_for_one`` supervisor."""


class NoProc(SupervisorError):
    """The supervisor is not running (``noproc``)."""


class StartFailed(SupervisorError):
    """A child could not be started (``failed_to_start_child`` at start-up)."""

    def __init__(self, child: str, reason: str) -> None:
        super().__init__(f"failed to start child {child!r}: {reason}")
        self.child = child
        self.reason = reason


# -- what the API returns ----------------------------------------------------------


@dataclass(frozen=True)
class ChildInfo:
    """A row of ``which_children``: the child's id (``None`` under
    simple_one_for_one), its process (``None`` when not running), whether it
    is being restarted, and its type."""

    id: str | None
    process: ProcessHandle | None
    restarting: bool
    type: str


@dataclass(frozen=True)
class ChildCounts:
    """``count_children``: specs, running children, supervisors and workers."""

    specs: int
    active: int
    supervisors: int
    workers: int


# -- messages a supervisor receives from Python code and from itself ------------------


class _Call:
    __slots__ = ("args", "done", "op", "result")

    def __init__(self, op: str, args: tuple[Any, ...]) -> None:
        self.op = op
        self.args = args
        self.done = trio.Event()
        self.result: outcome.Outcome[Any] | None = None

    def reply(self, result: outcome.Outcome[Any]) -> None:
        if self.result is None:
            self.result = result
            self.done.set()


@dataclass(frozen=True)
class _TryAgain:
    key: str


@dataclass(frozen=True)
class _RestartDue:
    key: str


@dataclass(frozen=True)
class _Stop:
    reason: str = "shutdown"


# -- the children ----------------------------------------------------------------------

RUNNING, STOPPED, RESTARTING = "running", "stopped", "restarting"


class _Child:
    __slots__ = ("args", "attempt", "key", "proc", "spec", "started_at", "state")

    def __init__(self, key: str, spec: ChildSpec, args: tuple[Any, ...] = ()) -> None:
        self.key = key
        self.spec = spec
        self.args = args
        self.proc: Process | None = None
        self.state = STOPPED
        self.started_at = 0.0
        self.attempt = 0

    def view(self) -> ChildView:
        return ChildView(self.key, self.spec.restart, self.state == RUNNING)


class _StartFailure(Exception):
    pass


class _Core:
    """One supervisor: its children, its loop, and the API it serves."""

    def __init__(
        self,
        runtime: Runtime,
        flags: SupervisorFlags,
        specs: Sequence[ChildSpec],
        path: str,
        bus: EventBus,
    ) -> None:
        self.runtime = runtime
        self.flags = flags
        self.simple = flags.strategy is Strategy.SIMPLE_ONE_FOR_ONE
        self.strategy = strategy_for(flags.strategy)
        self.intensity = RestartIntensity(flags.intensity, flags.period)
        self.path = path
        self.bus = bus
        self.specs = tuple(specs)
        self.children: list[_Child] = []
        self.by_pid: dict[int, _Child] = {}
        self._keys = itertools.count(1)
        self._tags = itertools.count(1 << 40)
        self.ctx: Context | None = None
        self.proc: PythonProcess | None = None
        self.parent: int | None = None
        self.started = trio.Event()
        self.start_error: StartFailed | None = None
        self.exit: Exit | None = None
        self._timers: trio.Nursery | None = None

    # -- the process ------------------------------------------------------------

    async def launched(self, handle: ProcessHandle) -> ProcessHandle:
        """``handle``, the process just spawned to run :meth:`main`, once it
        has started its children; raises why it could not."""
        await self.started.wait()
        if self.start_error is not None:
            await handle.wait()
            raise self.start_error
        return handle

    async def main(self, ctx: Context) -> None:
        """The supervisor process's function."""
        self.ctx = ctx
        proc = ctx._proc
        assert isinstance(proc, PythonProcess)
        self.proc = proc
        ctx.die_when_link_dies(False)
        try:
            async with trio.open_nursery() as timers:
                self._timers = timers
                try:
                    await self._init()
                finally:
                    self.started.set()
                self.bus.emit("supervisor_started", self.path, pid=ctx.id)
                exit = await self._loop()
                timers.cancel_scope.cancel()
            raise ProcessExit(exit.reason, exit.detail)
        finally:
            self._fail_pending_calls()
            why = self.exit or proc._cause or Exit(ExitReason.KILLED, "cancelled")
            self.bus.emit(
                "supervisor_stopped",
                self.path,
                pid=ctx.id,
                reason=str(why.reason),
                detail=why.detail,
            )

    async def _init(self) -> None:
        if self.simple:
            return
        for spec in self.specs:
            child = _Child(spec.id, spec)
            self.children.append(child)
            try:
                await self._start(child)
            except _StartFailure as e:
                self.children.remove(child)
                self.start_error = StartFailed(spec.id, str(e))
                await self._stop_all()
                self.exit = Exit(ExitReason.FAILURE, str(self.start_error))
                raise ProcessExit(ExitReason.FAILURE, str(self.start_error)) from None

    async def _loop(self) -> Exit:
        assert self.ctx is not None
        while self.exit is None:
            m = await self.ctx.receive()
            if isinstance(m, ProcessDied):
                child = self.by_pid.get(m.pid)
                if child is not None:
                    await self._child_exited(child)
            elif isinstance(m, LinkDied):
                if m.pid not in self.by_pid and m.pid == self.parent and isinstance(m.exit, Exit):
                    # OTP: an exit signal from the parent terminates the supervisor
                    self.exit = Exit(m.exit.reason, f"parent exited: {m.exit}")
            elif isinstance(m, ObjectMessage):
                v = m.value
                if isinstance(v, _Call):
                    await self._serve(v)
                elif isinstance(v, _TryAgain):
                    await self._try_again(v.key)
                elif isinstance(v, _RestartDue):
                    await self._restart_due(v.key)
                elif isinstance(v, _Stop):
                    self.exit = Exit(ExitReason.SHUTDOWN, v.reason)
            # data messages (late replies to shutdown requests) are ignored
        await self._stop_all()
        return self.exit

    def _fail_pending_calls(self) -> None:
        if self.proc is None:
            return
        for m in self.proc.mailbox.drain():
            if isinstance(m, ObjectMessage) and isinstance(m.value, _Call):
                m.value.reply(outcome.Error(NoProc(f"supervisor {self.path} is not running")))

    # -- starting and stopping children ----------------------------------------------

    async def _start(self, child: _Child) -> None:
        """Start ``child``; raises :class:`_StartFailure` with the reason."""
        assert self.ctx is not None
        spec, start, tag = child.spec, child.spec.start, next(self._tags)
        try:
            if isinstance(start, WasmChild):
                handle = await self.ctx.spawn(
                    start.module,
                    start.entry,
                    start.params + child.args,
                    config=start.config,
                    link=tag,
                )
            elif isinstance(start, PythonChild):
                handle = await self.ctx.spawn_python(start.fn, *start.args, *child.args, link=tag)
                if start.ready:
                    await self._initialized(handle)
            else:
                handle = await self._start_supervisor(child, start, tag)
        except (SpawnError, ValueError, TypeError, StartFailed) as e:
            self.bus.emit(
                "start_failed", self.path, spec.id if not self.simple else None, detail=str(e)
            )
            raise _StartFailure(str(e)) from None
        self.ctx.monitor(handle.id)
        proc = handle._proc
        child.proc = proc
        child.state = RUNNING
        child.started_at = trio.current_time()
        self.by_pid[proc.id] = child
        self.bus.emit("child_started", self.path, self._name(child), pid=proc.id)

    async def _initialized(self, handle: ProcessHandle) -> None:
        """Wait for a Python child to call ``ctx.started()``; fail if it ends first."""
        proc = handle._proc
        assert isinstance(proc, PythonProcess)
        await proc.ready.wait()
        if proc.exit is not None:
            raise SpawnError(f"exited during init: {proc.exit}")

    async def _start_supervisor(
        self, child: _Child, start: SupervisorChild, tag: int
    ) -> ProcessHandle:
        assert self.ctx is not None
        core = _Core(
            self.runtime, start.flags, start.children, f"{self.path}/{child.spec.id}", self.bus
        )
        core.parent = self.ctx.id
        return await core.launched(await self.ctx.spawn_python(core.main, link=tag))

    async def _stop(self, child: _Child) -> Exit | None:
        """Stop a running child (OTP's ``shutdown/1``); its exit is reported."""
        proc = child.proc
        if proc is None:
            if child.state == RESTARTING:
                child.state = STOPPED
            return None
        self._detach(child, proc)
        exit = await self._shutdown(proc, child)
        self._report_exit(child, proc, exit)
        return exit

    def _detach(self, child: _Child, proc: Process) -> None:
        """``child`` no longer runs ``proc``, which has ended or is being stopped."""
        del self.by_pid[proc.id]
        child.proc = None
        child.state = STOPPED

    def _report_exit(self, child: _Child, proc: Process, exit: Exit) -> None:
        self.bus.emit(
            "child_exited",
            self.path,
            self._name(child),
            pid=proc.id,
            reason=str(exit.reason),
            detail=exit.detail,
        )

    async def _shutdown(self, proc: Process, child: _Child) -> Exit:
        if proc.exit is not None:  # it ended on its own meanwhile: keep its reason
            return proc.exit
        timeout = child.spec.shutdown
        if timeout == BRUTAL_KILL:
            proc.terminate(Exit(ExitReason.KILLED, "brutal_kill"))
            return await proc.wait()
        seconds = None if timeout == INFINITY else float(timeout)
        is_supervisor = isinstance(child.spec.start, SupervisorChild)
        if is_supervisor:
            proc.mailbox.push(ObjectMessage(_Stop("shutdown")))
        elif proc.kind == "wasm" and proc.die_when_link_dies:
            proc.terminate(Exit(ExitReason.SHUTDOWN, "shutdown"))
            return await proc.wait()
        elif proc.kind == "wasm":
            proc.mailbox.push(self._shutdown_request())
        else:
            proc.terminate(Exit(ExitReason.SHUTDOWN, "shutdown"))
        with trio.move_on_after(seconds if seconds is not None else float("inf")):
            return await proc.wait()
        if proc.kind == "python" and not is_supervisor:
            # Python code cannot be killed against its will: report, then wait.
            self.bus.emit(
                "shutdown_timeout",
                self.path,
                self._name(child),
                pid=proc.id,
                detail=f"still running {seconds} s after its shutdown",
            )
            return await proc.wait()
        proc.terminate(Exit(ExitReason.KILLED, f"shutdown timeout ({seconds} s)"))
        return await proc.wait()

    def _shutdown_request(self) -> DataMessage:
        """lunatic-rs's AbstractProcess shutdown request, replying to us."""
        assert self.ctx is not None
        tag = (_SHUTDOWN_HANDLER << 56) | (next(self._tags) & 0x00FF_FFFF_FFFF_FFFF)
        return DataMessage(tag, (0).to_bytes(8, "little") + self.ctx.id.to_bytes(8, "little"))

    async def _stop_all(self) -> None:
        """Stop every child: newest first, or all at once under simple_one_for_one."""
        if self.simple:
            async with trio.open_nursery() as n:
                for child in list(self.children):
                    n.start_soon(self._stop, child)
            return
        for child in reversed(list(self.children)):  # the shutdown order
            await self._stop(child)

    # -- exits and restarts -------------------------------------------------------------

    async def _child_exited(self, child: _Child) -> None:
        proc = child.proc
        assert proc is not None and proc.exit is not None
        exit = proc.exit
        self._detach(child, proc)
        self._report_exit(child, proc, exit)
        action, _reported = restart_decision(child.spec.restart, Reason(exit.reason.value))
        if action is Action.RESTART:
            child.attempt = self._attempt(child, trio.current_time() - child.started_at)
            await self._restart(child, proc.id, exit)
            return
        if action is Action.REMOVE:
            self.children.remove(child)
        self._maybe_auto_shutdown(child)

    def _backoff(self, child: _Child) -> Backoff | None:
        return child.spec.backoff or self.flags.backoff

    def _attempt(self, child: _Child, ran_for: float) -> int:
        backoff = self._backoff(child)
        if backoff is None:
            return child.attempt + 1
        return backoff.next_attempt(child.attempt, ran_for)

    def _maybe_auto_shutdown(self, child: _Child) -> None:
        if not child.spec.significant:
            return  # the first rule of auto_shutdown_triggered, without counting
        left = sum(1 for c in self.children if c.spec.significant and c.state == RUNNING)
        if auto_shutdown_triggered(self.flags.auto_shutdown, child.spec.significant, left):
            self.exit = Exit(ExitReason.SHUTDOWN, "auto_shutdown")

    async def _restart(self, child: _Child, pid: int | None, exit: Exit | None) -> None:
        """Restart ``child`` by its strategy, within the restart intensity.

        ``pid`` and ``exit`` say which process ended how; both are ``None``
        when this retries a restart whose start failed.
        """
        if not self.intensity.add(trio.current_time()):
            self.bus.emit(
                "intensity_exceeded",
                self.path,
                self._name(child),
                detail=f"more than {self.flags.intensity} restarts in {self.flags.period} s",
            )
            if child in self.children and child.spec.restart is not Restart.PERMANENT:
                self.children.remove(child)
            self.exit = Exit(ExitReason.SHUTDOWN, "reached_max_restart_intensity")
            return
        why = "retrying a failed start" if exit is None else exit.detail
        reason = None if exit is None else str(exit.reason)
        backoff = self._backoff(child)
        if backoff is not None:
            delay = backoff.delay(child.attempt)
            child.state = RESTARTING
            self.bus.emit(
                "restart",
                self.path,
                self._name(child),
                pid=pid,
                reason=reason,
                detail=f"{why} (restarting in {delay:.3f} s)",
            )
            assert self._timers is not None
            self._timers.start_soon(self._later, delay, _RestartDue(child.key))
            return
        self.bus.emit("restart", self.path, self._name(child), pid=pid, reason=reason, detail=why)
        await self._apply_plan(child)

    async def _later(self, delay: float, message: object) -> None:
        await trio.sleep(delay)
        if self.proc is not None and self.proc.alive:
            self.proc.mailbox.push(ObjectMessage(message))

    async def _apply_plan(self, child: _Child) -> None:
        plan = self.strategy.plan([c.view() for c in self.children], child.key)
        for key in plan.stop:
            await self._stop(self._child(key))
        for key in plan.remove:
            self.children.remove(self._child(key))
        for key in plan.restart:
            c = self._child(key)
            if c.state == RUNNING:
                continue
            try:
                await self._start(c)
            except _StartFailure:
                c.state = RESTARTING
                assert self.proc is not None
                self.proc.mailbox.push(ObjectMessage(_TryAgain(c.key)))
                return

    async def _try_again(self, key: str) -> None:
        """A restart whose start failed: try again (counted again, as OTP does)."""
        child = self._find(key)
        if child is None or child.state != RESTARTING:
            return  # deleted, terminated or restarted meanwhile: the loop is broken
        child.attempt += 1
        await self._restart(child, None, None)

    async def _restart_due(self, key: str) -> None:
        """A restart delayed by backoff is due (it was counted when decided)."""
        child = self._find(key)
        if child is None or child.state != RESTARTING:
            return
        child.state = STOPPED
        await self._apply_plan(child)

    # -- lookups -----------------------------------------------------------------------

    def _find(self, key: str) -> _Child | None:
        for c in self.children:
            if c.key == key:
                return c
        return None

    def _child(self, key: str) -> _Child:
        c = self._find(key)
        assert c is not None, key
        return c

    def _name(self, child: _Child) -> str:
        return child.key

    # -- the API -------------------------------------------------------------------------

    async def _serve(self, call: _Call) -> None:
        try:
            result = await getattr(self, "_api_" + call.op)(*call.args)
        except (SupervisorError, ValueError, TypeError) as e:
            call.reply(outcome.Error(e))
        else:
            call.reply(outcome.Value(result))

    def _static_child(self, child_id: object) -> _Child:
        if self.simple:
            raise SimpleOneForOne(f"supervisor {self.path} is simple_one_for_one")
        c = self._find(child_id) if isinstance(child_id, str) else None
        if c is None:
            raise NotFound(f"no child {child_id!r} in supervisor {self.path}")
        return c

    async def _api_start_child(self, arg: Any) -> ProcessHandle:
        if self.simple:
            spec = self.specs[0]
            key = f"#{next(self._keys)}"
            return await self._add_and_start(_Child(key, spec, tuple(arg)))
        spec = arg
        if not isinstance(spec, ChildSpec):
            raise TypeError(f"start_child takes a ChildSpec, got {type(spec).__name__}")
        check_children(self.flags, [spec])  # a taken id is refused just below
        existing = self._find(spec.id)
        if existing is not None:
            if existing.proc is not None:
                raise AlreadyStarted(spec.id, ProcessHandle(existing.proc))
            raise AlreadyPresent(f"child {spec.id!r} is already present")
        return await self._add_and_start(_Child(spec.id, spec))

    async def _add_and_start(self, child: _Child) -> ProcessHandle:
        """Start a new child; if it cannot start it is not kept."""
        self.children.append(child)
        try:
            return await self._start_handle(child)
        except StartFailed:
            self.children.remove(child)
            raise

    async def _start_handle(self, child: _Child) -> ProcessHandle:
        try:
            await self._start(child)
        except _StartFailure as e:
            raise StartFailed(child.spec.id, str(e)) from None
        assert child.proc is not None
        return ProcessHandle(child.proc)

    def _stopped_static_child(self, child_id: object) -> _Child:
        """A static child that neither runs nor waits for a restart."""
        child = self._static_child(child_id)
        if child.state == RUNNING:
            raise Running(f"child {child_id!r} is running")
        if child.state == RESTARTING:
            raise Restarting(f"child {child_id!r} is restarting")
        return child

    async def _api_terminate_child(self, target: Any) -> None:
        if isinstance(target, ProcessHandle):
            child = self.by_pid.get(target.id) if self.simple else None
            if child is None or child.proc is not target._proc:
                raise NotFound(f"process {target.id} is not a child of supervisor {self.path}")
        else:
            child = self._static_child(target)
        await self._stop(child)
        if child.spec.restart is Restart.TEMPORARY or self.simple:
            self.children.remove(child)

    async def _api_delete_child(self, child_id: object) -> None:
        self.children.remove(self._stopped_static_child(child_id))

    async def _api_restart_child(self, child_id: object) -> ProcessHandle:
        return await self._start_handle(self._stopped_static_child(child_id))

    async def _api_which_children(self) -> list[ChildInfo]:
        return [
            ChildInfo(
                None if self.simple else c.key,
                ProcessHandle(c.proc) if c.proc is not None else None,
                c.state == RESTARTING,
                c.spec.type,
            )
            for c in reversed(self.children)
        ]

    async def _api_count_children(self) -> ChildCounts:
        sups = sum(1 for c in self.children if c.spec.is_supervisor)
        return ChildCounts(
            specs=1 if self.simple else len(self.children),
            active=sum(1 for c in self.children if c.proc is not None and c.proc.alive),
            supervisors=sups,
            workers=len(self.children) - sups,
        )

    async def _api_get_childspec(self, target: Any) -> ChildSpec:
        if isinstance(target, ProcessHandle):
            child = self.by_pid.get(target.id)
            if child is None:
                raise NotFound(f"process {target.id} is not a child of supervisor {self.path}")
            return child.spec
        return self._static_child(target).spec


# -- the handle ------------------------------------------------------------------------------


class Supervisor:
    """A running supervisor: its process, its event stream and its API.

    The API methods are served by the supervisor's loop, one at a time and in
    order with child exits, and raise the errors of OTP's results
    (:class:`AlreadyStarted`, :class:`AlreadyPresent`, :class:`Running`,
    :class:`Restarting`, :class:`NotFound`, :class:`SimpleOneForOne`, and
    :class:`NoProc` once the supervisor has stopped).
    """

    def __init__(self, core: _Core, handle: ProcessHandle) -> None:
        self._core = core
        self.process = handle

    @property
    def id(self) -> int:
        """The supervisor's process id."""
        return self.process.id

    @property
    def path(self) -> str:
        """The supervisor's id path in its tree (``root/sub``)."""
        return self._core.path

    @property
    def flags(self) -> SupervisorFlags:
        return self._core.flags

    @property
    def alive(self) -> bool:
        return self.process.alive

    @property
    def exit(self) -> Exit | None:
        """How the supervisor ended: ``shutdown`` with the detail ``shutdown``,
        ``auto_shutdown``, ``reached_max_restart_intensity`` or ``parent exited``."""
        return self.process.exit

    def events(self) -> trio.MemoryReceiveChannel[SupervisorEvent]:
        """Every event of this supervisor's tree from now on, as an async
        iterable channel (``async with sup.events() as events: async for e in
        events: ...``); it never blocks the supervisor."""
        return self._core.bus.subscribe()

    def listen(self, listener: Callable[[SupervisorEvent], object]) -> None:
        """Call ``listener`` with every event of the tree from now on."""
        self._core.bus.listen(listener)

    async def _call(self, op: str, *args: Any) -> Any:
        proc = self.process._proc
        if not proc.alive:
            raise NoProc(f"supervisor {self.path} is not running")
        call = _Call(op, args)
        proc.mailbox.push(ObjectMessage(call))
        await call.done.wait()
        assert call.result is not None
        return call.result.unwrap()

    async def start_child(self, spec_or_args: ChildSpec | Sequence[Any]) -> ProcessHandle:
        """Add and start a child: a :class:`ChildSpec`, or under
        simple_one_for_one the extra arguments (Wasm parameters or Python
        arguments) appended to the template's."""
        arg = spec_or_args if isinstance(spec_or_args, ChildSpec) else tuple(spec_or_args)
        result: ProcessHandle = await self._call("start_child", arg)
        return result

    async def terminate_child(self, child: str | ProcessHandle) -> None:
        """Stop a child (by id; by process under simple_one_for_one); its spec
        is kept, unless it is temporary. Stopping a stopped child is fine."""
        await self._call("terminate_child", child)

    async def delete_child(self, child: str) -> None:
        """Delete the spec of a stopped child."""
        await self._call("delete_child", child)

    async def restart_child(self, child: str) -> ProcessHandle:
        """Start a stopped child again."""
        result: ProcessHandle = await self._call("restart_child", child)
        return result

    async def which_children(self) -> list[ChildInfo]:
        """Every child, newest first (as OTP lists them)."""
        result: list[ChildInfo] = await self._call("which_children")
        return result

    async def count_children(self) -> ChildCounts:
        result: ChildCounts = await self._call("count_children")
        return result

    async def get_childspec(self, child: str | ProcessHandle) -> ChildSpec:
        result: ChildSpec = await self._call("get_childspec", child)
        return result

    async def stop(self, reason: str = "shutdown") -> Exit:
        """Stop the children in order, then the supervisor; return its exit."""
        proc = self.process._proc
        if proc.alive:
            proc.mailbox.push(ObjectMessage(_Stop(reason)))
        return await self.process.wait()

    async def wait(self) -> Exit:
        """Wait for the supervisor to end."""
        return await self.process.wait()

    def __repr__(self) -> str:
        return f"<Supervisor {self.path} ({self.process!r})>"


async def start_supervisor(
    runtime: Runtime,
    flags: SupervisorFlags,
    children: Sequence[ChildSpec] = (),
    *,
    name: str = "root",
    events: Callable[[SupervisorEvent], object] | None = None,
    parent: Process | None = None,
) -> Supervisor:
    """Start a supervisor process and its children, in order.

    Returns once every child has started. If one fails to start, the children
    started before it are stopped, newest first, and :class:`StartFailed`
    names it. ``events`` is called with every event of the tree. With a
    ``parent`` process (see :meth:`Context.start_supervisor`), the supervisor
    is its linked child and exits when it fails.
    """
    if not isinstance(flags, SupervisorFlags):
        raise TypeError(f"flags must be SupervisorFlags, got {flags!r}")
    children = tuple(children)
    check_children(flags, children)
    bus = EventBus()
    if events is not None:
        bus.listen(events)
    core = _Core(runtime, flags, children, name, bus)
    if parent is None:
        handle = await core.launched(await runtime.spawn_python(core.main))
    else:
        core.parent = parent.id
        spawned = await runtime._spawn_python(parent, core.main, (), next(core._tags))
        handle = await core.launched(spawned)
    sup = Supervisor(core, handle)
    if parent is None:
        runtime._register_supervisor(sup)
    return sup


async def run_supervisor(
    runtime: Runtime,
    flags: SupervisorFlags,
    children: Sequence[ChildSpec] = (),
    name: str = "root",
    events: Callable[[SupervisorEvent], object] | None = None,
    *,
    task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED,
) -> Exit:
    """Run a supervisor for as long as it lives, the Trio way::

        sup = await nursery.start(supervisor.run_supervisor, runtime, flags, children)

    ``nursery.start`` returns the :class:`Supervisor` once every child has
    started, or raises :class:`StartFailed`. The task ends with the
    supervisor, returning its exit; cancelling it stops the tree in order.
    """
    sup = await start_supervisor(runtime, flags, children, name=name, events=events)
    task_status.started(sup)
    try:
        return await sup.wait()
    finally:
        with trio.CancelScope(shield=True):
            await sup.stop()


@asynccontextmanager
async def open_supervisor(
    runtime: Runtime,
    flags: SupervisorFlags,
    children: Sequence[ChildSpec] = (),
    *,
    name: str = "root",
    events: Callable[[SupervisorEvent], object] | None = None,
) -> AsyncIterator[Supervisor]:
    """``async with open_supervisor(rt, flags, children) as sup:`` starts a
    supervisor and stops it (children in order) when the block ends."""
    sup = await start_supervisor(runtime, flags, children, name=name, events=events)
    try:
        yield sup
    finally:
        with trio.CancelScope(shield=True):
            await sup.stop()
