"""What a host function may return or raise, and the ABI's shared constants.

A host function (see :mod:`hostapi.linking`) is a plain Python function that
receives the calling process and the decoded Wasm arguments. It either

* returns its result at once (an ``int``, a ``float`` or ``None``),
* raises :class:`HostTrap`, which ends the guest's call with a trap whose
  message is the exception's text, or
* returns a :class:`Suspend` (only functions declared ``blocking``): the
  process's driver awaits ``Suspend.wait(*Suspend.args)`` on the Trio side, and
  then ``Suspend.finish(*Suspend.finish_args, outcome)`` turns that outcome into
  the Wasm result while the guest is still inside the host call.

Host functions never await anything themselves and never touch ctypes: guest
memory is reached through :class:`hostapi.ffi.GuestMemory`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from .signatures import FuncSig, parse_signature

__all__ = [
    "MASK32",
    "MASK64",
    "TIMEOUT",
    "CallGuest",
    "GuestExit",
    "HostFunctionSpec",
    "HostTrap",
    "Namespace",
    "Suspend",
    "lookup_trap",
    "op_trap",
    "to_signed64",
]

#: Return code of every call that timed out (HOSTAPI.md section 0.4).
TIMEOUT: Final = 9027
MASK32: Final = 0xFFFF_FFFF
MASK64: Final = 0xFFFF_FFFF_FFFF_FFFF


class HostTrap(Exception):
    """Raised by a host function to make the calling guest trap.

    The process then ends with reason *failure* and the message as its detail
    (inside ``lunatic::trap::catch`` the nested call returns 0 instead).
    """


class GuestExit(HostTrap):
    """Raised when a nested call ended in WASI ``proc_exit(status)``: the exit
    ends the whole process instead of being swallowed (HOSTAPI.md correction 3
    allows this fix; lunatic's ``catch`` returns 0 instead)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"proc_exit({status}) inside a nested call")
        self.status = status


class Suspend:
    """A blocking host call's request to await something on the Trio side.

    ``wait(*args)`` is awaited by the process's driver, outside the fiber. Its
    outcome (a value or the exception it raised, never a cancellation) is
    passed as the last argument to ``finish(*finish_args, outcome)``, which
    runs inside the guest's host call, may touch guest memory, and returns the
    Wasm result or raises :class:`HostTrap`.
    """

    __slots__ = ("args", "finish", "finish_args", "wait")

    def __init__(
        self,
        wait: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        finish: Callable[..., int | float | None],
        finish_args: tuple[Any, ...] = (),
    ) -> None:
        self.wait = wait
        self.args = args
        self.finish = finish
        self.finish_args = finish_args


class CallGuest:
    """A blocking host call's request to call back into the guest.

    The guest's export ``export`` is called with ``args`` (of types
    ``params``) as a nested call on the caller's fiber stack, while the host
    call waits; the nested guest may itself block, yield or trap. Then
    ``finish(*finish_args, result)`` receives its :class:`hostapi.ffi.CallResult`
    and returns the host call's Wasm result (or raises :class:`HostTrap`). A
    missing export, or one that is not a function, traps with ``missing``.
    This is how ``lunatic::trap::catch`` and the ``lunatic_alloc`` callbacks work.
    """

    __slots__ = ("args", "export", "finish", "finish_args", "missing", "params", "results")

    def __init__(
        self,
        export: str,
        args: tuple[int, ...],
        sig: FuncSig,
        finish: Callable[..., int | float | None],
        finish_args: tuple[Any, ...] = (),
        missing: str = "",
    ) -> None:
        self.export = export
        self.args = args
        self.params = sig.params
        self.results = sig.results
        self.finish = finish
        self.finish_args = finish_args
        self.missing = missing or f"the guest has no exported function {export!r}"


def lookup_trap(context: str) -> HostTrap:
    """The trap lunatic raises when a resource id is unknown (section 3.3)."""
    return HostTrap(f"Trap raised during host call: Expected Some(..) got None ({context}).")


def op_trap(error: object, context: str) -> HostTrap:
    """The trap lunatic raises when an operation fails with an error."""
    return HostTrap(f"Trap raised during host call: {error} ({context}).")


def to_signed64(value: int) -> int:
    """Reinterpret a ``u64`` as the ``i64`` to hand back to the guest."""
    value &= MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


class HostFunctionSpec:
    """One host function as a namespace module declares it."""

    __slots__ = ("blocking", "handler", "name", "namespace", "sig")

    def __init__(
        self,
        namespace: str,
        name: str,
        sig: FuncSig,
        handler: Callable[..., Any],
        blocking: bool,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.sig = sig
        self.handler = handler
        self.blocking = blocking

    @property
    def qualname(self) -> str:
        return f"{self.namespace}::{self.name}"


class Namespace:
    """Collects the host functions of one ``lunatic::*`` namespace.

    Each function is declared once, with its Wasm signature written as in
    HOSTAPI.md Appendix A::

        process = Namespace("lunatic::process")

        @process.function("exists (i64) -> i32")
        def exists(proc: HostProcess, pid: int) -> int: ...

    ``blocking=True`` marks a function that may return :class:`Suspend`.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.functions: list[HostFunctionSpec] = []

    def function(
        self, signature: str, *, blocking: bool = False
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        name, sig = parse_signature(signature)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.functions.append(HostFunctionSpec(self.name, name, sig, fn, blocking))
            return fn

        return register
