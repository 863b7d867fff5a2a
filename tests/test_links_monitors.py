"""Death and notifications: the table of HOSTAPI.md section 1.8, links (1.9),
monitors (1.10) and their ordering guarantees (1.11)."""

from __future__ import annotations

import pytest
import trio

import supervisor
from supervisor import Context, ExitReason, LinkDied, ProcessDied

from .guests import forever, guest, run_python, value_of

WORKER = guest(
    """
  ;; the process whose death is observed: waits for "go" (any message), then
  ;; returns, traps or waits forever (to be killed)
  (func (export "normal") (drop (call $recv)))
  (func (export "crash") (drop (call $recv)) unreachable)
  (func (export "forever") (drop (call $recv)) (call $sleep_ms (i64.const -1)))

  ;; the observer: links to (or monitors) $target, reports "ready" (tag 1),
  ;; then reports receive's code, get_tag and get_process_id (tag 2) for each
  ;; message, and exists(target) at that moment (tag 3)
  (func (export "peer") (param $to i64) (param $target i64) (param $die i32)
                        (param $tag i64) (param $how i32)
    (local $code i64) (local $t i64) (local $pid i64) (local $alive i64)
    (call $die_when_link_dies (local.get $die))
    (if (i32.eq (local.get $how) (i32.const 0))
      (then (call $link (local.get $tag) (local.get $target)))
      (else (call $monitor (local.get $target))))
    (call $report (local.get $to) (i64.const 1) (i64.const 0))
    (loop $forever
      (local.set $code (i64.extend_i32_u (call $recv)))
      (local.set $t (call $get_tag))
      (local.set $pid (call $get_process_id))
      (local.set $alive (i64.extend_i32_u (call $exists (local.get $target))))
      (call $report (local.get $to) (i64.const 2) (local.get $code))
      (call $report (local.get $to) (i64.const 2) (local.get $t))
      (call $report (local.get $to) (i64.const 2) (local.get $pid))
      (call $report (local.get $to) (i64.const 3) (local.get $alive))
      (br $forever)))
"""
)

LINK, MONITOR = 0, 1


async def _observe(
    runtime: supervisor.Runtime, ending: str, *, die: bool, how: int, tag: int = 33
) -> tuple[list[int], supervisor.Exit, supervisor.Exit]:
    """End a worker as ``ending`` says, with a Wasm peer linked to or monitoring
    it; return what the peer received, the worker's exit and the peer's exit
    (or ``NORMAL`` while it still runs)."""
    module = runtime.compile_module(WORKER)

    async def test(ctx: Context) -> tuple[list[int], supervisor.Exit, supervisor.Exit]:
        worker = await ctx.spawn(
            module,
            "crash" if ending == "failure" else "normal" if ending == "normal" else "forever",
        )
        peer = await ctx.spawn(module, "peer", [ctx.id, worker.id, int(die), tag, how])
        await ctx.receive(1)
        if ending == "killed":
            ctx.kill(worker.id)
        else:
            ctx.send(worker.id, b"go")
        worker_exit = await worker.wait()
        got: list[int] = []
        with trio.move_on_after(0.5):
            got += [value_of(await ctx.receive(2)) for _ in range(3)]
            got.append(value_of(await ctx.receive(3)))
        peer_exit = peer.exit or supervisor.Exit(ExitReason.NORMAL, "still running")
        return got, worker_exit, peer_exit

    result = await run_python(runtime, test)
    assert isinstance(result, tuple)
    return result


# -- the table of section 1.8, row by row ----------------------------------------


@pytest.mark.parametrize("die", [True, False])
async def test_normal_exit_removes_links_silently(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, die: bool
) -> None:
    got, worker, peer = await _observe(runtime, "normal", die=die, how=LINK)
    assert worker.reason is ExitReason.NORMAL
    assert got == []
    assert peer.detail == "still running"


