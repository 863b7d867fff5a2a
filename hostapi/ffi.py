"""The ctypes layer over wasmtime's C API: the only module that touches either.

Everything a lunatic process needs from wasmtime goes through here:

* :class:`Engine`, :class:`Linker` and :class:`Module` (setup paths, built on
  wasmtime-py's own wrappers where they are convenient);
* :class:`Store`, one per Wasm process: limits, fuel, WASI, instantiation and
  calls, all through the raw async C API (the hot paths);
* :class:`Fiber`, a call future (``wasmtime_func_call_async``) that the
  process's Trio task polls with :meth:`Fiber.step`;
* host functions, defined once on the linker and independent of any store:
  non-blocking ones as unchecked synchronous callbacks, blocking ones as async
  callbacks whose waiting is done by the driver on the Trio side
  (:class:`hostapi.abi.Suspend`);
* :class:`GuestMemory`, bounds-checked access to a process's ``memory`` export.

Which process a host call belongs to: only one fiber runs at a time on this
thread, and every poll goes through :meth:`Fiber.step`, which records the
polling process as :data:`current`. Host callbacks read it instead of asking
wasmtime for the store's data, which saves two foreign calls per host call.

Rules this module keeps (DESIGN.md, "Pitfalls found"): a continuation is set to
"ready" as the very first statement of an async callback; no callback ever lets
an exception escape into wasmtime; every ctypes callback object lives for the
life of the interpreter; the buffers a call future points to live as long as
the future.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import struct
from collections.abc import Callable, Sequence
from ctypes import (
    CFUNCTYPE,
    POINTER,
    addressof,
    byref,
    c_bool,
    c_char_p,
    c_int,
    c_int64,
    c_size_t,
    c_ssize_t,
    c_uint8,
    c_uint64,
    c_void_p,
    string_at,
)
from typing import Any, Final, Literal, Protocol

import outcome
import wasmtime
from wasmtime import _bindings as _b

from .abi import MASK64, CallGuest, GuestExit, HostTrap, Suspend, op_trap
from .signatures import FuncSig, ValType
from .wasmbin import read_module_info

__all__ = [
    "CallResult",
    "Engine",
    "EngineSettings",
    "Fiber",
    "GuestMemory",
    "HostFunction",
    "Linker",
    "Module",
    "OutputSink",
    "PendingCall",
    "Store",
    "WasiSpec",
    "current",
    "wat_to_wasm",
]

logger = logging.getLogger(__name__)

_dll = wasmtime._ffi.dll


def _proto(name: str, restype: Any, *argtypes: Any) -> Any:
    """A private foreign-function object for ``name`` with our own prototype.

    wasmtime-py's bindings convert every argument to typed pointers; passing
    plain addresses (``c_void_p``) is several times cheaper on hot paths.
    """
    return CFUNCTYPE(restype, *argtypes)((name, _dll))


_store_new = _proto("wasmtime_store_new", c_void_p, c_void_p, c_void_p, c_void_p)
_store_context = _proto("wasmtime_store_context", c_void_p, c_void_p)
_store_delete = _proto("wasmtime_store_delete", None, c_void_p)
_store_limiter = _proto(
    "wasmtime_store_limiter", None, c_void_p, c_int64, c_int64, c_int64, c_int64, c_int64
)
_set_fuel = _proto("wasmtime_context_set_fuel", c_void_p, c_void_p, c_uint64)
_fuel_yield = _proto("wasmtime_context_fuel_async_yield_interval", c_void_p, c_void_p, c_uint64)
_set_wasi = _proto("wasmtime_context_set_wasi", c_void_p, c_void_p, c_void_p)
_pre_instantiate_async = _proto(
    "wasmtime_instance_pre_instantiate_async",
    c_void_p,
    c_void_p,
    c_void_p,
    c_void_p,
    c_void_p,
    c_void_p,
)
_instance_export_get = _proto(
    "wasmtime_instance_export_get", c_bool, c_void_p, c_void_p, c_char_p, c_size_t, c_void_p
)
_caller_export_get = _proto(
    "wasmtime_caller_export_get", c_bool, c_void_p, c_char_p, c_size_t, c_void_p
)
_caller_context = _proto("wasmtime_caller_context", c_void_p, c_void_p)
_func_call_async = _proto(
    "wasmtime_func_call_async",
    c_void_p,
    c_void_p,
    c_void_p,
    c_void_p,
    c_size_t,
    c_void_p,
    c_size_t,
    c_void_p,
    c_void_p,
)
_future_poll = _proto("wasmtime_call_future_poll", c_bool, c_void_p)
_future_delete = _proto("wasmtime_call_future_delete", None, c_void_p)
_memory_data = _proto("wasmtime_memory_data", c_void_p, c_void_p, c_void_p)
_memory_data_size = _proto("wasmtime_memory_data_size", c_size_t, c_void_p, c_void_p)
_trap_new = _proto("wasmtime_trap_new", c_void_p, c_char_p, c_size_t)
_error_delete = _proto("wasmtime_error_delete", None, c_void_p)
_error_exit_status = _proto("wasmtime_error_exit_status", c_bool, c_void_p, POINTER(c_int))
_wasi_new = _proto("wasi_config_new", c_void_p)
_wasi_delete = _proto("wasi_config_delete", None, c_void_p)
_wasi_inherit_stdin = _proto("wasi_config_inherit_stdin", None, c_void_p)
_wasi_inherit_stdout = _proto("wasi_config_inherit_stdout", None, c_void_p)
_wasi_inherit_stderr = _proto("wasi_config_inherit_stderr", None, c_void_p)
_wasi_set_argv = _proto("wasi_config_set_argv", c_bool, c_void_p, c_size_t, c_void_p)
_wasi_set_env = _proto("wasi_config_set_env", c_bool, c_void_p, c_size_t, c_void_p, c_void_p)
_wasi_preopen_dir = _proto("wasi_config_preopen_dir", c_bool, c_void_p, c_char_p, c_char_p, c_bool)
_WRITE_CB_T = CFUNCTYPE(c_ssize_t, c_void_p, POINTER(c_uint8), c_size_t)
_FINALIZER_T = CFUNCTYPE(None, c_void_p)
_wasi_set_stdout_custom = _proto(
    "wasi_config_set_stdout_custom", None, c_void_p, _WRITE_CB_T, c_void_p, _FINALIZER_T
)
_wasi_set_stderr_custom = _proto(
    "wasi_config_set_stderr_custom", None, c_void_p, _WRITE_CB_T, c_void_p, _FINALIZER_T
)

# The callbacks wasmtime calls.  Arguments arrive as addresses and ``int64``
# slots: an unchecked callback's ``wasmtime_val_raw_t`` is 16 bytes (two
# slots), an async callback's ``wasmtime_val_t`` is 32 bytes (a kind byte,
# padding, then the value at offset 8).
_SYNC_CB_T = CFUNCTYPE(c_size_t, c_void_p, c_void_p, POINTER(c_int64), c_size_t)
_ASYNC_CB_T = CFUNCTYPE(
    None,
    c_void_p,
    c_void_p,
    POINTER(c_int64),
    c_size_t,
    POINTER(c_int64),
    c_size_t,
    POINTER(c_void_p),
    POINTER(c_void_p),
)
_CONT_T = CFUNCTYPE(c_bool, c_void_p)
_define_sync = _proto(
    "wasmtime_linker_define_func_unchecked",
    c_void_p,
    c_void_p,
    c_char_p,
    c_size_t,
    c_char_p,
    c_size_t,
    c_void_p,
    _SYNC_CB_T,
    c_void_p,
    c_void_p,
)
_define_async = _proto(
    "wasmtime_linker_define_async_func",
    c_void_p,
    c_void_p,
    c_char_p,
    c_size_t,
    c_char_p,
    c_size_t,
    c_void_p,
    _ASYNC_CB_T,
    c_void_p,
    c_void_p,
)

_EXTERN_FUNC: Final = 0
_EXTERN_MEMORY: Final = 3
_EXTERN_SIZE: Final = ctypes.sizeof(_b.wasmtime_extern_t)
_EXTERN_OF: Final = _b.wasmtime_extern_t.of.offset
_RAW_STRIDE: Final = ctypes.sizeof(_b.wasmtime_val_raw_t) // 8
_VAL_STRIDE: Final = ctypes.sizeof(_b.wasmtime_val_t) // 8
_VAL_OFFSET: Final = _b.wasmtime_val_t.of.offset // 8
_INSTANCE_SIZE: Final = ctypes.sizeof(_b.wasmtime_instance_t)
_I64_MAX: Final = (1 << 63) - 1

# Kept alive for the life of the interpreter: wasmtime holds raw pointers.
_KEEP: list[object] = []


def _address(ptr: Any) -> int:
    """The address held by a ctypes pointer (0 for NULL)."""
    return ctypes.cast(ptr, c_void_p).value or 0


def _error_text(err: int) -> str:
    """The message of a ``wasmtime_error_t*`` and its deletion."""
    e = wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, POINTER(_b.wasmtime_error_t)))
    return str(e)


def _check(err: int | None, what: str) -> None:
    if err:
        raise RuntimeError(f"{what}: {_error_text(err)}")


def wat_to_wasm(text: str | bytes) -> bytes:
    """Compile WebAssembly text to binary (raises ``wasmtime.WasmtimeError``)."""
    if isinstance(text, bytes):
        text = text.decode()
    return bytes(wasmtime.wat2wasm(text))


# --------------------------------------------------------------------------
# engine, linker, modules
# --------------------------------------------------------------------------


class EngineSettings:
    """Engine-wide settings (DESIGN.md, execution model and mapping budget).

    * ``fuel_slice``: Wasm instructions a process runs before it yields to Trio
      (``wasmtime_context_fuel_async_yield_interval``);
    * ``async_stack_size`` / ``max_wasm_stack``: fiber stack and the part of it
      Wasm may use; the rest is for host callbacks, which run on the fiber;
    * ``memory_reservation``, ``memory_guard_size``: small reservations without
      guard pages and without copy-on-write images, so a process costs three
      mappings (fiber stack and its guard page, linear memory).
    """

    __slots__ = (
        "async_stack_size",
        "fuel_slice",
        "max_wasm_stack",
        "memory_guard_size",
        "memory_reservation",
    )

    def __init__(
        self,
        *,
        fuel_slice: int = 1_000_000,
        async_stack_size: int = 2 << 20,
        max_wasm_stack: int = 512 << 10,
        memory_reservation: int = 64 << 10,
        memory_guard_size: int = 0,
    ) -> None:
        if fuel_slice <= 0:
            raise ValueError(f"fuel_slice must be positive, got {fuel_slice}")
        if max_wasm_stack + (64 << 10) > async_stack_size:
            raise ValueError(
                "async_stack_size must exceed max_wasm_stack by at least 64 KiB "
                "(host callbacks run on the fiber stack)"
            )
        self.fuel_slice = fuel_slice
        self.async_stack_size = async_stack_size
        self.max_wasm_stack = max_wasm_stack
        self.memory_reservation = memory_reservation
        self.memory_guard_size = memory_guard_size


class Engine:
    """One wasmtime engine with lunatic's features, fuel and async stacks."""

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        s = self.settings
        cfg = wasmtime.Config()
        cfg.consume_fuel = True
        cfg.wasm_reference_types = True
        cfg.wasm_bulk_memory = True
        cfg.wasm_multi_value = True
        cfg.wasm_multi_memory = True
        cfg.wasm_simd = True
        cfg.max_wasm_stack = s.max_wasm_stack
        cfg.memory_reservation = s.memory_reservation
        cfg.memory_guard_size = s.memory_guard_size
        cfg.memory_init_cow = False
        _b.wasmtime_config_async_stack_size_set(cfg.ptr(), s.async_stack_size)
        self._engine = wasmtime.Engine(cfg)
        self.address = _address(self._engine.ptr())

    def compile(self, wasm: bytes) -> wasmtime.Module:
        """Compile a binary module (raises ``wasmtime.WasmtimeError``)."""
        return wasmtime.Module(self._engine, wasm)


