"""Wasm processes: a wasmtime fiber per process, driven by its Trio task.

The driver (:meth:`WasmProcess.run_fiber`) polls the process's call future. When a
blocking host call suspends, it awaits the requested operation (a mailbox
wait, a sleep, a spawn...) on the Trio side and polls again, which resumes the
guest inside that host call. When the guest merely used up its fuel slice, the
driver yields to Trio once and polls again, so a CPU-bound guest never starves
the others and a kill reaches it within one slice. Killing the process cancels
its scope: the driver stops polling and deletes the future, which unwinds the
suspended guest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import outcome
import trio

from hostapi import ffi
from hostapi.data import Message, ProcessConfig, ResourceTable, SpawnRequest
from hostapi.protocols import SpawnError
from hostapi.signatures import FuncSig

from ._exit import NORMAL_EXIT, Exit, ExitReason
from ._process import Process

if TYPE_CHECKING:
    from ._capture import CaptureStream
    from ._environment import Environment
    from ._metrics import Metrics
    from ._runtime import Runtime

__all__ = ["WasmProcess", "describe_failure"]

logger = logging.getLogger("supervisor.wasm")

_checkpoint = trio.lowlevel.checkpoint


def describe_failure(result: ffi.CallResult, last_trap: str | None) -> str:
    """The detail of a failed call: the host trap's message, or the guest trap's."""
    if result.kind == "error" and last_trap:
        return last_trap
    lines = [ln for ln in result.message.strip().splitlines() if ln.strip()]
    if not lines:
        return result.kind
    if result.kind == "trap":
        # "error while executing at wasm backtrace: ..." then the trap itself last.
        msg = lines[-1].strip()
        if msg.startswith("Caused by:"):
            msg = lines[-1].split(":", 1)[1].strip()
        return f"trap: {msg}" if not msg.startswith("wasm trap") else msg
    return lines[-1].strip() if lines[0].startswith("error while executing") else lines[0]


class WasmProcess(Process):
    """A process running a Wasm module's export on a wasmtime fiber."""

    __slots__ = (
        "_configs",
        "_errors",
        "_modules",
        "_resources",
        "config",
        "entry",
        "exit_status",
        "initialized",
        "last_trap",
        "memory",
        "module",
        "params",
        "result",
        "scratch",
        "stderr",
        "stdout",
        "store",
        "wait_message",
    )

    kind = "wasm"

    def __init__(
        self,
        runtime: Runtime,
        environment: Environment,
        request: SpawnRequest,
        stdout: CaptureStream | None,
        stderr: CaptureStream | None,
    ) -> None:
        super().__init__(runtime, environment, request.pid)
        self.module: ffi.Module = request.module
        self.config = request.config
        self.entry = request.entry
        self.params = request.params
        self.stdout = stdout
        self.stderr = stderr
        self.initialized = False
        self.last_trap: str | None = None
        self.exit_status: int | None = None
        self.scratch: Message | None = None
        self.result: outcome.Outcome[tuple[Any, ...]] | None = None
        self._errors: ResourceTable[str] | None = None
        self._modules: ResourceTable[ffi.Module] | None = None
        self._configs: ResourceTable[ProcessConfig] | None = None
        self._resources: dict[str, ResourceTable[Any]] | None = None
        # What a blocking receive awaits: the mailbox's own wait, directly.
        self.wait_message = self.mailbox.wait
        config = request.config
        wasi = None
        if self.module.imports_wasi:
            wasi = config._wasi
            if wasi is None:
                wasi = config._wasi = ffi.WasiSpec(config.args, config.env, config.preopens)
        self.store = ffi.Store(
            runtime.host.engine,
            max_memory=config.max_memory,
            fuel=config.fuel,
            wasi=wasi,
            stdout=stdout,
            stderr=stderr,
        )
        self.memory = self.store.memory

    @property
    def metrics(self) -> Metrics:
        return self.runtime.metrics

    # -- resource tables (created on first use) --------------------------------

    @property
    def errors(self) -> ResourceTable[str]:
        if self._errors is None:
            self._errors = ResourceTable()
        return self._errors

    @property
    def modules(self) -> ResourceTable[ffi.Module]:
        if self._modules is None:
            self._modules = ResourceTable()
        return self._modules

    @property
    def configs(self) -> ResourceTable[ProcessConfig]:
        if self._configs is None:
            self._configs = ResourceTable()
        return self._configs

    def resources(self, kind: str) -> ResourceTable[Any]:
        if self._resources is None:
            self._resources = {}
        table = self._resources.get(kind)
        if table is None:
            table = self._resources[kind] = ResourceTable()
        return table

    # -- the driver ------------------------------------------------------------

    async def _drive(self, fiber: ffi.Fiber, first: ffi.PendingCall | None) -> ffi.CallResult:
        """Finish running ``fiber``, serving its blocking host calls; ``first``
        is what its first :meth:`~hostapi.ffi.Fiber.step` returned."""
        step = fiber.step
        r = first
        try:
            while True:
                if r is None:
                    await _checkpoint()
                else:
                    s = r.suspend
                    try:
                        value = await s.wait(*s.args)
                    except trio.Cancelled:
                        raise
                    except Exception as e:
                        r.resume(outcome.Error(e))
                    else:
                        r.resume(outcome.Value(value))
                stepped = step(self)
                if stepped is True:
                    return fiber.result()
                r = stepped
        finally:
            fiber.close()

    async def run_fiber(self, fiber: ffi.Fiber) -> ffi.CallResult:
        """Run ``fiber`` to completion; a call that never waits costs no extra
        coroutine (most instantiations and short entries)."""
        try:
            r = fiber.step(self)
        except BaseException:
            fiber.close()
            raise
        if r is True:
            result = fiber.result()
            fiber.close()
            return result
        return await self._drive(fiber, r)

    async def instantiate(self) -> None:
        """Instantiate the module (its start function may block, suspending
        whoever spawns). Raises :class:`SpawnError` when instantiation fails."""
        result = await self.run_fiber(self.store.instantiate(self.module))
        if result.kind != "ok":
            raise SpawnError(
                f"Failed to spawn process from {self.module.name}::{self.entry}(): "
                + describe_failure(result, self.last_trap)
            )
        self.store.instantiated()
        self.initialized = True

    async def _body(self) -> Exit:
        sig = self.module.functions.get(self.entry, _MISSING)
        if sig is _MISSING or sig is None:
            why = "not found" if sig is _MISSING else "has an unsupported signature"
            return self._failed(f"Function '{self.entry}' {why}")
        kinds = tuple(k for k, _ in self.params)
        if sig.params != kinds:
            called = ", ".join(map(str, kinds))
            return self._failed(
                f"Function '{self.entry}' has type {sig} but was called with ({called})"
            )
        if sig.results:
            return self._failed(
                f"Function '{self.entry}' has type {sig}; an entry must not return values"
            )
        fiber = self.store.call(self.entry, FuncSig(sig.params, ()), [v for _, v in self.params])
        if fiber is None:
            return self._failed(f"Function '{self.entry}' not found")
        result = await self.run_fiber(fiber)
        if result.kind == "error" and self.exit_status is not None:
            # proc_exit inside a nested call (lunatic::trap::catch)
            result = ffi.CallResult("exit", status=self.exit_status)
        if result.kind == "ok":
            self.result = outcome.Value(result.values)
            return NORMAL_EXIT
        if result.kind == "exit" and result.status == 0:
            self.result = outcome.Value(())
            return Exit(ExitReason.NORMAL, "proc_exit(0)", status=0)
        if result.kind == "exit":
            detail = f"proc_exit({result.status})"
            self.result = outcome.Error(GuestFault(detail))
            return Exit(ExitReason.FAILURE, detail, status=result.status)
        detail = describe_failure(result, self.last_trap)
        self.result = outcome.Error(GuestFault(detail, result.trap_code))
        return Exit(ExitReason.FAILURE, detail)

    def _failed(self, detail: str) -> Exit:
        self.result = outcome.Error(GuestFault(detail))
        return Exit(ExitReason.FAILURE, detail)

    def _release(self) -> None:
        self.scratch = None
        self._errors = self._modules = self._configs = None
        resources, self._resources = self._resources, None
        if resources:
            for kind, table in resources.items():
                for item in table.clear():
                    close = getattr(item, "close", None)
                    if close is not None and kind != "timer":  # timers outlive the process
                        close()
        self.store.close()
        self.runtime._store_released()

    # -- timers -------------------------------------------------------------------

    def send_after(self, pid: int, delay_ms: int, message: Message) -> int:
        table = self.resources("timer")
        timer = self.runtime._schedule(delay_ms / 1000, self.environment.get(pid), message)
        timer_id = table.add(timer)
        timer.on_fire = lambda: table.remove(timer_id)
        return timer_id

    def cancel_timer(self, timer_id: int) -> bool:
        timer = self.resources("timer").remove(timer_id)
        return timer is not None and timer.cancel()

    # -- HostProcess operations that the driver awaits --------------------------

    def take_message(self, tags: Sequence[int]) -> Message | None:
        return self.mailbox.take(tags)

    async def sleep(self, ms: int) -> None:
        await trio.sleep(ms / 1000)

    async def compile(self, wasm: bytes) -> ffi.Module:
        from ._engine import CompileError

        try:
            return await self.runtime.host.compile_async(wasm, f"module from process {self.id}")
        except CompileError as e:
            raise SpawnError(str(e)) from None

    async def spawn(self, request: SpawnRequest) -> int:
        child = await self.runtime._spawn_wasm(self, request)
        return child.id

    async def get_or_spawn(self, name: str, request: SpawnRequest) -> tuple[int, int, int]:
        env = self.environment
        async with env.registry_lock:
            found = env.registry.get(name)
            if found is not None:
                return (2, found[0], found[1])
            child = await self.runtime._spawn_wasm(self, request)
            env.registry_put(name, 0, child.id)
            return (0, 0, child.id)


class GuestFault(Exception):
    """Why a Wasm process failed (the error of its ``result``)."""

    def __init__(self, detail: str, trap_code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.trap_code = trap_code


_MISSING: Any = object()
