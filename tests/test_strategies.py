"""The restart rules, rule by rule, with plain data (no runtime)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies import (
    DECISIONS,
    Action,
    AutoShutdown,
    Backoff,
    ChildView,
    Plan,
    Reason,
    Restart,
    RestartIntensity,
    Strategy,
    auto_shutdown_triggered,
    restart_decision,
    shutdown_order,
    strategy_for,
)

P, T, X = Restart.PERMANENT, Restart.TRANSIENT, Restart.TEMPORARY
N, S, K, F = Reason.NORMAL, Reason.SHUTDOWN, Reason.KILLED, Reason.FAILURE

# -- the decision table --------------------------------------------------------


@pytest.mark.parametrize("reason", list(Reason))
def test_permanent_children_are_always_restarted_and_reported(reason: Reason) -> None:
    assert restart_decision(P, reason) == (Action.RESTART, True)


@pytest.mark.parametrize("reason", [N, S])
def test_transient_children_exiting_normally_are_kept_without_a_report(reason: Reason) -> None:
    assert restart_decision(T, reason) == (Action.KEEP, False)


@pytest.mark.parametrize("reason", [K, F])
def test_transient_children_exiting_abnormally_are_restarted(reason: Reason) -> None:
    assert restart_decision(T, reason) == (Action.RESTART, True)


@pytest.mark.parametrize("reason", [N, S])
def test_temporary_children_exiting_normally_are_removed_silently(reason: Reason) -> None:
    assert restart_decision(X, reason) == (Action.REMOVE, False)


@pytest.mark.parametrize("reason", [K, F])
def test_temporary_children_exiting_abnormally_are_removed_and_reported(reason: Reason) -> None:
    assert restart_decision(X, reason) == (Action.REMOVE, True)


def test_the_table_covers_every_combination() -> None:
    assert set(DECISIONS) == {(r, x) for r in Restart for x in Reason}


# -- strategies ---------------------------------------------------------------------

KIDS = [
    ChildView("a", P, True),
    ChildView("b", T, True),
    ChildView("c", X, True),
    ChildView("d", P, False),  # stopped through the API
    ChildView("e", P, True),
]


def test_one_for_one_restarts_only_the_failed_child() -> None:
    assert strategy_for("one_for_one").plan(KIDS, "b") == Plan((), ("b",), ())


def test_one_for_all_stops_the_others_newest_first_and_restarts_every_spec() -> None:
    plan = strategy_for("one_for_all").plan(KIDS, "b")
    # the temporary bystander c is removed, not restarted; d comes back
    assert plan == Plan(stop=("e", "c", "a"), restart=("a", "b", "d", "e"), remove=("c",))


def test_rest_for_one_stops_and_restarts_only_the_later_children() -> None:
    plan = strategy_for("rest_for_one").plan(KIDS, "b")
    assert plan == Plan(stop=("e", "c"), restart=("b", "d", "e"), remove=("c",))
    assert strategy_for("rest_for_one").plan(KIDS, "e") == Plan((), ("e",), ())


def test_simple_one_for_one_restarts_only_the_failed_child() -> None:
    assert strategy_for(Strategy.SIMPLE_ONE_FOR_ONE).plan(KIDS, "a") == Plan((), ("a",), ())


def test_an_unknown_strategy_lists_the_valid_ones() -> None:
    with pytest.raises(
        ValueError, match="one_for_one, one_for_all, rest_for_one, simple_one_for_one"
    ):
        strategy_for("all_for_none")


def test_planning_for_an_unknown_child_fails() -> None:
    with pytest.raises(KeyError):
        strategy_for("one_for_all").plan(KIDS, "zz")


def test_shutdown_order_is_reverse_start_order_of_running_children() -> None:
    assert shutdown_order(KIDS) == ("e", "c", "b", "a")


@given(
    st.lists(st.tuples(st.sampled_from(list(Restart)), st.booleans()), min_size=1, max_size=8),
    st.data(),
)
def test_plans_never_restart_a_removed_child_and_stop_only_running_ones(
    kinds: list[tuple[Restart, bool]], data: st.DataObject
) -> None:
    children = [ChildView(str(i), r, running) for i, (r, running) in enumerate(kinds)]
    failed = data.draw(st.sampled_from([c.id for c in children]))
    for name in ("one_for_one", "one_for_all", "rest_for_one"):
        plan = strategy_for(name).plan(children, failed)
        running = {c.id for c in children if c.running}
        assert set(plan.stop) <= running - {failed}
        assert not set(plan.restart) & set(plan.remove)
        assert failed in plan.restart
        order = [c.id for c in children]
        assert list(plan.restart) == sorted(plan.restart, key=order.index)
        assert list(plan.stop) == sorted(plan.stop, key=order.index, reverse=True)


# -- intensity -------------------------------------------------------------------------


def test_intensity_allows_that_many_restarts_in_the_window() -> None:
    r = RestartIntensity(intensity=2, period=5)
    assert r.add(0.0) and r.add(1.0)
    assert not r.add(2.0)


def test_the_window_is_inclusive_and_counted_in_whole_seconds() -> None:
    r = RestartIntensity(intensity=1, period=1)
    assert r.add(10.9)
    assert not r.add(11.5)  # 10 >= 11 - 1: still inside
    r = RestartIntensity(intensity=1, period=1)
    assert r.add(10.0)
    assert r.add(12.0)  # 10 < 12 - 1: slid out


def test_multiple_restarts_spaced_beyond_the_period_never_exceed() -> None:
    # supervisor_SUITE multiple_restarts: intensity 1, period 1, crashes 2.1 s apart
    r = RestartIntensity(intensity=1, period=1)
    assert all(r.add(i * 2.1) for i in range(4))


def test_intensity_zero_gives_up_at_the_first_restart() -> None:
    assert not RestartIntensity(0, 5).add(0.0)


@pytest.mark.parametrize(
    ("intensity", "period"), [(-1, 5), (1, 0), (1.5, 5), (1, float("inf")), (True, 5), (1, -3)]
)
def test_invalid_intensity_or_period_is_refused(intensity: object, period: object) -> None:
    with pytest.raises(ValueError, match=r"intensity|period"):
        RestartIntensity(intensity, period)  # type: ignore[arg-type]


# -- significant children -------------------------------------------------------------------


def test_auto_shutdown_never_fires_for_never_or_for_non_significant_children() -> None:
    assert not auto_shutdown_triggered(AutoShutdown.NEVER, True, 0)
    assert not auto_shutdown_triggered(AutoShutdown.ANY_SIGNIFICANT, False, 0)
    assert not auto_shutdown_triggered(AutoShutdown.ALL_SIGNIFICANT, False, 0)


def test_any_significant_fires_at_the_first_significant_exit() -> None:
    assert auto_shutdown_triggered(AutoShutdown.ANY_SIGNIFICANT, True, 3)


def test_all_significant_waits_for_the_last_significant_child() -> None:
    assert not auto_shutdown_triggered(AutoShutdown.ALL_SIGNIFICANT, True, 1)
    assert auto_shutdown_triggered(AutoShutdown.ALL_SIGNIFICANT, True, 0)


# -- backoff -------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_maximum() -> None:
    b = Backoff(minimum=0.5, maximum=3.0)
    assert [b.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_jitter_stays_within_its_fraction() -> None:
    b = Backoff(minimum=1.0, maximum=1.0, jitter=0.25)
    rng = random.Random(3)
    delays = [b.delay(1, rng) for _ in range(200)]
    assert min(delays) >= 0.75 and max(delays) <= 1.25
    assert len(set(delays)) > 1


def test_backoff_resets_after_a_long_enough_run() -> None:
    b = Backoff(reset_after=30)
    assert b.next_attempt(4, ran_for=2) == 5
    assert b.next_attempt(4, ran_for=30) == 1


@pytest.mark.parametrize(
    "kwargs", [{"minimum": 2, "maximum": 1}, {"jitter": 2}, {"reset_after": 0}, {"minimum": -1}]
)
def test_backoff_settings_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**kwargs)
