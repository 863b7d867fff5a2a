"""supervisor_SUITE's restart cases: restart types, intensity, the strategies
with their escalation, bystanders, ordering and a tree."""

from __future__ import annotations

import pytest
import trio

import supervisor
from supervisor import ChildSpec, ExitReason, PythonChild, SupervisorChild, SupervisorFlags

from .supervision import StartCounter, Trace, Workers, pids, py_worker, start

KINDS = ["python", "wasm"]


async def _exit_child(w: Workers, pid: int, how: str) -> None:
    w.runtime.send(pid, {"normal": b"stop", "shutdown": b"shutdown", "abnormal": b"die"}[how])


# -- restart types x exit reasons (permanent_normal ... temporary_abnormal) -------------

CASES = [
    # restart, how, restarted, specs left
    ("permanent", "normal", True, 1),
    ("transient", "normal", False, 1),
    ("temporary", "normal", False, 0),
    ("permanent", "shutdown", True, 1),
    ("transient", "shutdown", False, 1),
    ("temporary", "shutdown", False, 0),
    ("permanent", "abnormal", True, 1),
    ("transient", "abnormal", True, 1),
    ("temporary", "abnormal", False, 0),
]


# A Wasm guest cannot exit with reason shutdown (lunatic has no such reason).
@pytest.mark.parametrize(
    ("kind", "restart", "how", "restarted", "specs"),
    [
        pytest.param(k, *case, id=f"{k}-{case[0]}_{case[1]}")  # the SUITE's case names
        for case in CASES
        for k in KINDS
        if not (k == "wasm" and case[1] == "shutdown")
    ],
)
async def test_restart_type_decides_what_an_exit_does(
    runtime: supervisor.Runtime,
    autojump_clock: trio.testing.MockClock,
    kind: str,
    restart: str,
    how: str,
    restarted: bool,
    specs: int,
) -> None:
    w = Workers(kind, runtime)
    sup, trace = await start(runtime, SupervisorFlags(), [w.spec("c", restart=restart)])
    pid = (await pids(sup))["c"]
    assert pid is not None
    await _exit_child(w, pid, how)
    reason = {"normal": "normal", "shutdown": "shutdown", "abnormal": "failure"}[how]
    await trace.until_count("child_exited", "c", 1)
    if restarted:
        await trace.until_count("child_started", "c", 2)
    counts = await sup.count_children()
    assert (counts.specs, counts.active) == (specs, 1 if restarted else 0)
    expected: list[tuple[str, str | None, str | None]] = [("child_exited", "c", reason)]
    if restarted:
        expected += [("restart", "c", reason), ("child_started", "c", None)]
    assert trace.briefs()[2:] == expected
    assert sup.alive


async def test_multiple_restarts_spaced_beyond_the_period_are_allowed(
    runtime: supervisor.Runtime,
    autojump_clock: trio.testing.MockClock,
) -> None:
    # intensity 1, period 1: four crashes 2.1 s apart never exceed it
    w = Workers("python", runtime)
    sup, trace = await start(runtime, SupervisorFlags(intensity=1, period=1), [w.spec("c")])
    for n in range(4):
        pid = (await pids(sup))["c"]
        assert pid is not None
        w.die(pid)
        await trace.until_count("child_started", "c", n + 2)
        await trio.sleep(2.1)
    assert sup.alive
    assert trace.count("intensity_exceeded") == 0