class HostFunction(Protocol):
    """A host function as :class:`Linker` takes it: ``(process, *args)``."""

    def __call__(self, proc: Any, /, *args: Any) -> Any: ...


class Linker:
    """The one linker: WASI preview 1 plus store-independent host functions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._linker = wasmtime.Linker(engine._engine)
        self._address = _address(self._linker.ptr())
        self.defined: dict[tuple[str, str], FuncSig] = {}

    def define_wasi(self) -> None:
        """Define ``wasi_snapshot_preview1`` against each store's WASI context."""
        self._linker.define_wasi()

    def define(
        self,
        namespace: str,
        name: str,
        sig: FuncSig,
        handler: HostFunction,
        *,
        blocking: bool = False,
    ) -> None:
        """Define ``namespace::name`` with type ``sig``, served by ``handler``.

        A non-blocking handler must return its result; a blocking one may also
        return a :class:`hostapi.abi.Suspend`. Either may raise
        :class:`hostapi.abi.HostTrap`.
        """
        qualname = f"{namespace}::{name}"
        functype = wasmtime.FuncType(
            [_valtype(t) for t in sig.params], [_valtype(t) for t in sig.results]
        )
        ns, nm = namespace.encode(), name.encode()
        if blocking:
            cb = _ASYNC_CB_T(_async_trampoline(handler, sig, qualname))
            err = _define_async(
                self._address, ns, len(ns), nm, len(nm), _address(functype.ptr()), cb, None, None
            )
        else:
            cb = _SYNC_CB_T(_sync_trampoline(handler, sig, qualname))
            err = _define_sync(
                self._address, ns, len(ns), nm, len(nm), _address(functype.ptr()), cb, None, None
            )
        _KEEP.append(cb)
        _check(err, f"defining {qualname}")
        self.defined[(namespace, name)] = sig

    def instantiate_pre(self, module: wasmtime.Module) -> wasmtime.InstancePre:
        """Check ``module``'s imports against the linker (raises on a mismatch)."""
        return self._linker.instantiate_pre(module)


