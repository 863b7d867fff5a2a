"""Restart strategies as pure decision logic.

This package imports neither the runtime nor the host API, does no I/O and
awaits nothing, so every rule can be tested with plain data:

* :func:`restart_decision`: what happens to a child that exited on its own
  (OTP's ``do_restart``, as a table);
* the strategies (:func:`strategy_for`): which siblings to stop and restart;
* :class:`RestartIntensity`: OTP's sliding window of restarts;
* :func:`auto_shutdown_triggered`: significant children;
* :class:`Backoff`: optional restart delays.
"""

from ._types import Action, ChildView, Plan, Reason, Restart, Strategy
from .backoff import Backoff
from .intensity import RestartIntensity
from .restart import DECISIONS, restart_decision
from .significant import AutoShutdown, auto_shutdown_triggered
from .strategies import (
    OneForAll,
    OneForOne,
    RestartStrategy,
    RestForOne,
    SimpleOneForOne,
    shutdown_order,
    strategy_for,
)

__all__ = [
    "DECISIONS",
    "Action",
    "AutoShutdown",
    "Backoff",
    "ChildView",
    "OneForAll",
    "OneForOne",
    "Plan",
    "Reason",
    "RestForOne",
    "Restart",
    "RestartIntensity",
    "RestartStrategy",
    "SimpleOneForOne",
    "Strategy",
    "auto_shutdown_triggered",
    "restart_decision",
    "shutdown_order",
    "strategy_for",
]
