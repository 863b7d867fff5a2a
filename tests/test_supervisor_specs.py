"""Child specs, supervisor flags (supervisor_SUITE's child_specs and sup_flags),
significant children, and the event stream."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import supervisor
from strategies import Backoff
from supervisor import (
    ChildSpec,
    ChildSpecError,
    ExitReason,
    PythonChild,
    SupervisorChild,
    SupervisorFlags,
    SupervisorFlagsError,
)

from .supervision import Workers, pids, py_worker, start

START = PythonChild(py_worker)

# -- child_specs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"id": ""}, "id", "non-empty string"),
        ({"start": "mod:fun"}, "start", "must be a WasmChild, PythonChild or SupervisorChild"),
        ({"restart": "sometimes"}, "restart", "permanent, transient, temporary"),
        ({"shutdown": -10}, "shutdown", "seconds >= 0"),
        ({"shutdown": "later"}, "shutdown", "seconds >= 0"),
        ({"shutdown": float("inf")}, "shutdown", "seconds >= 0"),
        ({"type": "daemon"}, "type", "worker or supervisor"),
        ({"significant": "yes"}, "significant", "true or false"),
        ({"significant": True}, "significant", "permanent child cannot be significant"),
        ({"backoff": 3}, "backoff", "must be a Backoff"),
    ],
)
def test_child_specs_reject_bad_fields_naming_them(
    kwargs: dict[str, Any], field: str, message: str
) -> None:
    args: dict[str, Any] = {"id": "c", "start": START} | kwargs
    with pytest.raises(ChildSpecError, match=message) as info:
        ChildSpec(**args)
    assert info.value.field == field
    assert f": {field}: " in str(info.value)


def test_child_spec_defaults_follow_otp() -> None:
    worker = ChildSpec("w", START)
    sup = ChildSpec("s", SupervisorChild(SupervisorFlags()))
    assert (worker.restart.value, worker.shutdown, worker.type) == ("permanent", 5.0, "worker")
    assert (sup.shutdown, sup.type) == ("infinity", "supervisor")
    assert ChildSpec("b", START, shutdown="brutal_kill").shutdown == "brutal_kill"
    assert ChildSpec("n", START, shutdown=2).shutdown == 2.0


def test_duplicate_child_ids_are_refused() -> None:
    with pytest.raises(ChildSpecError, match="duplicate child id"):
        SupervisorChild(SupervisorFlags(), [ChildSpec("a", START), ChildSpec("a", START)])


@given(
    restart=st.sampled_from(["permanent", "transient", "temporary", "bad", 3]),
    shutdown=st.one_of(
        st.none(),
        st.sampled_from(["brutal_kill", "infinity", "soon", -1, True]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-5, 10),
    ),
    kind=st.sampled_from([None, "worker", "supervisor", "thing"]),
    significant=st.sampled_from([False, True, 0, "no"]),
)
def test_every_combination_of_fields_is_valid_or_names_its_bad_field(
    restart: Any, shutdown: Any, kind: Any, significant: Any
) -> None:
    bad_field: str | None = None
    try:
        spec = ChildSpec(
            "c", START, restart=restart, shutdown=shutdown, type=kind, significant=significant
        )
    except ChildSpecError as e:
        bad_field = e.field
    if bad_field is not None:
        assert bad_field in {"restart", "shutdown", "type", "significant"}
        return
    assert spec.restart.value in {"permanent", "transient", "temporary"}
    assert spec.shutdown in ("brutal_kill", "infinity") or float(spec.shutdown) >= 0
    assert spec.type in ("worker", "supervisor")
    assert not (spec.significant and spec.restart.value == "permanent")


# -- sup_flags -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"strategy": "all_for_none"}, "strategy"),
        ({"intensity": -1}, "intensity"),
        ({"intensity": float("inf")}, "intensity"),
        ({"intensity": 1.5}, "intensity"),
        ({"period": 0}, "period"),
        ({"period": float("inf")}, "period"),
        ({"auto_shutdown": "sometimes"}, "auto_shutdown"),
        ({"strategy": "simple_one_for_one", "auto_shutdown": "any_significant"}, "auto_shutdown"),
        ({"backoff": 1.0}, "backoff"),
    ],
)
def test_sup_flags_reject_bad_values_naming_them(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SupervisorFlagsError) as info:
        SupervisorFlags(**kwargs)
    assert info.value.field == field


def test_an_unknown_strategy_lists_the_valid_ones() -> None:
    with pytest.raises(SupervisorFlagsError, match="one_for_one, one_for_all, rest_for_one"):
        SupervisorFlags(strategy="all_for_none")


def test_flag_defaults_follow_otp() -> None:
    f = SupervisorFlags()
    assert (f.strategy.value, f.intensity, f.period, f.auto_shutdown.value) == (
        "one_for_one",
        1,
        5,
        "never",
    )


def test_significant_simple_auto_shutdown_is_refused_for_simple_one_for_one() -> None:
    with pytest.raises(SupervisorFlagsError, match="bad combination"):
        SupervisorFlags("simple_one_for_one", auto_shutdown="all_significant")


def test_simple_one_for_one_needs_exactly_one_spec() -> None:
    with pytest.raises(SupervisorFlagsError, match="exactly one child spec"):
        SupervisorChild(SupervisorFlags("simple_one_for_one"), [])


def test_significant_children_need_auto_shutdown() -> None:
    sig = ChildSpec("s", START, restart="transient", significant=True)
    with pytest.raises(ChildSpecError, match="bad combination"):
        SupervisorChild(SupervisorFlags(), [sig])
    SupervisorChild(SupervisorFlags(auto_shutdown="any_significant"), [sig])


# -- significant children --------------------------------------------------------------------


def _sig(w: Workers, cid: str, restart: str, significant: bool = True) -> ChildSpec:
    spec = w.spec(cid, restart=restart)
    return ChildSpec(spec.id, spec.start, restart=restart, significant=significant)


@pytest.mark.parametrize(
    "restart",
    [
        pytest.param("temporary", id="nonsignificant_temporary"),
        pytest.param("transient", id="nonsignificant_transient"),
    ],
)
async def test_nonsignificant_children_never_shut_the_supervisor_down(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock, restart: str
) -> None:
    w = Workers("python", runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags(auto_shutdown="any_significant"),
        [_sig(w, "c", restart, significant=False)],
    )
    w.stop((await pids(sup))["c"])  # type: ignore[arg-type]
    await trace.until_count("child_exited", "c", 1)
    await trio.testing.wait_all_tasks_blocked()
    assert sup.alive


@pytest.mark.parametrize("kind", ["python", "wasm"])
@pytest.mark.parametrize(
    ("restart", "how", "shuts_down"),
    [
        pytest.param("temporary", "stop", True, id="significant_temporary-normal"),
        pytest.param("temporary", "die", True, id="significant_temporary-abnormal"),
        pytest.param("transient", "stop", True, id="significant_transient-normal"),
        # restarted, so not "exited by itself"
        pytest.param("transient", "die", False, id="significant_transient-abnormal"),
    ],
)
async def test_significant_child_exiting_by_itself_shuts_down_any_significant(
    runtime: supervisor.Runtime,
    autojump_clock: trio.testing.MockClock,
    kind: str,
    restart: str,
    how: str,
    shuts_down: bool,
) -> None:
    w = Workers(kind, runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags(auto_shutdown="any_significant"),
        [_sig(w, "sig", restart), w.spec("other")],
    )
    runtime.send((await pids(sup))["sig"], how.encode())  # type: ignore[arg-type]
    await trace.until_count("child_exited", "sig", 1)
    await trio.testing.wait_all_tasks_blocked()
    if shuts_down:
        exit = await sup.wait()
        assert (exit.reason, exit.detail) == (ExitReason.SHUTDOWN, "auto_shutdown")
        assert trace.briefs()[-2:] == [
            ("child_exited", "other", "shutdown"),
            ("supervisor_stopped", None, "shutdown"),
        ]
    else:
        assert sup.alive


async def test_all_significant_waits_for_every_significant_child(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    w = Workers("python", runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags(auto_shutdown="all_significant"),
        [_sig(w, "s1", "temporary"), _sig(w, "s2", "transient"), w.spec("other")],
    )
    ids = await pids(sup)
    w.stop(ids["s1"])  # type: ignore[arg-type]
    await trace.until_count("child_exited", "s1", 1)
    await trio.testing.wait_all_tasks_blocked()
    assert sup.alive
    w.stop(ids["s2"])  # type: ignore[arg-type]
    assert (await sup.wait()).detail == "auto_shutdown"


async def test_significant_bystander_and_api_terminations_do_not_shut_down(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    w = Workers("python", runtime)
    sup, trace = await start(
        runtime,
        SupervisorFlags("one_for_all", intensity=5, auto_shutdown="any_significant"),
        [w.spec("c1"), _sig(w, "sig", "transient")],
    )
    w.die((await pids(sup))["c1"])  # type: ignore[arg-type]  # sig: a bystander
    await trace.until_count("child_started", "sig", 2)
    await sup.terminate_child("sig")
    await trio.testing.wait_all_tasks_blocked()
    assert sup.alive


async def test_significant_escalation_through_nested_supervisors(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    # the inner supervisor shuts down automatically; it is itself a
    # significant transient child of the outer one, which shuts down too
    w = Workers("python", runtime)
    inner = SupervisorChild(
        SupervisorFlags(auto_shutdown="any_significant"), [_sig(w, "sig", "transient")]
    )
    outer, trace = await start(
        runtime,
        SupervisorFlags(auto_shutdown="any_significant"),
        [ChildSpec("inner", inner, restart="transient", significant=True)],
    )
    sig_pid = next(e.pid for e in trace.events if e.child == "sig" and e.event == "child_started")
    w.stop(sig_pid)  # type: ignore[arg-type]
    exit = await outer.wait()
    assert exit.detail == "auto_shutdown"
    assert [(e.supervisor, e.event) for e in trace.events if e.event == "supervisor_stopped"] == [
        ("root/inner", "supervisor_stopped"),
        ("root", "supervisor_stopped"),
    ]


# -- backoff -----------------------------------------------------------------------------------


async def test_backoff_delays_restarts_and_still_counts_them(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    w = Workers("python", runtime)
    flags = SupervisorFlags(intensity=10, period=1000, backoff=Backoff(minimum=1, maximum=4))
    sup, trace = await start(runtime, flags, [w.spec("c")])
    times = []
    for n in range(4):
        t0 = trio.current_time()
        w.die((await pids(sup))["c"])  # type: ignore[arg-type]
        await trace.until_count("child_started", "c", n + 2)
        times.append(trio.current_time() - t0)
    assert times == pytest.approx([1, 2, 4, 4])
    assert sup._core.intensity.recent.__len__() == 4


# -- the event stream --------------------------------------------------------------------------


async def test_events_reach_subscribers_listeners_and_the_log(
    runtime: supervisor.Runtime,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="supervisor.events")
    w = Workers("python", runtime)
    sup, trace = await start(runtime, SupervisorFlags(), [w.spec("c")])
    received: list[supervisor.SupervisorEvent] = []

    events = sup.events()

    async def consume() -> None:
        async for e in events:
            received.append(e)
            if e.event == "child_started":
                return

    async with trio.open_nursery() as n:
        n.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(1.5)
        w.die((await pids(sup))["c"])  # type: ignore[arg-type]
    assert [e.brief() for e in received] == [
        ("child_exited", "c", "failure"),
        ("restart", "c", "failure"),
        ("child_started", "c", None),
    ]
    assert received[0].t == pytest.approx(1.5)
    assert received[0].to_json() == {
        "t": 1.5,
        "event": "child_exited",
        "supervisor": "root",
        "child": "c",
        "pid": received[0].pid,
        "reason": "failure",
        "detail": "RuntimeError: c crashed",
    }
    restart = [r for r in caplog.records if getattr(r, "event", None) == "restart"]
    assert len(restart) == 1
    assert restart[0].levelno == logging.ERROR
    assert restart[0].error_context == "child_terminated"  # type: ignore[attr-defined]
    assert restart[0].getMessage() == (
        f"supervisor root: child_terminated c (pid {received[0].pid}): failure: "
        "RuntimeError: c crashed"
    )
    assert trace.events[-1] == received[-1]
