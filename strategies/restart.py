"""What happens when a child exits on its own: OTP's ``do_restart``, as a table.

============  ===================  ==========  ========
restart       reason               action      reported
============  ===================  ==========  ========
permanent     any                  restart     yes
transient     normal, shutdown     keep        no
transient     killed, failure      restart     yes
temporary     normal, shutdown     remove      no
temporary     killed, failure      remove      yes
============  ===================  ==========  ========

"Reported" means a ``child_terminated`` supervisor report (an error-level log
record): every restart is one, even of a permanent child that exited
normally. An exit that leads to no restart may trigger ``auto_shutdown``.
"""

from __future__ import annotations

from typing import Final

from ._types import Action, Reason, Restart

__all__ = ["DECISIONS", "restart_decision"]

_N, _S, _K, _F = Reason.NORMAL, Reason.SHUTDOWN, Reason.KILLED, Reason.FAILURE

#: ``(restart type, reason) -> (action, reported)``, every combination spelled out.
DECISIONS: Final[dict[tuple[Restart, Reason], tuple[Action, bool]]] = {
    (Restart.PERMANENT, _N): (Action.RESTART, True),
    (Restart.PERMANENT, _S): (Action.RESTART, True),
    (Restart.PERMANENT, _K): (Action.RESTART, True),
    (Restart.PERMANENT, _F): (Action.RESTART, True),
    (Restart.TRANSIENT, _N): (Action.KEEP, False),
    (Restart.TRANSIENT, _S): (Action.KEEP, False),
    (Restart.TRANSIENT, _K): (Action.RESTART, True),
    (Restart.TRANSIENT, _F): (Action.RESTART, True),
    (Restart.TEMPORARY, _N): (Action.REMOVE, False),
    (Restart.TEMPORARY, _S): (Action.REMOVE, False),
    (Restart.TEMPORARY, _K): (Action.REMOVE, True),
    (Restart.TEMPORARY, _F): (Action.REMOVE, True),
}


def restart_decision(restart: Restart, reason: Reason) -> tuple[Action, bool]:
    """The action for a child of type ``restart`` that exited with ``reason``,
    and whether the exit is reported."""
    return DECISIONS[(restart, reason)]
