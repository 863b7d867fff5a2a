"""The dynamic API: supervisor_SUITE's child_adm matrix, hanging_restart_loop,
and simple_one_for_one."""

from __future__ import annotations

import pytest
import trio

import supervisor
from supervisor import (
    AlreadyPresent,
    AlreadyStarted,
    ChildSpec,
    NoProc,
    NotFound,
    PythonChild,
    Restarting,
    Running,
    SimpleOneForOne,
    StartFailed,
    SupervisorChild,
    SupervisorFlags,
    WasmChild,
)

from .guests import guest
from .supervision import StartCounter, Workers, pids, py_worker, start


@pytest.mark.parametrize("kind", ["python", "wasm"])
async def test_child_adm(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    w = Workers(kind, runtime)
    sup, trace = await start(runtime, SupervisorFlags(), [])
    spec = w.spec("child1")
    # start, then start again: already started (with the process)
    h = await sup.start_child(spec)
    with pytest.raises(AlreadyStarted) as started:
        await sup.start_child(spec)
    assert started.value.process == h
    assert await sup.count_children() == supervisor.ChildCounts(1, 1, 0, 1)
    # restart and delete refuse a running child
    with pytest.raises(Running):
        await sup.restart_child("child1")
    with pytest.raises(Running):
        await sup.delete_child("child1")
    # terminate: the spec stays; terminating again is fine
    await sup.terminate_child("child1")
    await sup.terminate_child("child1")
    assert (await pids(sup)) == {"child1": None}
    with pytest.raises(AlreadyPresent):
        await sup.start_child(spec)
    assert await sup.count_children() == supervisor.ChildCounts(1, 0, 0, 1)
    # restart it, terminate and delete it
    h2 = await sup.restart_child("child1")
    assert h2.alive and h2 != h
    await sup.terminate_child("child1")
    await sup.delete_child("child1")
    assert await sup.which_children() == []
    # unknown ids and pids
    for call in (sup.terminate_child, sup.delete_child, sup.restart_child, sup.get_childspec):
        with pytest.raises(NotFound):
            await call("nothere")
    with pytest.raises(NotFound):
        await sup.terminate_child(h2)
    # after the supervisor stops: noproc
    await sup.stop()
    with pytest.raises(NoProc):
        await sup.start_child(spec)
    assert trace.count("child_started", "child1") == 2


async def test_get_childspec_returns_the_spec_with_defaults(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    sup, _ = await start(runtime, SupervisorFlags(), [ChildSpec("c", PythonChild(py_worker))])
    spec = await sup.get_childspec("c")
    assert (spec.restart.value, spec.shutdown, spec.type, spec.significant) == (
        "permanent",
        5.0,
        "worker",
        False,
    )


async def test_which_children_lists_newest_first_with_types(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    sub = ChildSpec("sub", SupervisorChild(SupervisorFlags()))
    sup, _ = await start(runtime, SupervisorFlags(), [ChildSpec("w", PythonChild(py_worker)), sub])
    rows = await sup.which_children()
    assert [(r.id, r.type, r.restarting) for r in rows] == [
        ("sub", "supervisor", False),
        ("w", "worker", False),
    ]
    assert await sup.count_children() == supervisor.ChildCounts(2, 2, 1, 1)


async def test_start_child_that_fails_to_start_is_not_kept(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    failer = StartCounter(ok=0)
    sup, trace = await start(runtime, SupervisorFlags(), [])
    with pytest.raises(StartFailed, match="cannot start"):
        await sup.start_child(failer.spec("bad"))
    assert await sup.which_children() == []
    assert trace.briefs()[-1] == ("start_failed", "bad", None)


async def test_restart_child_that_fails_keeps_the_spec(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    failer = StartCounter(ok=1)
    sup, _ = await start(runtime, SupervisorFlags(), [failer.spec("c", restart="transient")])
    await sup.terminate_child("c")
    with pytest.raises(StartFailed):
        await sup.restart_child("c")
    assert await pids(sup) == {"c": None}


async def test_a_wasm_child_whose_instantiation_traps_fails_to_start(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(
        guest('(func $s unreachable) (start $s) (func (export "main"))')
    )
    sup, _ = await start(runtime, SupervisorFlags(), [])
    with pytest.raises(StartFailed, match="Failed to spawn process"):
        await sup.start_child(ChildSpec("w", WasmChild(module, "main")))


async def test_temporary_specs_are_not_kept_after_terminate_child(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    sup, _ = await start(
        runtime, SupervisorFlags(), [ChildSpec("t", PythonChild(py_worker), restart="temporary")]
    )
    await sup.terminate_child("t")
    assert await sup.which_children() == []


async def test_hanging_restart_loop_keeps_the_supervisor_responsive(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    # A child whose restarts keep failing slowly (2 s each): between attempts
    # the supervisor answers calls; terminate_child breaks the loop.
    attempts: list[float] = []

    async def slow_failer(ctx: supervisor.Context) -> None:
        attempts.append(trio.current_time())
        if len(attempts) > 1:
            await trio.sleep(2)
            raise RuntimeError("still broken")
        ctx.started()
        await py_worker(ctx)

    spec = ChildSpec("c", PythonChild(slow_failer, ready=True))
    w = Workers("python", runtime)
    sup, trace = await start(
        runtime, SupervisorFlags(intensity=100, period=1), [spec, w.spec("other")]
    )
    w.die((await pids(sup))["c"])  # type: ignore[arg-type]
    await trace.until_count("start_failed", "c", 2)
    rows = {r.id: r for r in await sup.which_children()}
    assert rows["c"].restarting and rows["c"].process is None
    with pytest.raises(AlreadyPresent):
        await sup.start_child(spec)
    with pytest.raises(Restarting):
        await sup.restart_child("c")
    with pytest.raises(Restarting):
        await sup.delete_child("c")
    await sup.terminate_child("c")
    n = len(attempts)
    await trio.sleep(10)
    assert len(attempts) == n  # the loop is broken
    assert not (await sup.which_children())[1].restarting
    await sup.delete_child("c")
    assert list(await pids(sup)) == ["other"]


async def test_supervisor_shutdown_works_in_the_middle_of_a_restart_loop(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    failer = StartCounter(ok=1)
    w = Workers("python", runtime)
    sup, trace = await start(runtime, SupervisorFlags(intensity=1000, period=1), [failer.spec("c")])
    w.die((await pids(sup))["c"])  # type: ignore[arg-type]
    await trace.until_count("start_failed", "c", 3)
    exit = await sup.stop()
    assert exit.detail == "shutdown"


# -- simple_one_for_one ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["python", "wasm"])
async def test_simple_one_for_one_starts_instances_with_extra_arguments(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    got: list[tuple[str, int]] = []

    async def instance(ctx: supervisor.Context, prefix: str, n: int) -> None:
        got.append((prefix, n))
        await py_worker(ctx)

    if kind == "python":
        template = ChildSpec("t", PythonChild(instance, ("x",)))
    else:
        module = runtime.compile_module(
            guest('(func (export "w") (param i32) (drop (call $recv)) unreachable)')
        )
        template = ChildSpec("t", WasmChild(module, "w"))
    sup, trace = await start(runtime, SupervisorFlags("simple_one_for_one"), [template])
    handles = [await sup.start_child([n]) for n in (1, 2, 3)]
    await trio.testing.wait_all_tasks_blocked()
    if kind == "python":
        assert got == [("x", 1), ("x", 2), ("x", 3)]
    assert await sup.count_children() == supervisor.ChildCounts(1, 3, 0, 3)
    assert [r.id for r in await sup.which_children()] == [None, None, None]
    # instances are restarted with their arguments; terminated by process
    runtime.send(handles[0].id, b"die")
    await trace.until_count("child_started", None, 4)
    await sup.terminate_child(handles[1])
    assert await sup.count_children() == supervisor.ChildCounts(1, 2, 0, 2)
    if kind == "python":
        assert got[-1] == ("x", 1)
    with pytest.raises(SimpleOneForOne):
        await sup.restart_child("t")
    with pytest.raises(SimpleOneForOne):
        await sup.delete_child("t")
    with pytest.raises(NotFound):
        await sup.terminate_child(handles[1])


async def test_simple_one_for_one_stops_all_instances_concurrently(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    async def slow_stop(ctx: supervisor.Context) -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(1)

    template = ChildSpec("t", PythonChild(slow_stop), shutdown=5)
    sup, _ = await start(runtime, SupervisorFlags("simple_one_for_one"), [template])
    for _ in range(5):
        await sup.start_child([])
    t0 = trio.current_time()
    await sup.stop()
    # one shared second, not five
    assert trio.current_time() - t0 == pytest.approx(1.0)


async def test_a_bad_start_child_spec_is_refused_and_nothing_is_lost(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    sup, _ = await start(runtime, SupervisorFlags(), [ChildSpec("a", PythonChild(py_worker))])
    with pytest.raises(TypeError, match="ChildSpec"):
        await sup.start_child({"id": "x"})  # type: ignore[arg-type]
    sig = ChildSpec("s", PythonChild(py_worker), restart="transient", significant=True)
    with pytest.raises(supervisor.ChildSpecError, match="auto_shutdown"):
        await sup.start_child(sig)
    assert list(await pids(sup)) == ["a"]
    assert sup.alive
