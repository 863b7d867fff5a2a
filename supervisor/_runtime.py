"""The runtime: environments, spawning, and the root of the process tree."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import trio

from hostapi import ffi
from hostapi.data import DataMessage, Message, ObjectMessage, ProcessConfig, SpawnRequest
from hostapi.protocols import SpawnError
from hostapi.signatures import ValType

from ._admission import MappingBudget
from ._capture import CaptureStream
from ._engine import CompileError, WasmHost, wasm_host
from ._environment import Environment
from ._exit import Exit, ExitReason
from ._gc import raised_gc_threshold
from ._handle import ProcessHandle
from ._logs import heard
from ._metrics import Metrics
from ._process import Process
from ._python import ProcessFunction, PythonProcess
from ._timers import Timer, TimerService
from ._wasm import WasmProcess

__all__ = ["Runtime", "open_runtime"]

logger = logging.getLogger("supervisor.runtime")


class Runtime:
    """Runs Wasm and Python processes; create one with :func:`open_runtime`.

    Processes spawned through the runtime (rather than by another process) are
    children of the runtime's root nursery. Closing the runtime cancels every
    process; each is reported ``killed`` with the detail "runtime shut down".
    """

    def __init__(
        self,
        host: WasmHost,
        budget: MappingBudget,
        default_config: ProcessConfig,
        environment_id: int,
    ) -> None:
        self.host = host
        self.budget = budget
        self.default_config = default_config.copy()
        self.environments: dict[int, Environment] = {}
        self.default_environment = self.environment(environment_id)
        self._nursery: trio.Nursery | None = None
        self._closing = False
        self._supervisors: list[_Stoppable] = []
        self.timers = TimerService()
        #: What guests record through ``lunatic::metrics``.
        self.metrics = Metrics()

    # -- environments ----------------------------------------------------------

    def environment(self, env_id: int | None = None) -> Environment:
        """The environment ``env_id`` (created on first use); default: the runtime's."""
        if env_id is None:
            return self.default_environment
        env = self.environments.get(env_id)
        if env is None:
            env = self.environments[env_id] = Environment(env_id)
        return env

    def new_environment(self, env_id: int = 0) -> Environment:
        """A fresh environment (ids from 1, its own registry), even if ``env_id`` is
        already used, as lunatic's test mode gives every test environment id 0."""
        return Environment(env_id)

    def _env(self, environment: Environment | int | None) -> Environment:
        if isinstance(environment, Environment):
            return environment
        return self.environment(environment)

    # -- modules ---------------------------------------------------------------

    def load_module(self, path: str | os.PathLike[str]) -> ffi.Module:
        """Compile a ``.wasm`` binary or ``.wat`` text file.

        Raises ``FileNotFoundError`` for a missing file and :class:`CompileError`
        for an invalid module or an import lunatrio does not provide.
        """
        try:
            return self.host.load(path)
        except IsADirectoryError:
            raise CompileError(f"{os.fspath(path)} is a directory, not a module") from None

    def compile_module(self, source: bytes | str, name: str = "<module>") -> ffi.Module:
        """Compile a module from Wasm bytes or WAT text (raises :class:`CompileError`)."""
        data = source.encode() if isinstance(source, str) else bytes(source)
        return self.host.compile(data, name)

    # -- spawning ----------------------------------------------------------------

    async def spawn(
        self,
        module: ffi.Module,
        entry: str = "_start",
        params: Sequence[int] = (),
        *,
        config: ProcessConfig | None = None,
        environment: Environment | int | None = None,
        stdout: CaptureStream | None = None,
        stderr: CaptureStream | None = None,
    ) -> ProcessHandle:
        """Spawn a Wasm process running ``module``'s export ``entry``.

        ``params`` are converted to the export's parameter types. ``config``
        defaults to the runtime's ``default_config`` (every permission, no
        WASI arguments, environment or directories). ``stdout`` / ``stderr``
        capture the process's output (and its children's, section 3.7).

        Raises ``ValueError`` when the export is missing or ``params`` do not
        fit it, and :class:`SpawnError` when instantiation fails or the
        runtime is full.
        """
        return await self._spawn_wasm_api(
            None, module, entry, params, config, 0, stdout, stderr, self._env(environment)
        )

    async def spawn_python(
        self, fn: ProcessFunction, *args: Any, environment: Environment | int | None = None
    ) -> ProcessHandle:
        """Spawn a Python process running ``await fn(context, *args)``."""
        return await self._spawn_python(None, fn, args, 0, self._env(environment))

    async def _spawn_wasm_api(
        self,
        parent: Process | None,
        module: ffi.Module,
        entry: str,
        params: Sequence[int],
        config: ProcessConfig | None,
        link: int,
        stdout: CaptureStream | None,
        stderr: CaptureStream | None,
        environment: Environment | None = None,
    ) -> ProcessHandle:
        if not isinstance(module, ffi.Module):
            raise TypeError(f"expected a module from load_module/compile_module, got {module!r}")
        sig = module.functions.get(entry)
        if entry not in module.functions:
            exports = ", ".join(sorted(module.functions)) or "none"
            raise ValueError(
                f"{module.name} has no exported function {entry!r} (exports: {exports})"
            )
        if sig is None:
            raise ValueError(f"{module.name}::{entry} has reference-typed parameters or results")
        if len(params) != len(sig.params) or sig.results:
            raise ValueError(
                f"{module.name}::{entry} has type {sig}; an entry takes i32/i64/v128 "
                f"parameters and returns nothing, and {len(params)} parameters were given"
            )
        if any(t not in (ValType.I32, ValType.I64, ValType.V128) for t in sig.params):
            raise ValueError(f"{module.name}::{entry} has type {sig}: floats cannot be passed")
        env = parent.environment if parent is not None else environment or self.default_environment
        request = SpawnRequest(
            pid=env.allocate_pid(),
            config=self.default_config if config is None else config.copy(),
            module=module,
            entry=entry,
            params=list(zip(sig.params, (int(p) for p in params), strict=True)),
            link=link,
        )
        child = await self._spawn_wasm(parent, request, env, stdout, stderr)
        return ProcessHandle(child)

    async def _spawn_wasm(
        self,
        parent: Process | None,
        request: SpawnRequest,
        environment: Environment | None = None,
        stdout: CaptureStream | None = None,
        stderr: CaptureStream | None = None,
    ) -> WasmProcess:
        """Instantiate and start a Wasm process (HOSTAPI.md section 1.3, 11-15).

        The child is registered, linked and started in one synchronous step
        once instantiation has succeeded, so a spawn abandoned half-way
        leaves nothing behind (the fix of lunatic's section 6.8).
        """
        env = parent.environment if parent is not None else environment
        assert env is not None
        if stdout is None and stderr is None and isinstance(parent, WasmProcess):
            stdout, stderr = _inherit_output(parent.stdout, parent.stderr)
        if not self.budget.acquire():
            raise SpawnError(self.budget.refusal())
        try:
            child = WasmProcess(self, env, request, stdout, stderr)
        except BaseException as e:
            self.budget.release()
            if isinstance(e, OSError | RuntimeError):
                raise SpawnError(str(e)) from None
            raise
        try:
            await child.instantiate()
            nursery = await self._home(parent)
        except BaseException:
            child.store.close()
            self.budget.release()
            raise
        self._start(child, parent, request.link, nursery)
        return child

    async def _spawn_python(
        self,
        parent: Process | None,
        fn: ProcessFunction,
        args: Sequence[Any],
        link: int,
        environment: Environment | None = None,
    ) -> ProcessHandle:
        if not callable(fn):
            raise TypeError(f"a Python process needs an async function, got {fn!r}")
        env = parent.environment if parent is not None else environment or self.default_environment
        nursery = await self._home(parent)
        child = PythonProcess(self, env, env.allocate_pid(), fn, args)
        self._start(child, parent, link, nursery)
        return ProcessHandle(child)

    async def _home(self, parent: Process | None) -> trio.Nursery:
        """Where a new process's task will run: its parent's children nursery,
        or the runtime's root nursery."""
        if parent is not None:
            return await parent.children_nursery()
        if self._nursery is None:
            raise RuntimeError("the runtime is not running (use `async with open_runtime()`)")
        return self._nursery

    def _start(
        self, child: Process, parent: Process | None, link: int, nursery: trio.Nursery
    ) -> None:
        """Register, link and start a process in one synchronous step."""
        env = child.environment
        env.processes[child.id] = child
        child.registered = True
        if parent is not None and link:
            # Spawn links are asymmetric (section 1.9): the child's entry
            # carries the tag, the parent's none.
            child.links[parent.id] = (parent, link)
            parent.links[child.id] = (child, 0)
        child.home = nursery
        nursery.start_soon(child.run)

    # -- acting on processes from Python ----------------------------------------

    def process(
        self, pid: int, environment: Environment | int | None = None
    ) -> ProcessHandle | None:
        """A handle on a live process, or ``None``."""
        p = self._env(environment).processes.get(pid)
        return ProcessHandle(p) if p is not None else None

    def processes(self, environment: Environment | int | None = None) -> list[ProcessHandle]:
        """Handles on the live processes of an environment, by id."""
        procs = self._env(environment).processes
        return [ProcessHandle(procs[pid]) for pid in sorted(procs)]

    def send(
        self,
        pid: int | ProcessHandle,
        data: bytes | Message,
        *,
        tag: int = 0,
        environment: Environment | int | None = None,
    ) -> bool:
        """Send bytes (or a message) to a process; False if it does not exist."""
        target = self._target(pid, environment)
        if target is None:
            return False
        message = data if not isinstance(data, bytes | bytearray) else DataMessage(tag, data)
        self._deliver(target, message)
        return True

    def _deliver(self, target: Process | None, message: Message) -> None:
        """Queue a message from Python code (nothing happens for a missing target)."""
        if target is None:
            return
        if isinstance(message, ObjectMessage) and target.kind == "wasm":
            raise TypeError(
                f"process {target.id} is a Wasm process: it can only receive bytes, not objects"
            )
        target.mailbox.push(message)

    def kill(
        self, pid: int | ProcessHandle, *, environment: Environment | int | None = None
    ) -> bool:
        """Kill a process (reason ``killed``); False if it does not exist."""
        target = self._target(pid, environment)
        if target is None:
            return False
        target.terminate(Exit(ExitReason.KILLED, "killed"))
        return True

    def link(
        self,
        a: int | ProcessHandle,
        b: int | ProcessHandle,
        *,
        tag: int = 0,
        environment: Environment | int | None = None,
    ) -> None:
        """Link two live processes of one environment, as ``a`` calling ``link(tag, b)``."""
        pa = self._target(a, environment)
        if pa is None:
            raise LookupError(f"no process {a}")
        pa.link(tag, b.id if isinstance(b, ProcessHandle) else b)

    def _target(
        self, pid: int | ProcessHandle, environment: Environment | int | None
    ) -> Process | None:
        if isinstance(pid, ProcessHandle):
            p = pid._proc
            return p if p.alive else None
        return self._env(environment).processes.get(pid)

    async def abandon(self, environment: Environment) -> None:
        """Kill every process of ``environment`` silently and wait until they are gone.

        No LinkDied, no ProcessDied and no log line: the environment is being
        discarded as a whole (the test mode does this to a finished test's
        leftover processes, HOSTAPI.md correction 2). Processes spawned into it
        meanwhile are killed too. The environment stays usable afterwards.
        """
        environment.abandoned = True
        try:
            while environment.processes:
                procs = list(environment.processes.values())
                for p in procs:
                    p.links.clear()
                    p.monitors.clear()
                for p in procs:
                    p.terminate(Exit(ExitReason.KILLED, "abandoned"))
                for p in procs:
                    await p.wait()
        finally:
            environment.abandoned = False

    # -- bookkeeping ------------------------------------------------------------

    def _process_exited(self, proc: Process, exit: Exit) -> None:
        # Failures and kills are logged as lunatic logs them; an exit on
        # request (shutdown) or while the runtime closes is not.
        if (
            exit.reason in (ExitReason.NORMAL, ExitReason.SHUTDOWN)
            or self._closing
            or proc.environment.abandoned
        ):
            return
        if heard(logger, logging.WARNING):
            verb = "was killed" if exit.reason is ExitReason.KILLED else "failed"
            logger.warning(
                "Process %d %s, notifying: %d links (%s)", proc.id, verb, len(proc.links), exit
            )

    def _schedule(self, delay: float, target: Process | None, message: Message) -> Timer:
        if self._nursery is None:
            raise RuntimeError("the runtime is not running")
        return self.timers.schedule(self._nursery, delay, target, message)

    def _store_released(self) -> None:
        self.budget.release()

    def _register_supervisor(self, sup: _Stoppable) -> None:
        """A top-level supervisor: stopped in order before the runtime closes."""
        self._supervisors = [s for s in self._supervisors if s.alive]
        self._supervisors.append(sup)

    async def _stop_supervisors(self) -> None:
        """Stop the top-level supervisors, newest first, each tree in order."""
        while self._supervisors:
            sup = self._supervisors.pop()
            if sup.alive:
                await sup.stop()


