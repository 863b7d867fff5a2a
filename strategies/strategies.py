"""The four restart strategies, each a small object with one job.

Given a supervisor's children in start order and the child that must be
restarted, :meth:`plan` says which siblings to stop (newest first), which
children to start again (oldest first) and which temporary bystanders to
delete instead (OTP's ``restart/2``):

* ``one_for_one``: only that child;
* ``one_for_all``: every other child is stopped and every spec is started
  again, including children stopped earlier through the API;
* ``rest_for_one``: the children started after it are stopped, and it and
  they are started again; earlier children are untouched;
* ``simple_one_for_one``: only that child (all children are instances of one
  spec; the supervisor stops them concurrently and in no particular order).

A child that fails to restart is retried with the same plan: under
one_for_all everything is stopped and started again, under rest_for_one from
the failed child onwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ._types import ChildView, Plan, Restart, Strategy

__all__ = [
    "OneForAll",
    "OneForOne",
    "RestForOne",
    "RestartStrategy",
    "SimpleOneForOne",
    "shutdown_order",
    "strategy_for",
]


class RestartStrategy(Protocol):
    """What a strategy object offers a supervisor."""

    kind: Strategy

    def plan(self, children: Sequence[ChildView], failed: str) -> Plan:
        """The plan for restarting ``failed`` among ``children`` (start order)."""
        ...


def _find(children: Sequence[ChildView], failed: str) -> int:
    for i, c in enumerate(children):
        if c.id == failed:
            return i
    raise KeyError(f"no child {failed!r}")


def _stop_and_restart(
    children: Sequence[ChildView], failed: str, affected: Sequence[ChildView]
) -> Plan:
    """Stop ``affected`` (the failed child's siblings that go down with it) and
    restart the failed child and them, deleting temporary bystanders."""
    remove = tuple(c.id for c in affected if c.restart is Restart.TEMPORARY)
    stop = shutdown_order(affected)
    group = {failed} | {c.id for c in affected}
    restart = tuple(c.id for c in children if c.id in group and c.id not in remove)
    return Plan(stop=stop, restart=restart, remove=remove)


class OneForOne:
    kind = Strategy.ONE_FOR_ONE

    def plan(self, children: Sequence[ChildView], failed: str) -> Plan:
        _find(children, failed)
        return Plan(stop=(), restart=(failed,), remove=())


class OneForAll:
    kind = Strategy.ONE_FOR_ALL

    def plan(self, children: Sequence[ChildView], failed: str) -> Plan:
        _find(children, failed)
        others = [c for c in children if c.id != failed]
        return _stop_and_restart(children, failed, others)


class RestForOne:
    kind = Strategy.REST_FOR_ONE

    def plan(self, children: Sequence[ChildView], failed: str) -> Plan:
        later = list(children[_find(children, failed) + 1 :])
        return _stop_and_restart(children, failed, later)


class SimpleOneForOne(OneForOne):
    """Restarts as :class:`OneForOne` does; its children are all of one spec."""

    kind = Strategy.SIMPLE_ONE_FOR_ONE


_STRATEGIES: dict[Strategy, RestartStrategy] = {
    s.kind: s for s in (OneForOne(), OneForAll(), RestForOne(), SimpleOneForOne())
}


def strategy_for(name: str | Strategy) -> RestartStrategy:
    """The strategy object for a name; an unknown name lists the valid ones."""
    try:
        return _STRATEGIES[Strategy(name)]
    except ValueError:
        valid = ", ".join(s.value for s in Strategy)
        raise ValueError(f"unknown strategy {name!r} (valid: {valid})") from None


def shutdown_order(children: Sequence[ChildView]) -> tuple[str, ...]:
    """The order in which a supervisor stops its running children: newest first."""
    return tuple(c.id for c in reversed(children) if c.running)
