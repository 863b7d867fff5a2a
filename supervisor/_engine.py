"""The shared Wasm host: one engine and one linker per engine settings.

Host functions are store-independent, so every runtime with the same engine
settings shares one engine, one linker and one cache of compiled modules (each
pre-instantiated against the linker).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import OrderedDict

import trio
import wasmtime

from hostapi import ffi
from hostapi.linking import define_all

__all__ = ["CompileError", "WasmHost", "wasm_host"]


class CompileError(Exception):
    """A module that cannot be compiled or whose imports cannot be satisfied."""


class WasmHost:
    """An engine, its linker with every host function, and compiled modules."""

    _CACHE_SIZE = 64

    def __init__(self, settings: ffi.EngineSettings) -> None:
        self.settings = settings
        self.engine = ffi.Engine(settings)
        self.linker = ffi.Linker(self.engine)
        define_all(self.linker)
        self._modules: OrderedDict[bytes, ffi.Module] = OrderedDict()

    def compile(self, wasm: bytes, name: str = "<module>") -> ffi.Module:
        """Compile and pre-instantiate ``wasm`` (binary, or WAT text as bytes).

        Raises :class:`CompileError` with wasmtime's message when the bytes are
        not a valid module or an import is unknown or has the wrong type.
        """
        if not wasm.startswith(b"\0asm"):
            if not _looks_like_wat(wasm):
                raise CompileError("not a WebAssembly module (no \\0asm header, not WAT text)")
            try:
                wasm = ffi.wat_to_wasm(wasm)
            except (wasmtime.WasmtimeError, UnicodeDecodeError) as e:
                raise CompileError(_wat_error(str(e))) from None
        key = hashlib.sha256(wasm).digest()
        cached = self._modules.get(key)
        if cached is not None:
            self._modules.move_to_end(key)
            return cached
        try:
            module = ffi.Module(self.linker, wasm, name)
        except wasmtime.WasmtimeError as e:
            raise CompileError(_first_line(str(e))) from None
        self._modules[key] = module
        if len(self._modules) > self._CACHE_SIZE:
            self._modules.popitem(last=False)
        return module

    #: Modules at least this big are compiled on a worker thread.
    THREAD_THRESHOLD = 128 << 10

    async def compile_async(self, wasm: bytes, name: str = "<module>") -> ffi.Module:
        """:meth:`compile` without stalling other processes.

        Big modules are compiled on a worker thread (lunatic blocks its
        executor instead, its section 6.10). Small ones take a few
        milliseconds and are compiled inline, which keeps virtual time
        (``MockClock``) deterministic for the tests that use them.
        """
        if len(wasm) < self.THREAD_THRESHOLD:
            await trio.lowlevel.checkpoint()
            return self.compile(wasm, name)
        return await trio.to_thread.run_sync(self.compile, wasm, name)

    def load(self, path: str | os.PathLike[str]) -> ffi.Module:
        """Compile a ``.wasm`` or ``.wat`` file."""
        with open(path, "rb") as f:
            data = f.read()
        return self.compile(data, os.path.basename(os.fspath(path)))


_WAT_START = re.compile(rb"\A(?:\s+|;;[^\n]*(?:\n|\Z)|\(;.*?;\))*\(", re.DOTALL)


def _looks_like_wat(data: bytes) -> bool:
    """Text whose first token, after white space and comments, is ``(``."""
    return _WAT_START.match(data) is not None


def _wat_error(message: str) -> str:
    """wat2wasm's message and the ``line:column`` it points at, on one line."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    arrow = next((ln.split()[-1] for ln in lines if ln.startswith("-->")), "")
    where = arrow.rsplit(":", 2)[-2:] if arrow else []
    at = f" at line {where[0]}, column {where[1]}" if len(where) == 2 else ""
    return f"invalid WAT{at}: {lines[0] if lines else message}"


def _first_line(message: str) -> str:
    """wasmtime's errors carry context lines; the first and last say it all."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    if not lines:
        return message
    if len(lines) > 1 and lines[-1] != lines[0] and not lines[-1].startswith("0:"):
        return f"{lines[0]} ({lines[-1]})" if "Caused by" not in lines[-1] else lines[0]
    return lines[0]


_hosts: dict[tuple[int, ...], WasmHost] = {}


def wasm_host(settings: ffi.EngineSettings | None = None) -> WasmHost:
    """The shared host for ``settings`` (created on first use)."""
    s = settings or ffi.EngineSettings()
    key = (
        s.fuel_slice,
        s.async_stack_size,
        s.max_wasm_stack,
        s.memory_reservation,
        s.memory_guard_size,
    )
    host = _hosts.get(key)
    if host is None:
        host = _hosts[key] = WasmHost(s)
    return host
