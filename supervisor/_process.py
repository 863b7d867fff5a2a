"""Processes: identity, signals, links, monitors and the death sequence.

A process is a Trio task. :class:`Process` holds what Wasm and Python
processes share; subclasses supply ``_body``. Signals are applied at once, in
the order they are sent (lunatic allows this, HOSTAPI.md section 1.6): a kill
or a fatal link death cancels the process's own cancel scope, so it stops at
its next checkpoint, which for a Wasm guest is its next blocking host call or
fuel yield.

A process's children run in a nursery of their own, opened at its first
spawn by a helper task beside the process's task, in the nursery where the
process itself runs: killing the process (its own cancel scope) stops only its
code, while its unlinked children live on (as in lunatic and Erlang), and the
helper ends once the process and its children have. Cancelling an enclosing
nursery (a subtree, or the runtime shutting down) stops everything below it,
so nothing is ever leaked. Processes that never spawn pay nothing for this.

The death sequence (:meth:`Process._finish`, section 1.8) runs exactly once:
remove the process from its environment, tell its links (LinkDied with their
tag, unless the exit was normal), tell its monitors (ProcessDied), then drop
its state.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from hostapi.data import LinkDied, Message, ProcessDied

from ._exit import Exit, ExitReason
from ._mailbox import Mailbox

if TYPE_CHECKING:
    from ._environment import Environment
    from ._runtime import Runtime

__all__ = ["Process"]

logger = logging.getLogger("supervisor.process")


class Process:
    """State and signals shared by every kind of process."""

    __slots__ = (
        "_cause",
        "_done",
        "_opening",
        "cancel_scope",
        "die_when_link_dies",
        "environment",
        "exit",
        "home",
        "id",
        "links",
        "mailbox",
        "monitors",
        "nursery",
        "registered",
        "runtime",
    )

    kind = "process"

    def __init__(self, runtime: Runtime, environment: Environment, pid: int) -> None:
        self.runtime = runtime
        self.environment = environment
        self.id = pid
        self.links: dict[int, tuple[Process, int]] = {}
        self.monitors: dict[int, Process] = {}
        self.die_when_link_dies = True
        self.mailbox = Mailbox()
        self.cancel_scope = trio.CancelScope()
        self.exit: Exit | None = None
        self.registered = False
        #: Where this process's task runs; its children's nursery lives there too.
        self.home: trio.Nursery | None = None
        #: Its children's nursery, opened at the first spawn.
        self.nursery: trio.Nursery | None = None
        self._opening: trio.Event | None = None
        self._cause: Exit | None = None
        self._done: trio.Event | None = None

    def __repr__(self) -> str:
        state = "alive" if self.alive else str(self.exit) if self.exit else "starting"
        return f"<{type(self).__name__} {self.environment.id}/{self.id} {state}>"

    @property
    def alive(self) -> bool:
        """Registered in its environment and not yet dead."""
        return self.registered and self.exit is None

    # -- signals sent by this process -----------------------------------------

    def _peer(self, pid: int) -> Process | None:
        p = self.environment.processes.get(pid)
        return p if p is not None and p.exit is None else None

    def send(self, pid: int, message: Message) -> None:
        """Queue ``message`` for ``pid``; a missing process drops it silently."""
        p = self.environment.processes.get(pid)
        if p is not None:
            p.mailbox.push(message)

    def link(self, tag: int, pid: int) -> None:
        """Link both ways with the same tag; a missing peer is NoProcess.

        Atomic with respect to death (the fix of lunatic's section 6.7): the
        peer is either alive and records the link before anything else can
        happen, or gone, and this process is told at once.
        """
        peer = self._peer(pid)
        if peer is None:
            self._link_died(pid, tag, Exit(ExitReason.FAILURE, f"no process {pid}"))
            return
        peer.links[self.id] = (self, tag)
        self.links[pid] = (peer, tag)

    def unlink(self, pid: int) -> None:
        peer = self._peer(pid)
        if peer is not None:
            peer.links.pop(self.id, None)
        self.links.pop(pid, None)

    def monitor(self, pid: int) -> None:
        """Monitor ``pid``; a missing process is reported dead at once (section 6.6)."""
        peer = self._peer(pid)
        if peer is None:
            self.mailbox.push(ProcessDied(pid, Exit(ExitReason.FAILURE, f"no process {pid}")))
            return
        peer.monitors[self.id] = self

    def stop_monitoring(self, pid: int) -> None:
        peer = self._peer(pid)
        if peer is not None:
            peer.monitors.pop(self.id, None)

    def kill(self, pid: int) -> None:
        """Kill ``pid`` (possibly this process, which then stops at its next yield)."""
        peer = self._peer(pid)
        if peer is not None:
            peer.terminate(Exit(ExitReason.KILLED, f"killed by process {self.id}"))

    def set_die_when_link_dies(self, die: bool) -> None:
        self.die_when_link_dies = die

    # -- signals received ------------------------------------------------------

    def terminate(self, exit: Exit) -> None:
        """Stop this process with ``exit`` as its reason (the first one wins)."""
        if self.exit is not None:
            return
        if self._cause is None:
            self._cause = exit
        self.cancel_scope.cancel()

    def _link_died(self, pid: int, tag: int, exit: Exit) -> None:
        """A linked process ended (or ``link`` found no process)."""
        if self.exit is not None:
            return
        self.links.pop(pid, None)
        if exit.normal:
            return
        if self.die_when_link_dies:
            self.terminate(Exit(exit.reason, f"linked process {pid} exited: {exit}"))
        else:
            self.mailbox.push(LinkDied(tag, pid, exit))

    # -- lifecycle ------------------------------------------------------------

    async def _body(self) -> Exit:
        """Run the process's code and say how it ended (never raises, but
        for cancellation)."""
        raise NotImplementedError

    def _release(self) -> None:
        """Drop per-process state once the process is dead (subclass hook)."""

    async def children_nursery(self) -> trio.Nursery:
        """The nursery this process's children run in (opened on first use)."""
        while self.nursery is None:
            if self._opening is not None:  # another task of this process is opening it
                await self._opening.wait()
                continue
            assert self.home is not None, "the process is not running"
            self._opening = trio.Event()
            try:
                self.nursery = await self.home.start(self._hold_children)
            finally:
                self._opening.set()
                self._opening = None
        return self.nursery

    async def _hold_children(self, task_status: trio.TaskStatus[trio.Nursery]) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started(nursery)
            await self.wait()

    async def run(self) -> None:
        """The process's Trio task: its body, then its death sequence."""
        exit: Exit | None = None
        try:
            with self.cancel_scope:
                try:
                    exit = await self._body()
                except Exception as e:  # a lunatrio bug: end this process only
                    logger.exception("internal error in %r", self)
                    exit = Exit(ExitReason.FAILURE, f"internal error: {type(e).__name__}: {e}")
            if exit is None:
                exit = self._cause or Exit(ExitReason.KILLED, "cancelled")
        except BaseException:
            exit = self._cause or Exit(ExitReason.KILLED, "runtime shut down")
            raise
        finally:
            self._finish(exit or Exit(ExitReason.KILLED))

    def _finish(self, exit: Exit) -> None:
        """The death sequence of section 1.8; runs exactly once."""
        if self.exit is not None:
            return
        self.exit = exit
        if self.registered:
            del self.environment.processes[self.id]
            self.environment.registry_drop(self.id)
        self.runtime._process_exited(self, exit)
        links, self.links = self.links, {}
        for peer, tag in links.values():
            if peer is not self:
                peer._link_died(self.id, tag, exit)
        monitors, self.monitors = self.monitors, {}
        for peer in monitors.values():
            if peer.exit is None:
                peer.mailbox.push(ProcessDied(self.id, exit))
        self.mailbox.drain()
        try:
            self._release()
        except Exception:  # pragma: no cover - a bug, but never take the host down
            logger.exception("releasing %r failed", self)
        done = self._done
        if done is not None:
            done.set()

    async def wait(self) -> Exit:
        """Wait until the process has ended and return how."""
        if self.exit is None:
            if self._done is None:
                self._done = trio.Event()
            await self._done.wait()
        assert self.exit is not None
        return self.exit

    def info(self) -> dict[str, Any]:
        """A snapshot for debugging and tests."""
        return {
            "id": self.id,
            "environment": self.environment.id,
            "kind": self.kind,
            "alive": self.alive,
            "links": {pid: tag for pid, (_, tag) in self.links.items()},
            "monitored_by": sorted(self.monitors),
            "die_when_link_dies": self.die_when_link_dies,
            "mailbox": len(self.mailbox),
            "exit": self.exit,
        }
