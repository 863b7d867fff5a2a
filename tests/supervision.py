"""Stub workers and an event recorder for the supervision tests.

The stubs recreate supervisor_SUITE's: a *normal worker* obeys commands
(``die`` fails, ``stop`` returns, ``shutdown`` exits with reason shutdown); a
*restart-failer* starts once and then fails every later start; a *sleeper*
ignores shutdown. Python stubs take their commands as bytes messages; the Wasm
worker reads the first byte (``d``: trap, ``s``: return).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import trio

import supervisor
from supervisor import (
    ChildSpec,
    Context,
    DataMessage,
    ExitReason,
    ProcessExit,
    PythonChild,
    SupervisorEvent,
    SupervisorFlags,
    WasmChild,
)

from .guests import guest

WASM_WORKER = guest(
    """
  ;; obey commands: "d..." traps, "s..." returns, anything else is ignored
  (func (export "worker")
    (loop $l
      (drop (call $recv))
      (i32.store8 (i32.const 0) (i32.const 0))
      (drop (call $read_data (i32.const 0) (i32.const 1)))
      (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 100)) (then unreachable))
      (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 115)) (then return))
      (br $l)))
  ;; catches link failures and ignores every message, a shutdown request too
  (func (export "stubborn")
    (call $die_when_link_dies (i32.const 0))
    (loop $l (drop (call $recv)) (br $l)))
  ;; the same, spinning in pure Wasm, once it has told $to
  (func (export "spinner") (param $to i64)
    (call $die_when_link_dies (i32.const 0))
    (call $report (local.get $to) (i64.const 1) (i64.const 0))
    (loop $l (br $l)))
  ;; catches link failures and answers lunatic-rs's shutdown request
  (func (export "polite")
    (local $tag i64)
    (call $die_when_link_dies (i32.const 0))
    (loop $l
      (drop (call $recv))
      (local.set $tag (call $get_tag))
      (br_if $l (i64.ne (i64.shr_u (local.get $tag) (i64.const 56)) (i64.const 32)))
      ;; reply () to the return address (node, id) with the reply tag
      (drop (call $read_data (i32.const 0) (i32.const 16)))
      (call $create_data (i64.and (local.get $tag) (i64.const 0x00FFFFFFFFFFFFFF)) (i64.const 0))
      (drop (call $send (i64.load (i32.const 8))))))
"""
)


def command(m: supervisor.Message) -> bytes:
    return m.data if isinstance(m, DataMessage) else b""


async def py_worker(ctx: Context, name: str = "", ready: bool = False) -> None:
    """The SUITE's normal worker."""
    if ready:
        ctx.started()
    while True:
        cmd = command(await ctx.receive())
        if cmd == b"die":
            raise RuntimeError(f"{name} crashed")
        if cmd == b"stop":
            return
        if cmd == b"shutdown":
            raise ProcessExit(ExitReason.SHUTDOWN, "asked to")


async def sleeper(ctx: Context, seconds: float = 10.0) -> None:
    """Ignores shutdown for ``seconds`` (it shields itself), then stops."""
    try:
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            await trio.sleep(seconds)


class StartCounter:
    """Makes Python workers that fail to start after their first ``ok`` starts
    (the SUITE's restart-failer), or while ``failing`` is set."""

    def __init__(self, ok: int = 1) -> None:
        self.ok = ok
        self.starts = 0
        self.failing = False

    async def __call__(self, ctx: Context, name: str = "") -> None:
        self.starts += 1
        if self.failing or self.starts > self.ok:
            raise RuntimeError(f"{name} cannot start (start {self.starts})")
        ctx.started()
        await py_worker(ctx, name)

    def spec(self, child_id: str, **kwargs: Any) -> ChildSpec:
        return ChildSpec(child_id, PythonChild(self, (child_id,), ready=True), **kwargs)


class Workers:
    """Makes worker specs of one kind (``python`` or ``wasm``)."""

    def __init__(self, kind: str, runtime: supervisor.Runtime) -> None:
        self.kind = kind
        self.runtime = runtime
        self.module = runtime.compile_module(WASM_WORKER) if kind == "wasm" else None

    def spec(
        self, child_id: str, entry: str = "worker", params: Sequence[int] = (), **kwargs: Any
    ) -> ChildSpec:
        if self.module is not None:
            return ChildSpec(child_id, WasmChild(self.module, entry, params), **kwargs)
        return ChildSpec(child_id, PythonChild(py_worker, (child_id,)), **kwargs)

    def die(self, pid: int) -> None:
        self.runtime.send(pid, b"die")

    def stop(self, pid: int) -> None:
        self.runtime.send(pid, b"stop")


class Trace:
    """Records a tree's events; tests wait on it instead of sleeping."""

    def __init__(self) -> None:
        self.events: list[SupervisorEvent] = []
        self._changed = trio.Event()

    def __call__(self, event: SupervisorEvent) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = trio.Event()

    async def until(self, predicate: Callable[[list[SupervisorEvent]], bool]) -> None:
        while not predicate(self.events):
            await self._changed.wait()

    async def until_count(self, event: str, child: str | None, n: int) -> None:
        await self.until(lambda es: self.count(event, child) >= n)

    def count(self, event: str, child: str | None = None) -> int:
        return sum(
            1 for e in self.events if e.event == event and (child is None or e.child == child)
        )

    def briefs(self, *kinds: str) -> list[tuple[str, str | None, str | None]]:
        """``(event, child, reason)`` of every event (of ``kinds``, if given)."""
        return [e.brief() for e in self.events if not kinds or e.event in kinds]

    def clear(self) -> None:
        self.events.clear()


async def start(
    runtime: supervisor.Runtime,
    flags: SupervisorFlags,
    children: Sequence[ChildSpec],
    name: str = "root",
) -> tuple[supervisor.Supervisor, Trace]:
    """Start a supervisor recording its tree's events."""
    trace = Trace()
    sup = await supervisor.start_supervisor(runtime, flags, children, name=name, events=trace)
    return sup, trace


async def pids(sup: supervisor.Supervisor) -> dict[str | None, int | None]:
    """Each child's process id (``None`` when not running)."""
    return {
        c.id: (c.process.id if c.process is not None else None) for c in await sup.which_children()
    }
