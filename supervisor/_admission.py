"""Admission control: never let spawning exhaust the kernel's mapping budget.

Running out of memory mappings (``vm.max_map_count``) inside wasmtime is not an
error it can report: the host process aborts. So the runtime admits Wasm
processes against the mapping budget and a spawn past it fails cleanly with an
error (DESIGN.md, "Mapping budget").

A live Wasm process holds two to four mappings: its fiber stack and the stack's
guard page, and its linear memory (two once it has grown past its first
reservation); adjacent mappings sometimes merge. The budget therefore counts
:data:`MAPS_PER_PROCESS` (the usual worst case) for every process it admits,
never credits anything back when one ends, and, whenever that estimate would
cross the limit, recounts the mappings actually in use (``/proc/self/maps``)
and starts again from the real figure. The estimate is thus never below the
truth, and the recount (a few milliseconds) only happens near the limit or
after many spawns.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAPS_PER_PROCESS", "MappingBudget", "default_capacity", "maps_in_use"]

#: Mappings counted for each admitted process.
MAPS_PER_PROCESS: Final = 3


def _read_int(path: str, default: int) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return default


def max_map_count() -> int:
    """The kernel's limit on mappings per process (65530 by default)."""
    return _read_int("/proc/sys/vm/max_map_count", 65530)


def maps_in_use() -> int:
    """Mappings this process holds now."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def _margin(limit: int) -> int:
    # Room for nested calls (each needs another fiber stack), Python's own
    # arenas, libraries and whatever else the host maps later.
    return 1024 + limit // 32


def default_capacity() -> int:
    """How many more Wasm processes fit now, counting :data:`MAPS_PER_PROCESS` each."""
    limit = max_map_count()
    return max(0, (limit - _margin(limit) - maps_in_use()) // MAPS_PER_PROCESS)


class MappingBudget:
    """Admits Wasm processes against the mapping budget and an optional cap.

    ``max_processes`` caps the number of live Wasm processes whatever the
    mappings allow (``None``: no cap).
    """

    __slots__ = ("_estimate", "_limit", "live", "map_limit", "max_processes", "peak", "recounts")

    def __init__(self, max_processes: int | None = None, map_limit: int | None = None) -> None:
        if max_processes is not None and max_processes < 0:
            raise ValueError(f"max_processes must not be negative, got {max_processes}")
        self.max_processes = max_processes
        limit = max_map_count() if map_limit is None else map_limit
        self.map_limit = limit
        self._limit = limit - _margin(limit)
        self._estimate = maps_in_use()
        self.live = 0
        self.peak = 0
        self.recounts = 0

    @property
    def capacity(self) -> int:
        """How many Wasm processes may live at once, as far as can be told now."""
        room = max(0, (self._limit - self._estimate) // MAPS_PER_PROCESS) + self.live
        return room if self.max_processes is None else min(room, self.max_processes)

    def acquire(self) -> bool:
        """Take a place for one more process; False when there is none."""
        if self.max_processes is not None and self.live >= self.max_processes:
            return False
        if self._estimate + MAPS_PER_PROCESS > self._limit:
            self._estimate = maps_in_use()
            self.recounts += 1
            if self._estimate + MAPS_PER_PROCESS > self._limit:
                return False
        self._estimate += MAPS_PER_PROCESS
        self.live += 1
        if self.live > self.peak:
            self.peak = self.live
        return True

    def release(self) -> None:
        """A process ended (its mappings are gone; the next recount sees it)."""
        self.live -= 1

    def refusal(self) -> str:
        if self.max_processes is not None and self.live >= self.max_processes:
            return (
                f"cannot spawn: the runtime is at its capacity of {self.max_processes} "
                "Wasm processes (max_processes)"
            )
        return (
            f"cannot spawn: {self.live} Wasm processes already use the memory mappings "
            f"that vm.max_map_count allows ({self.map_limit}); "
            "raise the limit or run fewer processes"
        )