# -- one_for_one -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_one_for_one_restarts_only_the_failed_child(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    w = Workers(kind, runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags("one_for_one", intensity=2, period=3600),
        [w.spec("c1"), w.spec("c2")],
    )
    before = await pids(sup)
    w.die(before["c1"])  # type: ignore[arg-type]
    await trace.until_count("child_started", "c1", 2)
    after = await pids(sup)
    assert after["c2"] == before["c2"]
    assert after["c1"] != before["c1"]
    # a third restart within the period exceeds intensity 2: the supervisor
    # stops c2 and exits with reason shutdown
    w.die(after["c1"])  # type: ignore[arg-type]
    await trace.until_count("child_started", "c1", 3)
    w.die((await pids(sup))["c1"])  # type: ignore[arg-type]
    exit = await sup.wait()
    assert (exit.reason, exit.detail) == (ExitReason.SHUTDOWN, "reached_max_restart_intensity")
    assert trace.briefs()[-4:] == [
        ("child_exited", "c1", "failure"),
        ("intensity_exceeded", "c1", None),
        ("child_exited", "c2", "shutdown"),
        ("supervisor_stopped", None, "shutdown"),
    ]


async def test_one_for_one_escalation_a_child_that_cannot_restart_stops_the_supervisor(
    runtime: supervisor.Runtime,
    autojump_clock: trio.testing.MockClock,
) -> None:
    failer = StartCounter(ok=1)
    w = Workers("python", runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags("one_for_one", intensity=1, period=3600),
        [failer.spec("c1"), w.spec("c2")],
    )
    w.die((await pids(sup))["c1"])  # type: ignore[arg-type]
    exit = await sup.wait()
    assert exit.detail == "reached_max_restart_intensity"
    assert trace.briefs("restart", "start_failed", "intensity_exceeded", "child_exited") == [
        ("child_exited", "c1", "failure"),
        ("restart", "c1", "failure"),
        ("start_failed", "c1", None),
        ("intensity_exceeded", "c1", None),
        ("child_exited", "c2", "shutdown"),
    ]


# -- one_for_all -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_one_for_all_stops_and_restarts_every_child(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    w = Workers(kind, runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags("one_for_all", intensity=2, period=3600),
        [w.spec("c1"), w.spec("c2")],
    )
    before = await pids(sup)
    trace.clear()
    w.die(before["c1"])  # type: ignore[arg-type]
    await trace.until_count("child_started", "c2", 1)
    after = await pids(sup)
    assert set(after.values()).isdisjoint(before.values())
    assert trace.briefs() == [
        ("child_exited", "c1", "failure"),
        ("restart", "c1", "failure"),
        ("child_exited", "c2", "shutdown"),
        ("child_started", "c1", None),
        ("child_started", "c2", None),
    ]


async def test_one_for_all_escalation(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    failer = StartCounter(ok=1)
    w = Workers("python", runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags("one_for_all", intensity=1, period=3600),
        [w.spec("c1"), failer.spec("c2")],
    )
    w.die((await pids(sup))["c1"])  # type: ignore[arg-type]
    exit = await sup.wait()
    assert exit.detail == "reached_max_restart_intensity"
    assert trace.count("intensity_exceeded") == 1
    assert trace.briefs()[-2:] == [
        ("child_exited", "c1", "shutdown"),
        ("supervisor_stopped", None, "shutdown"),
    ]


async def test_one_for_all_other_child_fails_restart_restarts_everything_again(
    runtime: supervisor.Runtime,
    autojump_clock: trio.testing.MockClock,
) -> None:
    # c2 fails to start once: the retry stops the restarted c1 and starts all again
    failer = StartCounter(ok=1)
    w = Workers("python", runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags("one_for_all", intensity=3, period=3600),
        [w.spec("c1"), failer.spec("c2")],
    )
    trace.clear()
    failer.failing = True  # the first restart of c2 fails
    w.die((await pids(sup))["c1"])  # type: ignore[arg-type]
    await trace.until_count("start_failed", "c2", 1)
    failer.failing = False
    failer.ok = 100
    await trace.until_count("child_started", "c2", 1)
    assert trace.briefs() == [
        ("child_exited", "c1", "failure"),
        ("restart", "c1", "failure"),
        ("child_exited", "c2", "shutdown"),
        ("child_started", "c1", None),
        ("start_failed", "c2", None),
        ("restart", "c2", None),
        ("child_exited", "c1", "shutdown"),  # the restarted c1 goes down again
        ("child_started", "c1", None),
        ("child_started", "c2", None),
    ]
    assert sup.alive


# -- rest_for_one ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_rest_for_one_restarts_the_failed_child_and_the_later_ones(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    w = Workers(kind, runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags("rest_for_one", intensity=2, period=3600),
        [w.spec("c1"), w.spec("c2"), w.spec("c3")],
    )
    before = await pids(sup)
    trace.clear()
    w.die(before["c2"])  # type: ignore[arg-type]
    await trace.until_count("child_started", "c3", 1)
    after = await pids(sup)
    assert after["c1"] == before["c1"]
    assert after["c2"] != before["c2"] and after["c3"] != before["c3"]
    assert trace.briefs() == [
        ("child_exited", "c2", "failure"),
        ("restart", "c2", "failure"),
        ("child_exited", "c3", "shutdown"),
        ("child_started", "c2", None),
        ("child_started", "c3", None),
    ]


