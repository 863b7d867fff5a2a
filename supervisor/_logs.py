"""Whether anybody listens to a logger: records nobody reads are not made."""

from __future__ import annotations

import logging

__all__ = ["heard"]


def heard(log: logging.Logger, level: int) -> bool:
    """Whether a record at ``level`` would reach a handler other than a
    ``NullHandler``. lunatrio logs on hot paths (failures, restarts); making a
    record costs microseconds, so it is skipped when nobody would read it."""
    if not log.isEnabledFor(level):
        return False
    current: logging.Logger | None = log
    while current is not None:
        for h in current.handlers:
            if not isinstance(h, logging.NullHandler) and level >= h.level:
                return True
        if not current.propagate:
            return False
        current = current.parent
    return False
