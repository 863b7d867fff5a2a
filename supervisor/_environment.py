"""Environments: namespaces of processes with their own ids and registry.

Process ids start at 1 in each environment and are never reused; a spawn that
fails still uses one up (HOSTAPI.md section 1.1). ``lunatrio run`` uses one
environment (id 1); the test mode gives every test its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from ._process import Process

__all__ = ["Environment"]


class Environment:
    """Processes by id, the id counter and the name registry.

    The registry maps names to ``(node id, process id)``. Unlike lunatic, an
    entry that still points to a local process is dropped when that process
    dies (the fix of HOSTAPI.md section 6.5); an entry re-registered in the
    meantime to another process stays.
    """

    __slots__ = ("_lock", "_names", "_next_pid", "abandoned", "id", "processes", "registry")

    def __init__(self, env_id: int) -> None:
        self.id = env_id
        self._next_pid = 1
        self.processes: dict[int, Process] = {}
        self.registry: dict[str, tuple[int, int]] = {}
        self._names: dict[int, set[str]] = {}  # local pid -> names registered to it
        self._lock: trio.Lock | None = None
        #: Set by :meth:`Runtime.abandon`: its processes end without a word.
        self.abandoned = False

    def allocate_pid(self) -> int:
        pid = self._next_pid
        self._next_pid = pid + 1
        return pid

    def exists(self, pid: int) -> bool:
        return pid in self.processes

    def get(self, pid: int) -> Process | None:
        return self.processes.get(pid)

    def registry_get(self, name: str) -> tuple[int, int] | None:
        return self.registry.get(name)

    def registry_put(self, name: str, node: int, pid: int) -> None:
        """Register (or re-register) ``name``; nothing is validated."""
        old = self.registry.get(name)
        if old is not None and old[0] == 0:
            names = self._names.get(old[1])
            if names is not None:
                names.discard(name)
        self.registry[name] = (node, pid)
        if node == 0:
            self._names.setdefault(pid, set()).add(name)

    def registry_remove(self, name: str) -> None:
        old = self.registry.pop(name, None)
        if old is not None and old[0] == 0:
            names = self._names.get(old[1])
            if names is not None:
                names.discard(name)

    def registry_drop(self, pid: int) -> None:
        """A local process died: drop the names that still point to it."""
        for name in self._names.pop(pid, ()):
            if self.registry.get(name) == (0, pid):
                del self.registry[name]

    def registry_busy(self) -> bool:
        """Whether a ``get_or_spawn`` holds the registry while it spawns."""
        return self._lock is not None and self._lock.locked()

    async def registry_wait(self) -> None:
        """Wait until no ``get_or_spawn`` holds the registry."""
        async with self.registry_lock:
            pass

    @property
    def registry_lock(self) -> trio.Lock:
        """Held by ``get_or_spawn`` while it spawns, so the name stays free."""
        if self._lock is None:
            self._lock = trio.Lock()
        return self._lock

    def __repr__(self) -> str:
        return f"<Environment {self.id}: {len(self.processes)} processes>"