async def test_rest_for_one_escalation(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    failer = StartCounter(ok=1)
    w = Workers("python", runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags("rest_for_one", intensity=1, period=3600),
        [w.spec("c1"), failer.spec("c2")],
    )
    w.die((await pids(sup))["c1"])  # type: ignore[arg-type]
    exit = await sup.wait()
    assert exit.detail == "reached_max_restart_intensity"
    assert trace.count("child_started", "c1") == 2


async def test_rest_for_one_other_child_fails_restart_retries_from_that_child(
    runtime: supervisor.Runtime,
    autojump_clock: trio.testing.MockClock,
) -> None:
    failer = StartCounter(ok=1)
    w = Workers("python", runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags("rest_for_one", intensity=3, period=3600),
        [w.spec("c1"), failer.spec("c2")],
    )
    trace.clear()
    failer.failing = True
    w.die((await pids(sup))["c1"])  # type: ignore[arg-type]
    await trace.until_count("start_failed", "c2", 1)
    failer.failing = False
    failer.ok = 100
    await trace.until_count("child_started", "c2", 1)
    # c1 is not restarted a second time: the retry starts from c2
    assert trace.count("child_started", "c1") == 1
    assert trace.briefs()[-2:] == [("restart", "c2", None), ("child_started", "c2", None)]


# -- bystanders, ordering, trees ----------------------------------------------------------


@pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])
async def test_temporary_bystander_is_removed_and_does_not_burn_intensity(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, strategy: str
) -> None:
    w = Workers("python", runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags(strategy, intensity=1, period=3600),
        [w.spec("c1"), w.spec("c2", restart="temporary")],
    )
    w.die((await pids(sup))["c1"])  # type: ignore[arg-type]
    await trace.until_count("child_started", "c1", 2)
    assert list(await pids(sup)) == ["c1"]
    assert trace.count("restart") == 1
    # one restart was used: the next crash exceeds intensity 1
    w.die((await pids(sup))["c1"])  # type: ignore[arg-type]
    assert (await sup.wait()).detail == "reached_max_restart_intensity"


async def test_order_of_children_start_rest_for_one_and_shutdown(
    runtime: supervisor.Runtime,
    autojump_clock: trio.testing.MockClock,
) -> None:
    w = Workers("python", runtime)
    names = [f"c{i}" for i in range(1, 6)]
    sup, trace = await start(
        runtime,
        SupervisorFlags("rest_for_one", intensity=1, period=3600),
        [w.spec(n) for n in names],
    )
    assert [c for e, c, _ in trace.briefs("child_started")] == names
    trace.clear()
    w.die((await pids(sup))["c4"])  # type: ignore[arg-type]
    await trace.until_count("child_started", "c5", 1)
    assert [c for e, c, _ in trace.briefs("child_exited")] == ["c4", "c5"]
    assert [c for e, c, _ in trace.briefs("child_started")] == ["c4", "c5"]
    trace.clear()
    await sup.stop()
    assert [c for e, c, _ in trace.briefs("child_exited")] == ["c5", "c4", "c3", "c2", "c1"]


