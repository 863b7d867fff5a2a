"""Kill (sleeping, waiting and busy guests) and the process tree (DESIGN.md)."""

from __future__ import annotations

import time

import pytest
import trio

import supervisor
from hostapi import ffi
from supervisor import Context, Exit, ExitReason

from .guests import data_string, guest, run_python, value_of

GUEST = guest(
    data_string(0, b"sleeper")
    + """
  (func (export "sleeper") (call $sleep_ms (i64.const -1)))
  (func (export "waiter") (drop (call $recv)))
  (func (export "spin") (loop $l (br $l)))
  ;; tell $to, then spin
  (func (export "spinning") (param $to i64)
    (call $report (local.get $to) (i64.const 1) (i64.const 0))
    (loop $l (br $l)))
  ;; spawn an unlinked and a linked sleeper, report both ids, then sleep
  (func (export "parent") (param $to i64)
    (call $report (local.get $to) (i64.const 1)
      (call $spawn_self (i64.const 0) (i32.const 0) (i32.const 7) (i32.const 0) (i32.const 0)))
    (call $report (local.get $to) (i64.const 1)
      (call $spawn_self (i64.const 3) (i32.const 0) (i32.const 7) (i32.const 0) (i32.const 0)))
    (call $sleep_ms (i64.const -1)))
"""
)


@pytest.mark.parametrize("entry", ["sleeper", "waiter"])
async def test_kill_stops_a_guest_blocked_in_a_host_call(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, entry: str
) -> None:
    module = runtime.compile_module(GUEST)
    h = await runtime.spawn(module, entry)
    await trio.sleep(1)
    assert h.alive
    assert runtime.kill(h.id)
    exit = await h.wait()
    assert exit.reason is ExitReason.KILLED
    assert not runtime.kill(h.id)  # gone: nothing to kill


async def test_kill_stops_a_guest_spinning_in_pure_wasm(runtime: supervisor.Runtime) -> None:
    # Real clock: a spinning guest keeps Trio busy through its fuel yields.
    module = runtime.compile_module(GUEST)

    async def test(ctx: Context) -> tuple[Exit, float]:
        h = await ctx.spawn(module, "spinning", [ctx.id])
        await ctx.receive(1)  # it is in its loop
        assert h.alive
        start = time.perf_counter()
        h.kill()
        exit = await h.wait()
        return exit, time.perf_counter() - start

    exit, took = await run_python(runtime, test)
    assert exit.reason is ExitReason.KILLED
    assert took < 0.5


async def test_a_spinning_guest_does_not_starve_other_tasks(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(GUEST)
    spinners = [await runtime.spawn(module, "spin") for _ in range(2)]
    gaps = []
    last = time.perf_counter()
    for _ in range(20):
        await trio.sleep(0.001)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    for s in spinners:
        s.kill()
    assert max(gaps) < 0.1


async def test_kill_stops_only_the_process_unlinked_children_live_on(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(GUEST)

    async def test(ctx: Context) -> tuple[supervisor.Exit, bool, supervisor.Exit]:
        parent = await ctx.spawn(module, "parent", [ctx.id])
        unlinked = value_of(await ctx.receive(1))
        linked = value_of(await ctx.receive(1))
        ctx.monitor(linked)
        parent.kill()
        exit = await parent.wait()
        died = await ctx.receive()
        assert isinstance(died, supervisor.ProcessDied) and died.pid == linked
        assert isinstance(died.exit, supervisor.Exit)
        await trio.sleep(10)
        return exit, ctx.exists(unlinked), died.exit

    exit, unlinked_alive, linked_exit = await run_python(runtime, test)
    assert exit.reason is ExitReason.KILLED
    assert unlinked_alive
    assert linked_exit.reason is ExitReason.KILLED
    assert linked_exit.detail.startswith("linked process 2 exited: killed")


async def test_runtime_shutdown_kills_everything_and_leaks_nothing() -> None:
    exits: list[supervisor.Exit] = []
    root = trio.lowlevel.current_root_task()
    tasks_before = _count_tasks(root)
    async with supervisor.open_runtime() as rt:
        module = rt.compile_module(GUEST)

        async def test(ctx: Context) -> None:
            await ctx.spawn(module, "parent", [ctx.id])
            await ctx.receive(1)
            await ctx.receive(1)
            await trio.sleep_forever()

        handles = [await rt.spawn_python(test)]
        await trio.testing.wait_all_tasks_blocked()
        handles += rt.processes()
        assert len(rt.processes()) == 4
        assert rt.budget.live == 3
    for h in handles:
        assert h.exit is not None
        exits.append(h.exit)
    assert {e.reason for e in exits} == {ExitReason.KILLED}
    assert rt.budget.live == 0
    assert rt.processes() == []
    assert ffi.live_pending() == 0
    # no task of the runtime survives its block
    assert _count_tasks(root) == tasks_before


def _count_tasks(task: trio.lowlevel.Task | None) -> int:
    assert task is not None
    return 1 + sum(_count_tasks(t) for n in task.child_nurseries for t in n.child_tasks)


async def test_killing_the_parent_during_a_spawn_leaves_no_child(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    # The child's start function blocks; the parent is killed meanwhile: the
    # child is never registered and its store is released (lunatic's 6.8).
    child_module = runtime.compile_module(
        guest('(func $s (call $sleep_ms (i64.const 5000))) (start $s) (func (export "child"))')
    )

    async def parent(ctx: Context) -> None:
        await ctx.spawn(child_module, "child")

    h = await runtime.spawn_python(parent)
    await trio.sleep(1)
    assert runtime.budget.live == 1
    h.kill()
    assert (await h.wait()).reason is ExitReason.KILLED
    assert runtime.budget.live == 0
    assert [p.id for p in runtime.processes()] == []
    await trio.sleep(10)
    assert runtime.processes() == []


async def test_an_internal_error_ends_only_that_process(
    runtime: supervisor.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = runtime.compile_module(GUEST)
    bystander = await runtime.spawn(module, "sleeper")
    await trio.testing.wait_all_tasks_blocked()

    def broken(*args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(ffi.Store, "call", broken)
    h = await runtime.spawn(module, "sleeper")
    exit = await h.wait()
    assert exit.reason is ExitReason.FAILURE
    assert exit.detail == "internal error: RuntimeError: bug"
    assert bystander.alive


async def test_the_gc_threshold_is_raised_only_while_runtimes_are_open() -> None:
    import gc

    before = gc.get_threshold()
    async with supervisor.open_runtime(gc_threshold=123_456):
        assert gc.get_threshold()[0] == max(before[0], 123_456)
        async with supervisor.open_runtime():
            assert gc.get_threshold()[0] == max(before[0], 123_456)
        assert gc.get_threshold()[0] == max(before[0], 123_456)
    assert gc.get_threshold() == before
    async with supervisor.open_runtime(gc_threshold=None):
        assert gc.get_threshold() == before