def _valtype(t: ValType) -> wasmtime.ValType:
    make = {
        ValType.I32: wasmtime.ValType.i32,
        ValType.I64: wasmtime.ValType.i64,
        ValType.F32: wasmtime.ValType.f32,
        ValType.F64: wasmtime.ValType.f64,
    }.get(t)
    if make is None:
        raise TypeError(f"host functions cannot take or return {t}")
    return make()


class Module:
    """A compiled module, pre-instantiated against the linker.

    ``functions`` maps each exported function to its signature (``None`` for a
    function whose type uses reference types, which a spawn cannot call);
    ``imports_wasi`` says whether processes need a WASI context.
    """

    def __init__(self, linker: Linker, wasm: bytes, name: str = "<module>") -> None:
        self.name = name
        self._module = linker.engine.compile(wasm)
        self._pre = linker.instantiate_pre(self._module)
        self.pre_address = _address(self._pre.ptr())
        info = read_module_info(wasm)
        self.functions = info.functions
        self.exports = info.exports
        self.imports = frozenset(info.imports)
        self.imports_wasi = any(m.startswith("wasi_") for m, _ in info.imports)
        self.size = len(wasm)

    def __repr__(self) -> str:
        return f"<Module {self.name} ({self.size} bytes)>"


# --------------------------------------------------------------------------
# output capture (WASI custom stdout/stderr)
# --------------------------------------------------------------------------


class OutputSink(Protocol):
    """Where a captured WASI stream writes: called with each chunk of bytes."""

    def write(self, data: bytes, /) -> object: ...


_sinks: dict[int, OutputSink] = {}
_sink_ids = itertools.count(1)


def _sink_write(key: int, buf: Any, size: int) -> int:
    try:
        sink = _sinks.get(key)
        if sink is not None:
            sink.write(string_at(buf, size))
        return size
    except BaseException:  # never unwind into wasmtime
        logger.exception("output capture failed")
        return size


