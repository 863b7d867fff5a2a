"""Admission control: never let spawning exhaust the kernel's mapping budget.

Running out of memory mappings (``vm.max_map_count``) inside wasmtime is not an
error it can report: the host process aborts. So the runtime admits Wasm
processes against a known capacity and a spawn past it fails cleanly with an
error (DESIGN.md, "Mapping budget"): each live Wasm process holds about three
mappings (its fiber stack with its guard page, and its linear memory).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAPS_PER_PROCESS", "MappingBudget", "default_capacity"]

#: Mappings one suspended Wasm process holds (measured; DESIGN.md).
MAPS_PER_PROCESS: Final = 3


def _read_int(path: str, default: int) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return default


def maps_in_use() -> int:
    """Mappings this process holds now."""
    try:
        with open("/proc/self/maps", "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def default_capacity() -> int:
    """Live Wasm processes the mapping budget allows from now on.

    ``(vm.max_map_count - mappings in use - margin) / MAPS_PER_PROCESS``, with a
    margin of a tenth of the limit for nested calls, grown memories, Python's
    own arenas and whatever else the host maps later.
    """
    limit = _read_int("/proc/sys/vm/max_map_count", 65530)
    margin = max(1024, limit // 10)
    return max(0, (limit - maps_in_use() - margin) // MAPS_PER_PROCESS)


class MappingBudget:
    """Counts live Wasm processes against a capacity."""

    __slots__ = ("capacity", "live", "peak")

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must not be negative, got {capacity}")
        self.capacity = capacity
        self.live = 0
        self.peak = 0

    def acquire(self) -> bool:
        """Take a place; False when the runtime is full."""
        if self.live >= self.capacity:
            return False
        self.live += 1
        if self.live > self.peak:
            self.peak = self.live
        return True

    def release(self) -> None:
        self.live -= 1

    def refusal(self) -> str:
        return (
            f"cannot spawn: the runtime is at its capacity of {self.capacity} Wasm processes "
            "(each holds memory mappings, limited by vm.max_map_count; raise the limit or "
            "the runtime's max_processes)"
        )
