"""Fewer cyclic garbage collections while runtimes are open.

Every live process holds a few dozen objects that Python's cyclic collector
tracks; with tens of thousands of processes, each collection walks them all
and spawning slows to half its speed (DESIGN.md). lunatrio's own structures
are freed by reference counting, so while a runtime is open the first
generation's threshold is raised; the previous thresholds come back when the
last runtime closes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["raised_gc_threshold"]

_saved: tuple[int, int, int] | None = None
_users = 0


@contextmanager
def raised_gc_threshold(threshold: int | None) -> Iterator[None]:
    """Raise the first GC threshold to at least ``threshold`` inside the block
    (``None``: leave the collector alone)."""
    global _saved, _users
    if threshold is None:
        yield
        return
    if _users == 0:
        _saved = gc.get_threshold()
        gen0, gen1, gen2 = _saved
        gc.set_threshold(max(gen0, threshold), max(gen1, 50), max(gen2, 100))
    _users += 1
    try:
        yield
    finally:
        _users -= 1
        if _users == 0 and _saved is not None:
            gc.set_threshold(*_saved)
            _saved = None