_sink_write_cb = _WRITE_CB_T(_sink_write)
# No finalizer: wasmtime drops a custom stream on one of its tokio worker
# threads, possibly after the store is gone and even while Python shuts down,
# when calling into Python kills that thread and aborts the host. The store
# forgets its sinks itself when it is closed (every write has completed by
# then: WASI's fd_write returns once the stream has taken the bytes).
_NO_FINALIZER: Final = _FINALIZER_T()


class WasiSpec:
    """What a process's WASI context holds (HOSTAPI.md section 3.6).

    The encoded arrays are built once and reused for every store that uses
    this spec, so spawning many processes from one config stays cheap.
    """

    __slots__ = ("_argv", "_env", "args", "env", "preopens")

    def __init__(
        self,
        args: Sequence[str] = (),
        env: Sequence[tuple[str, str]] = (),
        preopens: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.args = tuple(args)
        self.env = tuple(env)
        self.preopens = tuple(preopens)  # (guest name, host path)
        self._argv: Any = None
        self._env: Any = None

    def _build(self, stdout: OutputSink | None, stderr: OutputSink | None, sinks: list[int]) -> int:
        """A new ``wasi_config_t``; the keys of the output sinks go to ``sinks``."""
        cfg = _wasi_new()
        if self.args:
            if self._argv is None:
                enc = [a.encode() for a in self.args]
                self._argv = (enc, (c_char_p * len(enc))(*enc))
            _wasi_set_argv(cfg, len(self.args), addressof(self._argv[1]))
        if self.env:
            if self._env is None:
                keys = [k.encode() for k, _ in self.env]
                vals = [v.encode() for _, v in self.env]
                self._env = (
                    keys,
                    vals,
                    (c_char_p * len(keys))(*keys),
                    (c_char_p * len(vals))(*vals),
                )
            _wasi_set_env(cfg, len(self.env), addressof(self._env[2]), addressof(self._env[3]))
        for guest, host in self.preopens:
            if not _wasi_preopen_dir(cfg, host.encode(), guest.encode(), True):
                _wasi_delete(cfg)
                raise OSError(f"cannot preopen directory {host!r} as {guest!r}")
        _wasi_inherit_stdin(cfg)
        if stdout is None:
            _wasi_inherit_stdout(cfg)
        else:
            key = next(_sink_ids)
            _sinks[key] = stdout
            sinks.append(key)
            _wasi_set_stdout_custom(cfg, _sink_write_cb, key, _NO_FINALIZER)
        if stderr is None:
            _wasi_inherit_stderr(cfg)
        else:
            key = next(_sink_ids)
            _sinks[key] = stderr
            sinks.append(key)
            _wasi_set_stderr_custom(cfg, _sink_write_cb, key, _NO_FINALIZER)
        return cfg  # type: ignore[no-any-return]


# --------------------------------------------------------------------------
# guest memory
# --------------------------------------------------------------------------

_UNRESOLVED: Final = 0
_BOUND: Final = 1
_ABSENT: Final = 2
_NO_MEMORY: Final = (
    "Trap raised during host call: Expected Some(..) got None (No export memory found)."
)


class GuestMemoryError(HostTrap):
    """An access outside the guest's memory; the trampoline adds the function name."""


class GuestMemory:
    """Bounds-checked access to a process's exported ``memory``.

    The memory is found once, through the instance after instantiation or
    through the caller when a start function makes host calls first.
    Pointers and lengths are unsigned; a range must lie entirely inside the
    memory, and a zero-length range only needs ``ptr <= size``.

    Accesses go through a memoryview of the whole memory, rebuilt only when
    the memory's size has changed: wasmtime moves a linear memory only when
    it grows, and it never shrinks, so an unchanged size means an unchanged
    base address. The size is asked of wasmtime (one C call) at the first
    access after guest code may have run, that is, once per :data:`_epoch`:
    the epoch advances whenever a host call starts or resumes and whenever
    a poll of a fiber returns, so within one stretch of host code the size
    cannot have changed.
    """

    __slots__ = ("_ext", "_mem", "_seen", "_size", "_view", "ctx", "state")

    def __init__(self, ctx: int) -> None:
        self.ctx = ctx
        self.state = _UNRESOLVED
        self._ext = (c_uint8 * _EXTERN_SIZE)()
        self._mem = addressof(self._ext) + _EXTERN_OF
        self._size = -1
        self._seen = -1
        self._view = memoryview(b"")

    def _bind(self, found: bool) -> None:
        self._seen = -1
        if found and self._ext[0] == _EXTERN_MEMORY:
            self.state = _BOUND
        else:
            self.state = _ABSENT

    def bind_instance(self, instance: Any) -> None:
        """Find the ``memory`` export of a freshly instantiated instance."""
        self._bind(_instance_export_get(self.ctx, instance, b"memory", 6, self._ext))

    def bind_caller(self, caller: int) -> None:
        """Find the ``memory`` export through a host call's caller."""
        if _caller_export_get(caller, b"memory", 6, self._ext):
            self._bind(True)

    def release(self) -> None:
        """Forget the memory (its store is being deleted)."""
        self.state = _ABSENT
        self._size = -1
        self._seen = -1
        self._view = memoryview(b"")

    def _remap(self, size: int) -> None:
        base: int = _memory_data(self.ctx, self._mem) or 0
        self._size = size
        self._view = (
            memoryview((c_uint8 * size).from_address(base)).cast("B") if size else (memoryview(b""))
        )

    def _checked(self, ptr: int, n: int) -> memoryview:
        """The memory's view, after checking that ``[ptr, ptr+n)`` lies inside it."""
        if self._seen != _epoch:
            if self.state != _BOUND:
                raise HostTrap(_NO_MEMORY)
            size: int = _memory_data_size(self.ctx, self._mem)
            if size != self._size:
                self._remap(size)
            self._seen = _epoch
        if ptr + n > self._size:
            raise GuestMemoryError(
                f"out of bounds memory access: [{ptr}, {ptr + n}) of {self._size} bytes"
            )
        return self._view

    def size(self) -> int:
        """Current size in bytes (traps when there is no memory)."""
        if self.state != _BOUND:
            raise HostTrap(_NO_MEMORY)
        n: int = _memory_data_size(self.ctx, self._mem)
        return n

    def check(self, ptr: int, n: int) -> None:
        """Trap unless ``[ptr, ptr+n)`` lies inside the memory."""
        self._checked(ptr, n)

    def read(self, ptr: int, n: int) -> bytes:
        return self._checked(ptr, n)[ptr : ptr + n].tobytes()

    def read_str(self, ptr: int, n: int, context: str) -> str:
        """The UTF-8 text at ``[ptr, ptr+n)``; invalid UTF-8 traps as lunatic
        does, naming ``context``."""
        try:
            return self.read(ptr, n).decode()
        except UnicodeDecodeError as e:
            raise op_trap(e, context) from None

    def write(self, ptr: int, data: bytes) -> None:
        n = len(data)
        self._checked(ptr, n)[ptr : ptr + n] = data

    def write_u64(self, ptr: int, value: int) -> None:
        self._checked(ptr, 8)[ptr : ptr + 8] = (value & MASK64).to_bytes(8, "little")

    def write_u32(self, ptr: int, value: int) -> None:
        self._checked(ptr, 4)[ptr : ptr + 4] = (value & 0xFFFF_FFFF).to_bytes(4, "little")

    def read_i64s(self, ptr: int, count: int) -> list[int]:
        view = self._checked(ptr, 8 * count)
        return list(view[ptr : ptr + 8 * count].cast("q")) if count else []

    def copy_out(self, ptr: int, span: int, src: bytearray, start: int, n: int) -> None:
        """Copy ``src[start:start+n]`` to ``ptr`` after checking ``[ptr, ptr+span)``."""
        view = self._checked(ptr, span)
        if n == 1:
            view[ptr] = src[start]
        elif n:
            view[ptr : ptr + n] = src[start : start + n]


# --------------------------------------------------------------------------
# stores and fibers
# --------------------------------------------------------------------------


#: The process whose fiber is being polled (see the module docstring).
current: Any = None
#: Advances whenever guest code may have run since (see :class:`GuestMemory`).
_epoch = 0
#: Set by an async callback that suspended during the current poll.
_suspended: PendingCall | None = None


class CallResult:
    """How a fiber (a call or an instantiation) ended.

    ``kind`` is ``"ok"`` (``values`` holds the results), ``"trap"`` (a guest
    trap; ``trap_code`` names it), ``"error"`` (a host function trapped, or
    wasmtime refused the call) or ``"exit"`` (WASI ``proc_exit``; ``status``).
    """

    __slots__ = ("kind", "message", "status", "trap_code", "values")

    def __init__(
        self,
        kind: str,
        message: str = "",
        values: tuple[Any, ...] = (),
        trap_code: str | None = None,
        status: int | None = None,
    ) -> None:
        self.kind = kind
        self.message = message
        self.values = values
        self.trap_code = trap_code
        self.status = status

    def __repr__(self) -> str:
        return f"CallResult({self.kind!r}, {self.message!r})"


class Fiber:
    """A call future: a Wasm call (or an instantiation) running on its own stack.

    :meth:`step` polls it once and says what the driver must do next. The
    future is deleted by :meth:`close` (idempotent), which unwinds a
    suspended guest; the buffers it points to live exactly as long.
    """

    __slots__ = ("_args", "_err", "_fut", "_kinds", "_results", "_trap")

    def __init__(self, fut: int, args: Any, results: Any, kinds: tuple[ValType, ...]) -> None:
        self._fut = fut
        self._args = args
        self._results = results
        self._kinds = kinds
        self._trap = c_void_p()
        self._err = c_void_p()

    def step(self, owner: Any) -> Literal[True] | PendingCall | None:
        """Poll once with ``owner`` as the current process.

        Returns ``True`` when the call has finished, a pending host operation
        that the driver must await and then :meth:`PendingCall.resume`, or
        ``None`` when the guest merely yielded (fuel) and should be polled
        again after a checkpoint.
        """
        global current, _suspended, _epoch
        prev = current
        current = owner
        _suspended = None
        try:
            if _future_poll(self._fut):
                return True
            s = _suspended
            _suspended = None
            return s
        finally:
            current = prev
            _epoch += 1

    def close(self) -> None:
        """Delete the future (unwinding a suspended guest); idempotent."""
        fut = self._fut
        if fut:
            self._fut = 0
            _future_delete(fut)

    def result(self) -> CallResult:
        """The outcome, once :meth:`step` has returned ``True``."""
        err = self._err.value
        if err:
            self._err.value = None
            status = c_int(0)
            if _error_exit_status(err, byref(status)):
                _error_delete(err)
                return CallResult("exit", f"exit status {status.value}", status=status.value)
            return CallResult("error", _error_text(err))
        trap = self._trap.value
        if trap:
            self._trap.value = None
            t = wasmtime.Trap._from_ptr(ctypes.cast(trap, POINTER(_b.wasm_trap_t)))
            code = t.trap_code
            return CallResult(
                "trap", t.message, trap_code=code.name.lower() if code is not None else None
            )
        values = []
        for i, k in enumerate(self._kinds):
            v = self._results[i].of
            values.append(
                v.i32
                if k == ValType.I32
                else v.i64
                if k == ValType.I64
                else v.f32
                if k == ValType.F32
                else v.f64
                if k == ValType.F64
                else int.from_bytes(bytes(v.v128), "little")
            )
        return CallResult("ok", values=tuple(values))


def _call_async(
    ctx: int,
    ext: Any,
    params: Sequence[ValType],
    args: Sequence[Any],
    results: tuple[ValType, ...],
) -> Fiber:
    """Start calling the function in the extern buffer ``ext`` on ``ctx``."""
    n = len(params)
    argv = (_b.wasmtime_val_t * max(n, 1))()
    for i, (kind, value) in enumerate(zip(params, args, strict=True)):
        _set_val(argv[i], kind, value)
    nres = len(results)
    res = (_b.wasmtime_val_t * max(nres, 1))()
    fiber = Fiber(0, (ext, argv), res, results)
    fiber._fut = _func_call_async(
        ctx,
        addressof(ext) + _EXTERN_OF,
        addressof(argv),
        n,
        addressof(res),
        nres,
        addressof(fiber._trap),
        addressof(fiber._err),
    )
    return fiber


def _set_val(val: Any, kind: ValType, value: Any) -> None:
    val.kind = int(kind)
    if kind == ValType.I32:
        val.of.i32 = ((value + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)
    elif kind == ValType.I64:
        val.of.i64 = ((value + (1 << 63)) & MASK64) - (1 << 63)
    elif kind == ValType.F32:
        val.of.f32 = value
    elif kind == ValType.F64:
        val.of.f64 = value
    else:
        raw = (value & ((1 << 128) - 1)).to_bytes(16, "little")
        ctypes.memmove(addressof(val.of), raw, 16)


class Store:
    """One process's wasmtime store, instance and memory.

    The store is deleted by :meth:`close` (idempotent), after every fiber on
    it has been closed.
    """

    __slots__ = ("_instance", "_sinks", "_store", "ctx", "memory")

    def __init__(
        self,
        engine: Engine,
        *,
        max_memory: int,
        fuel: int | None,
        wasi: WasiSpec | None = None,
        stdout: OutputSink | None = None,
        stderr: OutputSink | None = None,
    ) -> None:
        store = _store_new(engine.address, None, None)
        ctx: int = _store_context(store)
        self._store: int = store
        self.ctx = ctx
        self._instance = (c_uint8 * _INSTANCE_SIZE)()
        # Limits as lunatic sets them (HOSTAPI.md section 1.4): memory in
        # bytes, tables below 100 000 elements, one instance, table, memory.
        _store_limiter(store, min(max_memory, _I64_MAX), 99_999, 1, 1, 1)
        _check(_set_fuel(ctx, MASK64 if fuel is None else fuel), "setting fuel")
        _check(_fuel_yield(ctx, engine.settings.fuel_slice), "setting fuel yields")
        self._sinks: list[int] = []
        if wasi is not None:
            _check(_set_wasi(ctx, wasi._build(stdout, stderr, self._sinks)), "setting WASI context")
        self.memory = GuestMemory(ctx)

    def instantiate(self, module: Module) -> Fiber:
        """Start instantiating ``module`` (its start function runs in the fiber)."""
        fib = Fiber(0, None, None, ())
        fib._fut = _pre_instantiate_async(
            module.pre_address,
            self.ctx,
            addressof(self._instance),
            addressof(fib._trap),
            addressof(fib._err),
        )
        return fib

    def instantiated(self) -> None:
        """Record that instantiation finished: resolve the ``memory`` export."""
        self.memory.bind_instance(addressof(self._instance))

    def call(self, name: str, sig: FuncSig, args: Sequence[Any]) -> Fiber | None:
        """Start calling export ``name`` with ``args`` of types ``sig.params``.

        Returns ``None`` when the instance has no such function.
        """
        ext = (c_uint8 * _EXTERN_SIZE)()
        nm = name.encode()
        if not _instance_export_get(self.ctx, addressof(self._instance), nm, len(nm), ext):
            return None
        if ext[0] != _EXTERN_FUNC:
            return None
        return _call_async(self.ctx, ext, sig.params, args, sig.results)

    def close(self) -> None:
        """Delete the store, its instance and its memory; idempotent."""
        store = self._store
        if store:
            self._store = 0
            self.memory.release()
            _store_delete(store)
            for key in self._sinks:
                _sinks.pop(key, None)
            self._sinks.clear()


# --------------------------------------------------------------------------
# host-function trampolines
# --------------------------------------------------------------------------


class _HostCall:
    """A host call that returns to the guest later: where its result goes
    (``results``, of types ``kinds``) or its trap (``trap_ret``)."""

    __slots__ = ("kinds", "name", "owner", "results", "trap_ret")

    def __init__(
        self, owner: Any, results: Any, kinds: tuple[ValType, ...], trap_ret: Any, name: str
    ) -> None:
        self.owner = owner
        self.results = results
        self.kinds = kinds
        self.trap_ret = trap_ret
        self.name = name

    def complete(self, request: Suspend | CallGuest, result: Any) -> None:
        """Run ``request.finish`` on ``result`` (inside the host call) and
        store the Wasm result it returns, or what it raises as the trap."""
        try:
            value = request.finish(*request.finish_args, result)
            if self.kinds:
                self.results[0] = int(self.kinds[0])
                self.results[_VAL_OFFSET] = _WRITERS[self.kinds[0]](value)
        except BaseException as e:
            self.trap_ret[0] = _trap_address(self.owner, self.name, e)


class PendingCall(_HostCall):
    """A blocking host call suspended until the driver resumes it.

    The driver awaits ``suspend.wait(*suspend.args)`` and hands the outcome
    to :meth:`resume`; the next poll of the fiber finishes the host call.
    """

    __slots__ = ("id", "outcome", "suspend")

    def __init__(
        self,
        suspend: Suspend,
        owner: Any,
        results: Any,
        kinds: tuple[ValType, ...],
        trap_ret: Any,
        name: str,
    ) -> None:
        # Not super().__init__: this runs on the fiber of every process that
        # parks, and the extra call reaches one more stack page (4 KiB each).
        self.owner = owner
        self.results = results
        self.kinds = kinds
        self.trap_ret = trap_ret
        self.name = name
        self.id = next(_pending_ids)
        self.suspend = suspend
        self.outcome: outcome.Outcome[Any] | None = None

    def resume(self, result: outcome.Outcome[Any]) -> None:
        """Hand the awaited outcome to the guest's next poll."""
        self.outcome = result


_pending: dict[int, PendingCall] = {}
_pending_ids = itertools.count(1)


def _trap_address(owner: Any, name: str, exc: BaseException) -> int:
    """Turn an exception from a host function into a ``wasm_trap_t*``."""
    if isinstance(exc, GuestMemoryError):
        message = f"Trap raised during host call: {exc} ({name})."
    elif isinstance(exc, HostTrap):
        message = str(exc)
    else:
        logger.debug("host function %s raised", name, exc_info=exc)
        message = f"host function {name} failed: {type(exc).__name__}: {exc}"
    if owner is not None:
        owner.last_trap = message
        if isinstance(exc, GuestExit):
            owner.exit_status = exc.status
    data = message.encode("utf-8", "replace")
    trap: int = _trap_new(data, len(data))
    return trap


def _result_writer(kind: ValType) -> Callable[[Any], Any]:
    """How a result of ``kind`` is stored into an ``int64`` slot."""
    if kind == ValType.I32:
        return lambda v: v & 0xFFFF_FFFF
    if kind == ValType.I64:
        return lambda v: ((v + (1 << 63)) & MASK64) - (1 << 63)
    if kind == ValType.F64:
        return lambda v: struct.unpack("<q", struct.pack("<d", v))[0]
    if kind == ValType.F32:
        return lambda v: struct.unpack("<i", struct.pack("<f", v))[0]
    raise TypeError(f"unsupported host result type {kind}")


def _arg_reader(kind: ValType, slot: str) -> str:
    """Python expression decoding an argument from ``int64`` slot ``slot``.

    ``i32`` arrives unsigned (pointers, lengths, flags); ``i64`` signed (host
    functions reinterpret ids as unsigned themselves); floats bit-cast.
    """
    if kind == ValType.I32:
        return f"({slot} & 0xFFFFFFFF)"
    if kind == ValType.I64:
        return slot
    if kind == ValType.F64:
        return f"_f64({slot})"
    if kind == ValType.F32:
        return f"_f32({slot})"
    raise TypeError(f"unsupported host parameter type {kind}")


_WRITERS: Final[dict[ValType, Callable[[Any], Any]]] = {
    k: _result_writer(k) for k in ValType if k != ValType.V128
}


def _f64(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<q", bits))[0])


def _f32(bits: int) -> float:
    return float(struct.unpack("<f", struct.pack("<i", bits & 0xFFFF_FFFF))[0])


# Source templates: specialised per signature so a host call costs one Python
# frame plus the handler. ``vals``/``args`` are int64 views of the C arrays.
# The per-function constants are default arguments (fast locals); the
# trampoline's globals are this module's, so ``current`` is always live.
_SYNC_TEMPLATE = """
def trampoline(env, caller, vals, nvals, _handler=_handler, _name=_name, _w0=_w0):
    global _epoch
    _epoch += 1
    proc = current
    try:
        if proc.memory.state == 0:
            proc.memory.bind_caller(caller)
        r = _handler(proc{args})
{store}        return 0
    except BaseException as e:
        return _trap_address(proc, _name, e)
"""

_ASYNC_TEMPLATE = """
def trampoline(env, caller, args, nargs, results, nresults, trap_ret, cont,
               _handler=_handler, _name=_name, _w0=_w0, _kinds=_kinds):
    global _epoch, _suspended
    _epoch += 1
    cont[0] = _READY
    proc = current
    try:
        if proc.memory.state == 0:
            proc.memory.bind_caller(caller)
        r = _handler(proc{args})
        if type(r) is Suspend:
            p = PendingCall(r, proc, results, _kinds, trap_ret, _name)
            _pending[p.id] = p
            _suspended = p
            cont[0] = _CONT
            cont[1] = p.id
            cont[2] = _FIN
        elif type(r) is CallGuest:
            _start_nested(caller, r, proc, results, _kinds, trap_ret, cont, _name)
        else:
{store}            pass
    except BaseException as e:
        trap_ret[0] = _trap_address(proc, _name, e)
"""


def _compile_trampoline(
    template: str, handler: HostFunction, sig: FuncSig, qualname: str, stride: int, offset: int
) -> Callable[..., Any]:
    if len(sig.results) > 1:
        raise TypeError(f"{qualname}: host functions return at most one value")
    slots = "vals" if template is _SYNC_TEMPLATE else "args"
    args = "".join(
        ", " + _arg_reader(k, f"{slots}[{stride * i + offset}]") for i, k in enumerate(sig.params)
    )
    store = ""
    if sig.results:
        if template is _SYNC_TEMPLATE:
            store = "        vals[0] = _w0(r)\n"
        else:
            store = (
                f"            results[0] = {int(sig.results[0])}\n"
                f"            results[{_VAL_OFFSET}] = _w0(r)\n"
            )
    src = template.format(args=args, store=store)
    scope: dict[str, Any] = {
        "_handler": handler,
        "_name": qualname,
        "_kinds": sig.results,
        "_w0": _WRITERS[sig.results[0]] if sig.results else None,
    }
    exec(compile(src, f"<trampoline {qualname}>", "exec"), globals(), scope)
    fn: Callable[..., Any] = scope["trampoline"]
    return fn


def _sync_trampoline(handler: HostFunction, sig: FuncSig, qualname: str) -> Callable[..., Any]:
    return _compile_trampoline(_SYNC_TEMPLATE, handler, sig, qualname, _RAW_STRIDE, 0)


def _async_trampoline(handler: HostFunction, sig: FuncSig, qualname: str) -> Callable[..., Any]:
    return _compile_trampoline(_ASYNC_TEMPLATE, handler, sig, qualname, _VAL_STRIDE, _VAL_OFFSET)


def _continuation(key: int) -> bool:
    # Polled (on the fiber) until the driver has resumed the operation.
    global _epoch
    _epoch += 1
    p = _pending.get(key)
    if p is None:
        return True
    result = p.outcome
    if result is None:
        return False
    del _pending[key]
    p.complete(p.suspend, result)
    return True


def _finalize(key: int) -> None:
    # The continuation is dropped: normally after it returned True, or when a
    # suspended future is deleted (the process was killed).
    _pending.pop(key, None)


def _ready(_key: int) -> bool:
    return True


class _Nested(_HostCall):
    """A nested call into the guest, made from inside a host call."""

    __slots__ = ("call", "fiber")

    def __init__(
        self,
        fiber: Fiber,
        call: CallGuest,
        owner: Any,
        results: Any,
        kinds: tuple[ValType, ...],
        trap_ret: Any,
        name: str,
    ) -> None:
        super().__init__(owner, results, kinds, trap_ret, name)
        self.fiber = fiber
        self.call = call


_nested: dict[int, _Nested] = {}


def _start_nested(
    caller: int,
    call: CallGuest,
    owner: Any,
    results: Any,
    kinds: tuple[ValType, ...],
    trap_ret: Any,
    cont: Any,
    name: str,
) -> None:
    """Start ``call`` on the caller's store; its continuation polls it."""
    ext = (c_uint8 * _EXTERN_SIZE)()
    nm = call.export.encode()
    if not _caller_export_get(caller, nm, len(nm), ext) or ext[0] != _EXTERN_FUNC:
        raise HostTrap(call.missing)
    fiber = _call_async(_caller_context(caller), ext, call.params, call.args, call.results)
    key = next(_pending_ids)
    _nested[key] = _Nested(fiber, call, owner, results, kinds, trap_ret, name)
    cont[0] = _NEST_CONT
    cont[1] = key
    cont[2] = _NEST_FIN


def _nested_continuation(key: int) -> bool:
    # Polls the nested call; while it is suspended (or yielded its fuel) the
    # outer poll returns False, and the driver serves whatever it waits for.
    n = _nested.get(key)
    if n is None or not n.fiber._fut:
        return True
    global _epoch
    try:
        polled = _future_poll(n.fiber._fut)
        _epoch += 1  # the nested guest ran
        if not polled:
            return False
        result = n.fiber.result()
        n.fiber.close()
    except BaseException as e:
        n.trap_ret[0] = _trap_address(n.owner, n.name, e)
        return True
    n.complete(n.call, result)
    return True


def _nested_finalize(key: int) -> None:
    # Dropped after completion, or when the outer call is deleted while the
    # nested one is suspended (a kill): unwind the nested fiber first.
    n = _nested.pop(key, None)
    if n is not None:
        n.fiber.close()


_callbacks = (
    _CONT_T(_continuation),
    _FINALIZER_T(_finalize),
    _CONT_T(_ready),
    _CONT_T(_nested_continuation),
    _FINALIZER_T(_nested_finalize),
)
_CONT: Final = _address(_callbacks[0])
_FIN: Final = _address(_callbacks[1])
_READY: Final = _address(_callbacks[2])
_NEST_CONT: Final = _address(_callbacks[3])
_NEST_FIN: Final = _address(_callbacks[4])
_KEEP.extend([*_callbacks, _sink_write_cb])


def live_pending() -> int:
    """Number of suspended host calls and nested calls (for leak tests)."""
    return len(_pending) + len(_nested)
