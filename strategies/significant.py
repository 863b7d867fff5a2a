"""Automatic shutdown by significant children (OTP 24's ``auto_shutdown``).

==================  ===================================================
auto_shutdown       the supervisor shuts itself down when...
==================  ===================================================
never               never (significant children are not allowed)
any_significant     a significant child exits by itself and is not
                    restarted
all_significant     ...and no other significant child is left running
==================  ===================================================

"By itself and not restarted": a transient child exiting ``normal`` or
``shutdown``, a temporary child exiting for any reason. Children stopped by
the supervisor (through the API, or as bystanders of one_for_all and
rest_for_one) never trigger it. A significant child must be transient or
temporary.
"""

from __future__ import annotations

import enum

__all__ = ["AutoShutdown", "auto_shutdown_triggered"]


class AutoShutdown(enum.Enum):
    NEVER = "never"
    ANY_SIGNIFICANT = "any_significant"
    ALL_SIGNIFICANT = "all_significant"

    def __str__(self) -> str:
        return self.value


def auto_shutdown_triggered(
    flag: AutoShutdown, exited_significant: bool, significant_left_running: int
) -> bool:
    """Whether a child's own, not-restarted exit shuts its supervisor down.

    ``exited_significant``: the child that exited is significant;
    ``significant_left_running``: significant children still running after it.
    """
    if flag is AutoShutdown.NEVER or not exited_significant:
        return False
    if flag is AutoShutdown.ANY_SIGNIFICANT:
        return True
    return significant_left_running == 0
