"""``lunatic::version``: the lunatic release lunatrio implements (section 2.6)."""

from __future__ import annotations

from .abi import Namespace
from .protocols import HostProcess

__all__ = ["VERSION", "namespace"]

namespace = Namespace("lunatic::version")

#: lunatic 0.13.2, whose host ABI lunatrio implements.
VERSION = (0, 13, 2)


@namespace.function("major () -> i32")
def major(proc: HostProcess) -> int:
    return VERSION[0]


@namespace.function("minor () -> i32")
def minor(proc: HostProcess) -> int:
    return VERSION[1]


@namespace.function("patch () -> i32")
def patch(proc: HostProcess) -> int:
    return VERSION[2]
