"""``lunatic::trap``: catching traps in a nested call (HOSTAPI.md section 2.7)."""

from __future__ import annotations

from .abi import CallGuest, GuestExit, Namespace
from .ffi import CallResult
from .protocols import HostProcess
from .signatures import FuncSig, ValType

__all__ = ["namespace"]

namespace = Namespace("lunatic::trap")

_CATCH_TRAP = FuncSig((ValType.I32, ValType.I32), (ValType.I32,))


def _caught(result: CallResult) -> int:
    if result.kind == "ok":
        return int(result.values[0])
    if result.kind == "exit":
        raise GuestExit(result.status or 0)
    return 0


@namespace.function("catch (i32, i32) -> i32", blocking=True)
def catch(proc: HostProcess, function: int, argument: int) -> CallGuest:
    """Call the guest's ``_lunatic_catch_trap(function, argument)`` as a nested
    call and return its result, or 0 if it trapped for any reason (a panic,
    out of bounds, running out of fuel, a host function trapping, a wrongly
    typed export). A kill or a fatal link death is not a trap: it ends the
    process, nested call and all. WASI ``proc_exit`` inside the nested call ends
    the process too, where lunatic would swallow it. Traps if the export is
    missing or is not a function.
    """
    return CallGuest(
        "_lunatic_catch_trap",
        (function, argument),
        _CATCH_TRAP,
        _caught,
        missing="Trap raised during host call: Expected Some(..) got None "
        "(lunatic::trap::catch: No export _lunatic_catch_trap found).",
    )