class _Stoppable(Protocol):
    @property
    def alive(self) -> bool: ...

    async def stop(self, reason: str = ...) -> Exit: ...


def _inherit_output(
    stdout: CaptureStream | None, stderr: CaptureStream | None
) -> tuple[CaptureStream | None, CaptureStream | None]:
    """A child's streams when its parent's are captured (HOSTAPI.md section 3.7)."""
    out = stdout.next() if stdout is not None else None
    if stderr is None:
        return out, None
    if stderr is stdout:
        return out, out
    return out, stderr.next()


@asynccontextmanager
async def open_runtime(
    *,
    fuel_slice: int = 1_000_000,
    max_processes: int | None = None,
    environment_id: int = 1,
    default_config: ProcessConfig | None = None,
    gc_threshold: int | None = 100_000,
) -> AsyncIterator[Runtime]:
    """Open a runtime; leaving the block shuts every process down.

    * ``fuel_slice``: Wasm instructions a process runs before yielding to
      other tasks (about 1M by default: 1.25x slowdown at most, kill within
      about a millisecond);
    * ``max_processes``: how many Wasm processes may live at once; in any case
      no more than ``vm.max_map_count`` allows (a spawn past either limit
      fails with :class:`SpawnError` instead of aborting the host);
    * ``environment_id``: the id of the default environment;
    * ``default_config``: the config of Wasm processes spawned from Python
      without one (default: every permission, empty WASI context);
    * ``gc_threshold``: while runtimes are open, Python's cyclic garbage
      collector runs only after this many allocations (its first threshold;
      ``None`` leaves the collector alone). With many live processes, frequent
      collections halve the spawn rate.

    Example::

        async with supervisor.open_runtime() as rt:
            module = rt.load_module("worker.wat")
            worker = await rt.spawn(module, "main", [42])
            print(await worker.wait())
    """
    host = wasm_host(ffi.EngineSettings(fuel_slice=fuel_slice))
    runtime = Runtime(
        host,
        MappingBudget(max_processes),
        default_config or ProcessConfig.privileged(),
        environment_id,
    )
    # An exception from the body is re-raised as it is, not wrapped in the
    # nursery's exception group: processes themselves never raise.
    body_error: BaseException | None = None
    with raised_gc_threshold(gc_threshold):
        async with trio.open_nursery() as nursery:
            runtime._nursery = nursery
            try:
                yield runtime
            except BaseException as e:
                body_error = e
            finally:
                # Supervision trees stop in order; then everything else is cancelled.
                with trio.CancelScope(shield=True):
                    await runtime._stop_supervisors()
                runtime._closing = True
                nursery.cancel_scope.cancel()
                runtime._nursery = None
    if body_error is not None:
        try:
            raise body_error
        finally:
            body_error = None