@pytest.mark.parametrize("ending", ["failure", "killed"])
async def test_abnormal_exit_kills_linked_peers_that_do_not_catch(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, ending: str
) -> None:
    got, worker, peer = await _observe(runtime, ending, die=True, how=LINK)
    assert worker.reason is (ExitReason.FAILURE if ending == "failure" else ExitReason.KILLED)
    assert got == []
    assert peer.reason is worker.reason
    assert peer.detail.startswith("linked process 2 exited")


@pytest.mark.parametrize("ending", ["failure", "killed"])
async def test_abnormal_exit_is_a_link_died_message_for_peers_that_catch(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, ending: str
) -> None:
    got, _, peer = await _observe(runtime, ending, die=False, how=LINK, tag=33)
    # receive returns 1, the link's tag, no process id; the worker is already
    # gone from the environment (removal before notification)
    assert got == [1, 33, 0, 0]
    assert peer.detail == "still running"


@pytest.mark.parametrize("die", [True, False])
@pytest.mark.parametrize("ending", ["normal", "failure", "killed"])
async def test_monitors_get_process_died_for_every_ending(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, ending: str, die: bool
) -> None:
    got, _, peer = await _observe(runtime, ending, die=die, how=MONITOR)
    assert got == [2, 0, 2, 0]  # code 2, untagged, the dead process's id, gone
    assert peer.detail == "still running"


