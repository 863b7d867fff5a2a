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
    """Processes by id, the id counter and the name registry."""

    __slots__ = ("_lock", "_next_pid", "id", "processes", "registry")

    def __init__(self, env_id: int) -> None:
        self.id = env_id
        self._next_pid = 1
        self.processes: dict[int, Process] = {}
        self.registry: dict[str, tuple[int, int]] = {}
        self._lock: trio.Lock | None = None

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

    @property
    def registry_lock(self) -> trio.Lock:
        """Held by ``get_or_spawn`` while it spawns, so the name stays free."""
        if self._lock is None:
            self._lock = trio.Lock()
        return self._lock

    def __repr__(self) -> str:
        return f"<Environment {self.id}: {len(self.processes)} processes>"
