"""Stopping children and supervisors: supervisor_SUITE's sup_stop_* cases."""

from __future__ import annotations

import time

import pytest
import trio

import supervisor
from supervisor import (
    ChildSpec,
    Context,
    ExitReason,
    PythonChild,
    SupervisorChild,
    SupervisorFlags,
)

from .supervision import Trace, Workers, pids, py_worker, sleeper, start


async def test_sup_start_normal_stops_with_reason_shutdown(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    sup, trace = await start(runtime, SupervisorFlags(), [])
    exit = await sup.stop()
    assert (exit.reason, exit.detail) == (ExitReason.SHUTDOWN, "shutdown")
    assert trace.briefs() == [
        ("supervisor_started", None, None),
        ("supervisor_stopped", None, "shutdown"),
    ]


@pytest.mark.parametrize("kind", ["python", "wasm"])
async def test_sup_stop_infinity_for_workers_and_supervisors(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    w = Workers(kind, runtime)
    sub = ChildSpec(
        "sub", SupervisorChild(SupervisorFlags(), [w.spec("inner")]), shutdown="infinity"
    )
    sup, trace = await start(runtime, SupervisorFlags(), [w.spec("c", shutdown="infinity"), sub])
    await sup.stop()
    assert trace.briefs("child_exited") == [
        ("child_exited", "inner", "shutdown"),
        ("child_exited", "sub", "shutdown"),
        ("child_exited", "c", "shutdown"),
    ]


async def test_sup_stop_timeout_a_python_child_ignoring_shutdown_is_reported_and_awaited(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    sup, trace = await start(
        runtime,
        SupervisorFlags(),
        [
            ChildSpec("good", PythonChild(py_worker, ("good",)), shutdown=1),
            ChildSpec("sleepy", PythonChild(sleeper, (3,)), shutdown=1),
        ],
    )
    start_t = trio.current_time()
    await sup.stop()
    assert trio.current_time() - start_t == pytest.approx(3.0)
    assert trace.briefs()[-4:] == [
        ("shutdown_timeout", "sleepy", None),
        ("child_exited", "sleepy", "shutdown"),
        ("child_exited", "good", "shutdown"),
        ("supervisor_stopped", None, "shutdown"),
    ]


async def test_sup_stop_timeout_a_wasm_child_ignoring_shutdown_is_killed(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    w = Workers("wasm", runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags(),
        [w.spec("good", shutdown=1), w.spec("stubborn", entry="stubborn", shutdown=1)],
    )
    start_t = trio.current_time()
    await sup.stop()
    assert trio.current_time() - start_t == pytest.approx(1.0)
    exits = [(e.child, e.reason, e.detail) for e in trace.events if e.event == "child_exited"]
    assert exits == [
        ("stubborn", "killed", "shutdown timeout (1.0 s)"),
        ("good", "shutdown", "shutdown"),
    ]


async def test_sup_stop_timeout_kills_a_wasm_child_spinning_in_pure_wasm(
    runtime: supervisor.Runtime,
) -> None:
    # real clock: a spinning guest keeps Trio busy
    w = Workers("wasm", runtime)

    async def told(ctx: Context) -> None:
        await ctx.receive()

    spinning = await runtime.spawn_python(told)
    spec = w.spec("spinner", entry="spinner", params=[spinning.id], shutdown=0.05)
    sup, trace = await start(runtime, SupervisorFlags(), [spec])
    await spinning.wait()  # it catches link failures and spins
    t0 = time.perf_counter()
    await sup.stop()
    assert 0.05 <= time.perf_counter() - t0 < 1.0
    assert trace.briefs("child_exited") == [("child_exited", "spinner", "killed")]


async def test_a_wasm_child_that_catches_link_deaths_gets_lunatic_rs_shutdown_request(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    # the AbstractProcess protocol: it replies () and returns, in time
    w = Workers("wasm", runtime)
    sup, trace = await start(
        runtime, SupervisorFlags(), [w.spec("polite", entry="polite", shutdown=5)]
    )
    start_t = trio.current_time()
    await sup.stop()
    assert trio.current_time() - start_t < 0.001
    assert trace.briefs("child_exited") == [("child_exited", "polite", "normal")]


@pytest.mark.parametrize("kind", ["python", "wasm"])
async def test_sup_stop_brutal_kill_reports_killed(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    w = Workers(kind, runtime)
    sup, trace = await start(runtime, SupervisorFlags(), [w.spec("c", shutdown="brutal_kill")])
    await sup.stop()
    assert trace.briefs("child_exited") == [("child_exited", "c", "killed")]


RACE = [
    # restart, command, reason it exits with
    ("permanent", b"stop", "normal"),
    ("transient", b"stop", "normal"),
    ("temporary", b"stop", "normal"),
    ("permanent", b"shutdown", "shutdown"),
    ("transient", b"shutdown", "shutdown"),
    ("temporary", b"shutdown", "shutdown"),
    ("permanent", b"die", "failure"),
    ("transient", b"die", "failure"),
    ("temporary", b"die", "failure"),
]


async def test_sup_stop_race_children_exiting_on_their_own_during_shutdown_keep_their_reason(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    # The newest child, when stopped, tells every other child to exit on its
    # own; they do so while the supervisor is still stopping children.
    async def trigger(ctx: supervisor.Context, targets: list[tuple[int, bytes]]) -> None:
        try:
            await trio.sleep_forever()
        finally:
            for pid, cmd in targets:
                ctx.send(pid, cmd)

    targets: list[tuple[int, bytes]] = []
    specs = [
        ChildSpec(f"c{i}", PythonChild(py_worker, (f"c{i}",)), restart=restart)
        for i, (restart, _, _) in enumerate(RACE)
    ]
    specs.append(ChildSpec("trigger", PythonChild(trigger, (targets,))))
    sup, trace = await start(runtime, SupervisorFlags(intensity=0), specs)
    ids = await pids(sup)
    targets += [(ids[f"c{i}"], cmd) for i, (_, cmd, _) in enumerate(RACE)]  # type: ignore[misc]
    exit = await sup.stop()
    assert exit.reason is ExitReason.SHUTDOWN and exit.detail == "shutdown"
    assert trace.count("restart") == 0
    exits = {e.child: e.reason for e in trace.events if e.event == "child_exited"}
    assert exits == {"trigger": "shutdown"} | {
        f"c{i}": reason for i, (_, _, reason) in enumerate(RACE)
    }


async def test_cancelling_run_supervisor_stops_the_tree_in_order(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    trace = Trace()
    specs = [ChildSpec(n, PythonChild(py_worker, (n,))) for n in ("a", "b", "c")]
    async with trio.open_nursery() as nursery:
        sup = await nursery.start(
            supervisor.run_supervisor, runtime, SupervisorFlags(), specs, "root", trace
        )
        assert sup.alive
        nursery.cancel_scope.cancel()
    assert [c for _, c, _ in trace.briefs("child_exited")] == ["c", "b", "a"]
    assert sup.exit is not None and sup.exit.reason is ExitReason.SHUTDOWN


async def test_closing_the_runtime_stops_supervision_trees_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    trace = Trace()
    async with supervisor.open_runtime() as rt:
        sub = ChildSpec(
            "sub",
            SupervisorChild(
                SupervisorFlags(),
                [ChildSpec("s1", PythonChild(py_worker)), ChildSpec("s2", PythonChild(py_worker))],
            ),
        )
        await supervisor.start_supervisor(
            rt, SupervisorFlags(), [ChildSpec("w", PythonChild(py_worker)), sub], events=trace
        )
    assert [(e.supervisor, e.child) for e in trace.events if e.event == "child_exited"] == [
        ("root/sub", "s2"),
        ("root/sub", "s1"),
        ("root", "sub"),
        ("root", "w"),
    ]


async def test_open_supervisor_stops_the_tree_when_the_block_ends(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    trace = Trace()
    async with supervisor.open_supervisor(
        runtime, SupervisorFlags(), [ChildSpec("a", PythonChild(py_worker))], events=trace
    ) as sup:
        assert list(await pids(sup)) == ["a"]
    assert trace.briefs()[-2:] == [
        ("child_exited", "a", "shutdown"),
        ("supervisor_stopped", None, "shutdown"),
    ]
    with pytest.raises(supervisor.NoProc):
        await sup.which_children()


async def test_a_supervisor_whose_parent_fails_stops_its_children_and_exits(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    # a Python process starts a supervisor linked to it, then crashes
    trace = Trace()

    async def parent(ctx: supervisor.Context) -> None:
        child = ChildSpec("w", PythonChild(py_worker))
        await ctx.start_supervisor(SupervisorFlags(), [child], events=trace)
        raise RuntimeError("parent crashed")

    await (await runtime.spawn_python(parent)).wait()
    await trace.until_count("supervisor_stopped", None, 1)
    assert trace.briefs()[-2:] == [
        ("child_exited", "w", "shutdown"),
        ("supervisor_stopped", None, "failure"),
    ]