async def test_link_to_a_missing_process_is_no_process(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(WORKER)

    async def test(ctx: Context) -> tuple[list[int], supervisor.Exit]:
        catcher = await ctx.spawn(module, "peer", [ctx.id, 999, 0, 8, LINK])
        await ctx.receive(1)
        got = [value_of(await ctx.receive(2)) for _ in range(3)]
        dier = await ctx.spawn(module, "peer", [ctx.id, 999, 1, 8, LINK])
        exit = await dier.wait()
        catcher.kill()
        return got, exit

    got, exit = await run_python(runtime, test)
    assert got == [1, 8, 0]
    assert exit.reason is ExitReason.FAILURE
    assert "no process 999" in exit.detail


# -- cascades and link bookkeeping -------------------------------------------------


async def test_link_death_cascades_without_echo(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    # A - B - C linked in a chain (Python processes); A fails: B dies, which
    # kills C; nobody sends anything back to A.
    events: list[str] = []

    async def member(ctx: Context, link_to: int | None, name: str) -> None:
        if link_to is not None:
            ctx.link(link_to)
        try:
            await trio.sleep_forever()
        finally:
            events.append(name)

    async def failing(ctx: Context) -> None:
        await trio.sleep(1)
        raise RuntimeError("boom")

    a = await runtime.spawn_python(failing)
    b = await runtime.spawn_python(member, a.id, "b")
    c = await runtime.spawn_python(member, b.id, "c")
    assert (await c.wait()).reason is ExitReason.FAILURE
    assert (await b.wait()).detail == "linked process 1 exited: failure: RuntimeError: boom"
    assert (await c.wait()).detail.startswith("linked process 2 exited: failure")
    assert sorted(events) == ["b", "c"]
    assert a.info()["links"] == {}


async def test_unlink_removes_both_sides(runtime: supervisor.Runtime) -> None:
    async def linker(ctx: Context, other: int) -> None:
        ctx.link(other, tag=4)
        await trio.lowlevel.checkpoint()
        assert runtime.process(other).info()["links"] == {ctx.id: 4}  # type: ignore[union-attr]
        ctx.unlink(other)
        assert runtime.process(other).info()["links"] == {}  # type: ignore[union-attr]
        ctx.kill(other)

    s = await runtime.spawn_python(forever)
    h = await runtime.spawn_python(linker, s.id)
    assert (await s.wait()).reason is ExitReason.KILLED
    assert (await h.wait()).normal  # unlinked: the kill did not come back


async def test_linking_twice_replaces_the_tag_and_self_links_are_harmless(
    runtime: supervisor.Runtime,
) -> None:
    async def proc(ctx: Context) -> dict[int, int]:
        ctx.link(ctx.id, tag=1)
        other = await ctx.spawn_python(forever)
        ctx.link(other.id, tag=2)
        ctx.link(other.id, tag=3)
        links = dict(ctx._proc.links)
        other.kill()
        return {pid: tag for pid, (_, tag) in links.items()}

    ctx_links = await run_python_catching(runtime, proc)
    assert ctx_links == {1: 1, 2: 3}


async def run_python_catching(runtime: supervisor.Runtime, fn: object) -> object:
    async def wrapper(ctx: Context) -> object:
        ctx.die_when_link_dies(False)
        return await fn(ctx)  # type: ignore[operator]

    return await run_python(runtime, wrapper)


async def test_stop_monitoring_means_no_process_died(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    async def proc(ctx: Context) -> int:
        other = await ctx.spawn_python(forever)
        ctx.monitor(other.id)
        ctx.monitor(other.id)  # one entry however often
        ctx.stop_monitoring(other.id)
        other.kill()
        await other.wait()
        await trio.sleep(1)
        return ctx.pending()

    assert await run_python(runtime, proc) == 0


async def test_monitoring_twice_gives_one_process_died(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    async def proc(ctx: Context) -> list[object]:
        other = await ctx.spawn_python(forever)
        ctx.monitor(other.id)
        ctx.monitor(other.id)
        other.kill()
        await other.wait()
        await trio.sleep(1)
        return [await ctx.receive() for _ in range(ctx.pending())]

    got = await run_python(runtime, proc)
    assert isinstance(got, list) and len(got) == 1
    assert isinstance(got[0], ProcessDied) and got[0].pid == 2


async def test_link_and_monitor_of_a_dying_process_are_atomic(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    # The target is killed (its cancel is pending) but has not unwound yet:
    # linking and monitoring now must still be told about its death (6.7).
    async def proc(ctx: Context) -> list[object]:
        ctx.die_when_link_dies(False)
        target = await ctx.spawn_python(forever)
        await trio.testing.wait_all_tasks_blocked()
        target.kill()
        ctx.link(target.id, tag=9)
        ctx.monitor(target.id)
        await target.wait()
        return [await ctx.receive(), await ctx.receive()]

    got = await run_python(runtime, proc)
    assert isinstance(got, list)
    kinds = sorted(type(m).__name__ for m in got)
    assert kinds == ["LinkDied", "ProcessDied"]


async def test_exit_records_reach_python_peers(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(WORKER)

    async def proc(ctx: Context) -> LinkDied:
        ctx.die_when_link_dies(False)
        worker = await ctx.spawn(module, "crash", link=12)
        ctx.send(worker.id, b"go")
        m = await ctx.receive()
        assert isinstance(m, LinkDied)
        return m

    m = await run_python(runtime, proc)
    assert isinstance(m, LinkDied)
    assert m.tag == 12 and m.pid == 2
    assert isinstance(m.exit, supervisor.Exit)
    assert m.exit.reason is ExitReason.FAILURE
    assert "unreachable" in m.exit.detail


async def test_python_and_wasm_processes_link_both_ways(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(WORKER)

    async def crasher(ctx: Context) -> None:
        await trio.sleep(1)
        raise ValueError("python crash")

    # A Wasm process linked to a failing Python process dies with it...
    wasm = await runtime.spawn(module, "forever")
    py = await runtime.spawn_python(crasher)
    runtime.link(wasm, py)
    exit = await wasm.wait()
    assert exit.reason is ExitReason.FAILURE
    assert "ValueError: python crash" in exit.detail

    # ... and a Python process linked to a failing Wasm process dies with it.
    wasm = await runtime.spawn(module, "crash")
    py = await runtime.spawn_python(forever)
    runtime.link(py, wasm)
    runtime.send(wasm, b"go")
    exit = await py.wait()
    assert exit.reason is ExitReason.FAILURE
    assert "unreachable" in exit.detail
