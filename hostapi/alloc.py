"""Results the host allocates in guest memory (HOSTAPI.md sections 2.13, 5.11).

The host calls the guest's export ``lunatic_alloc(len) -> ptr`` as a nested
call, copies the bytes there, writes the length at ``len_ptr`` as 4 bytes
(lunatic writes 8 into lunatic-rs's 4-byte slot, its section 6.2) and returns
the pointer. Also: bincode's encoding of strings, which these results use.
"""

from __future__ import annotations

from .abi import MASK32, CallGuest, HostTrap
from .ffi import CallResult
from .protocols import HostProcess
from .signatures import FuncSig, ValType

__all__ = ["bincode_str", "host_allocated"]

_ALLOC = FuncSig((ValType.I32,), (ValType.I32,))


def bincode_str(text: str) -> bytes:
    """A string as bincode 1.x writes it: u64 length, then UTF-8 bytes."""
    data = text.encode()
    return len(data).to_bytes(8, "little") + data


def host_allocated(proc: HostProcess, data: bytes, len_ptr: int, context: str) -> CallGuest:
    """Return ``data`` to the guest in memory it allocates itself."""
    return CallGuest(
        "lunatic_alloc",
        (len(data),),
        _ALLOC,
        _copy,
        (proc, data, len_ptr, context),
        missing=f"Trap raised during host call: no export lunatic_alloc found ({context}).",
    )


def _copy(proc: HostProcess, data: bytes, len_ptr: int, context: str, result: CallResult) -> int:
    if result.kind != "ok":
        raise HostTrap(f"Trap raised during host call: lunatic_alloc failed ({context}).")
    ptr = int(result.values[0]) & MASK32
    proc.memory.write(ptr, data)
    proc.memory.write_u32(len_ptr, len(data))
    return ptr
