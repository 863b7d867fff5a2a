"""``lunatic::error``: reading and dropping error ids (HOSTAPI.md section 2.1)."""

from __future__ import annotations

from .abi import Namespace, lookup_trap
from .protocols import HostProcess

__all__ = ["namespace"]

namespace = Namespace("lunatic::error")


def _text(proc: HostProcess, error_id: int, context: str) -> str:
    text = proc.errors.get(error_id)
    if text is None:
        raise lookup_trap(context)
    return text


@namespace.function("string_size (i64) -> i32")
def string_size(proc: HostProcess, error_id: int) -> int:
    """Length in UTF-8 bytes of the error's text."""
    return len(_text(proc, error_id, "lunatic::error::string_size").encode())


@namespace.function("to_string (i64, i32)")
def to_string(proc: HostProcess, error_id: int, ptr: int) -> None:
    """Write the error's text (UTF-8, no terminator) at ``ptr``."""
    proc.memory.write(ptr, _text(proc, error_id, "lunatic::error::to_string").encode())


@namespace.function("drop (i64)")
def drop(proc: HostProcess, error_id: int) -> None:
    """Remove the error; an unknown or already dropped id traps."""
    if proc.errors.remove(error_id) is None:
        raise lookup_trap("lunatic::error::drop")