async def test_tree_a_crash_restarts_only_the_worker_and_escalation_restarts_the_subtrees(
    runtime: supervisor.Runtime,
    autojump_clock: trio.testing.MockClock,
) -> None:
    # root (one_for_all) -> sup1 (one_for_one: w1), sup2 (one_for_one: w2, intensity 0),
    #                       sup3 (transient, terminated through the API)
    w = Workers("python", runtime)

    def sub(
        name: str, intensity: int, *children: ChildSpec, restart: str = "permanent"
    ) -> ChildSpec:
        flags = SupervisorFlags("one_for_one", intensity=intensity, period=3600)
        return ChildSpec(name, SupervisorChild(flags, children), restart=restart)

    root, trace = await start(
        runtime,
        SupervisorFlags("one_for_all", intensity=4, period=3600),
        [
            sub("sup1", 1, w.spec("w1")),
            sub("sup2", 0, w.spec("w2")),
            sub("sup3", 1, w.spec("w3"), restart="transient"),
        ],
    )
    await root.terminate_child("sup3")
    started = {e.child: e.pid for e in trace.events if e.event == "child_started"}
    # a worker crash under sup1 restarts only that worker
    trace.clear()
    w.die(started["w1"])  # type: ignore[arg-type]
    await trace.until_count("child_started", "w1", 1)
    assert trace.briefs() == [
        ("child_exited", "w1", "failure"),
        ("restart", "w1", "failure"),
        ("child_started", "w1", None),
    ]
    assert trace.events[0].supervisor == "root/sup1"
    # w2's crash exceeds sup2's intensity 0: sup2 exits (shutdown) and the
    # root restarts all its subtrees, sup3 included
    trace.clear()
    w.die(started["w2"])  # type: ignore[arg-type]
    await trace.until_count("child_started", "sup3", 1)
    assert ("intensity_exceeded", "w2", None) in trace.briefs()
    assert [e.brief() for e in trace.events if e.supervisor == "root"] == [
        ("child_exited", "sup2", "shutdown"),
        ("restart", "sup2", "shutdown"),
        ("child_exited", "sup1", "shutdown"),
        ("child_started", "sup1", None),
        ("child_started", "sup2", None),
        ("child_started", "sup3", None),
    ]
    assert set(await pids(root)) == {"sup1", "sup2", "sup3"}
    assert all(p is not None for p in (await pids(root)).values())


async def test_python_children_that_report_ready_start_in_order(
    runtime: supervisor.Runtime,
    autojump_clock: trio.testing.MockClock,
) -> None:
    order: list[str] = []

    async def slow(ctx: supervisor.Context, name: str, delay: float) -> None:
        await trio.sleep(delay)
        order.append(name)
        ctx.started()
        await trio.sleep_forever()

    sup, _ = await start(
        runtime,
        SupervisorFlags(),
        [ChildSpec(n, PythonChild(slow, (n, d), ready=True)) for n, d in (("a", 2), ("b", 1))],
    )
    assert order == ["a", "b"]
    await sup.stop()


async def test_a_start_failure_at_start_up_stops_the_started_children(
    runtime: supervisor.Runtime,
    autojump_clock: trio.testing.MockClock,
) -> None:
    failer = StartCounter(ok=0)
    trace = Trace()
    with pytest.raises(supervisor.StartFailed, match="c2") as info:
        await supervisor.start_supervisor(
            runtime,
            SupervisorFlags(),
            [ChildSpec("c1", PythonChild(py_worker, ("c1",))), failer.spec("c2")],
            events=trace,
        )
    assert info.value.child == "c2"
    assert trace.briefs() == [
        ("child_started", "c1", None),
        ("start_failed", "c2", None),
        ("child_exited", "c1", "shutdown"),
        ("supervisor_stopped", None, "failure"),
    ]
