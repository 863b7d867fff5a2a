"""What host functions need from a process and its environment.

``hostapi`` never imports the runtime (``supervisor``); the runtime's Wasm
process implements :class:`HostProcess` and its environment implements
:class:`HostEnvironment`. Signals (link, kill, ...) are applied by the runtime
at once, in the calling order, which keeps lunatic's per-sender FIFO guarantee
(HOSTAPI.md section 1.11).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .data import Message, ProcessConfig, ResourceTable, SpawnRequest
from .ffi import GuestMemory, Module

__all__ = ["HostEnvironment", "HostProcess", "MetricsSink", "SpawnError"]


class SpawnError(Exception):
    """A spawn that failed after validation; its text goes to the error table."""


class HostEnvironment(Protocol):
    """A namespace of processes: ids, lookups and the name registry."""

    @property
    def id(self) -> int: ...

    def exists(self, pid: int) -> bool: ...

    def allocate_pid(self) -> int:
        """Take the next process id (ids are used up even by failed spawns)."""
        ...

    def registry_get(self, name: str) -> tuple[int, int] | None: ...

    def registry_put(self, name: str, node: int, pid: int) -> None: ...

    def registry_remove(self, name: str) -> None: ...

    def registry_busy(self) -> bool:
        """Whether a ``get_or_spawn`` holds the registry (calls must wait)."""
        ...

    async def registry_wait(self) -> None: ...


class MetricsSink(Protocol):
    """Where ``lunatic::metrics`` records."""

    def counter(self, name: str, value: int) -> None: ...

    def gauge(self, name: str, value: float) -> None: ...

    def add_to_gauge(self, name: str, delta: float) -> None: ...

    def histogram(self, name: str, value: float) -> None: ...


class HostProcess(Protocol):
    """A Wasm process as its host functions see it."""

    memory: GuestMemory
    last_trap: str | None
    #: Set when a nested call ended in ``proc_exit``: the process exits so.
    exit_status: int | None
    scratch: Message | None
    errors: ResourceTable[str]
    modules: ResourceTable[Module]
    configs: ResourceTable[ProcessConfig]

    @property
    def id(self) -> int: ...

    @property
    def environment(self) -> HostEnvironment: ...

    @property
    def config(self) -> ProcessConfig:
        """The config this process was spawned with (never changed)."""
        ...

    @property
    def metrics(self) -> MetricsSink: ...

    @property
    def module(self) -> Module:
        """The module this process was instantiated from."""
        ...

    @property
    def initialized(self) -> bool:
        """False while the module's start function is still running."""
        ...

    def resources(self, kind: str) -> ResourceTable[Any]:
        """The table of a kind of resource that can travel in messages."""
        ...

    # -- messages -----------------------------------------------------------
    def send(self, pid: int, message: Message) -> None:
        """Queue ``message`` for ``pid`` in this environment, or drop it."""
        ...

    def take_message(self, tags: Sequence[int]) -> Message | None:
        """The first queued message matching ``tags`` (any when empty), if any."""
        ...

    async def wait_message(self, tags: Sequence[int], timeout: float | None) -> Message | None:
        """Wait for a matching message to arrive from now on (the queue has just
        been searched); ``None`` after ``timeout`` seconds."""
        ...

    def send_after(self, pid: int, delay_ms: int, message: Message) -> int:
        """Deliver ``message`` to ``pid`` (looked up now) later; a timer id."""
        ...

    def cancel_timer(self, timer_id: int) -> bool:
        """Cancel a pending timer of this process; False if there is none."""
        ...

    # -- signals ------------------------------------------------------------
    def link(self, tag: int, pid: int) -> None: ...

    def unlink(self, pid: int) -> None: ...

    def monitor(self, pid: int) -> None: ...

    def stop_monitoring(self, pid: int) -> None: ...

    def kill(self, pid: int) -> None: ...

    def set_die_when_link_dies(self, die: bool) -> None: ...

    # -- operations the driver awaits ---------------------------------------
    async def sleep(self, ms: int) -> None: ...

    async def compile(self, wasm: bytes) -> Module:
        """Compile guest-supplied bytes; raises ``SpawnError`` with the reason."""
        ...

    async def spawn(self, request: SpawnRequest) -> int:
        """Instantiate and start a child; raises ``SpawnError`` on failure."""
        ...

    async def get_or_spawn(self, name: str, request: SpawnRequest) -> tuple[int, int, int]:
        """Atomically look ``name`` up or spawn and register it.

        Returns ``(code, node_id, pid)``: code 2 when the name was found, 0
        after a successful spawn; raises ``SpawnError`` when the spawn failed.
        """
        ...
