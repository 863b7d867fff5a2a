"""Child specs and supervisor flags, validated when given.

A :class:`ChildSpec` says how to start a child (a Wasm export, an async Python
function, or a nested supervisor), when to restart it, how to stop it, and
whether it is significant. :class:`SupervisorFlags` give the strategy, the
restart intensity and ``auto_shutdown``. Both follow OTP's names and defaults
and are checked at construction: a bad field raises :class:`ChildSpecError`
or :class:`SupervisorFlagsError` naming it.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from strategies import AutoShutdown, Backoff, Restart, RestartIntensity, Strategy

if TYPE_CHECKING:
    from hostapi.data import ProcessConfig
    from hostapi.ffi import Module

__all__ = [
    "BRUTAL_KILL",
    "INFINITY",
    "ChildSpec",
    "ChildSpecError",
    "PythonChild",
    "SupervisorChild",
    "SupervisorFlags",
    "SupervisorFlagsError",
    "WasmChild",
    "check_children",
]

#: Stop a child by killing it at once (reason ``killed``).
BRUTAL_KILL: Final = "brutal_kill"
#: Wait as long as a child takes to stop.
INFINITY: Final = "infinity"
#: Default shutdown timeout of a worker, in seconds (OTP's 5000 ms).
WORKER_SHUTDOWN: Final = 5.0

Shutdown = float | Literal["brutal_kill", "infinity"]
ChildType = Literal["worker", "supervisor"]


class ChildSpecError(ValueError):
    """A child spec with a bad field (the message names the child and field)."""

    def __init__(self, child: object, field: str, message: str) -> None:
        super().__init__(f"child spec {child!r}: {field}: {message}")
        self.child = child
        self.field = field
        self.message = message


class SupervisorFlagsError(ValueError):
    """Supervisor flags with a bad field (the message names it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"supervisor flags: {field}: {message}")
        self.field = field
        self.message = message


def _choice(enum_type: Any, value: object, error: Callable[[str], Exception]) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        valid = ", ".join(str(m.value) for m in enum_type)
        raise error(f"must be one of {valid} (got {value!r})") from None


@dataclass(frozen=True, init=False)
class SupervisorFlags:
    """How a supervisor restarts its children.

    * ``strategy``: ``one_for_one`` (default), ``one_for_all``,
      ``rest_for_one`` or ``simple_one_for_one``;
    * ``intensity`` and ``period``: at most ``intensity`` restarts in any
      ``period`` seconds (integers; OTP's defaults 1 and 5), or the supervisor
      stops its children and exits with reason ``shutdown``;
    * ``auto_shutdown``: ``never`` (default), ``any_significant`` or
      ``all_significant`` (see :mod:`strategies.significant`);
    * ``backoff``: an optional :class:`~strategies.Backoff` for every child.
    """

    strategy: Strategy
    intensity: int
    period: int
    auto_shutdown: AutoShutdown
    backoff: Backoff | None

    def __init__(
        self,
        strategy: Strategy | str = Strategy.ONE_FOR_ONE,
        intensity: int = 1,
        period: int = 5,
        auto_shutdown: AutoShutdown | str = AutoShutdown.NEVER,
        backoff: Backoff | None = None,
    ) -> None:
        def err(name: str) -> Callable[[str], Exception]:
            return lambda message: SupervisorFlagsError(name, message)

        kind: Strategy = _choice(Strategy, strategy, err("strategy"))
        auto: AutoShutdown = _choice(AutoShutdown, auto_shutdown, err("auto_shutdown"))
        try:
            RestartIntensity(intensity, period)
        except ValueError as e:
            name = "intensity" if str(e).startswith("intensity") else "period"
            raise SupervisorFlagsError(name, str(e).split(" ", 1)[1]) from None
        if backoff is not None and not isinstance(backoff, Backoff):
            raise SupervisorFlagsError("backoff", f"must be a Backoff, got {backoff!r}")
        if kind is Strategy.SIMPLE_ONE_FOR_ONE and auto is not AutoShutdown.NEVER:
            raise SupervisorFlagsError(
                "auto_shutdown",
                "simple_one_for_one supervisors cannot shut down automatically (bad combination)",
            )
        object.__setattr__(self, "strategy", kind)
        object.__setattr__(self, "intensity", intensity)
        object.__setattr__(self, "period", period)
        object.__setattr__(self, "auto_shutdown", auto)
        object.__setattr__(self, "backoff", backoff)


@dataclass(frozen=True, init=False)
class WasmChild:
    """Start a child by spawning ``module``'s export ``entry`` with ``params``."""

    module: Module
    entry: str
    params: tuple[int, ...]
    config: ProcessConfig | None

    def __init__(
        self,
        module: Module,
        entry: str = "_start",
        params: Sequence[int] = (),
        config: ProcessConfig | None = None,
    ) -> None:
        object.__setattr__(self, "module", module)
        object.__setattr__(self, "entry", entry)
        object.__setattr__(self, "params", tuple(params))
        object.__setattr__(self, "config", config)


@dataclass(frozen=True, init=False)
class PythonChild:
    """Start a child as a Python process running ``await fn(ctx, *args)``.

    With ``ready=True`` the child counts as started only once it calls
    ``ctx.started()``; ending before that is a failed start (OTP's ``init``).
    """

    fn: Callable[..., Awaitable[Any]]
    args: tuple[Any, ...]
    ready: bool

    def __init__(
        self, fn: Callable[..., Awaitable[Any]], args: Sequence[Any] = (), ready: bool = False
    ) -> None:
        if not callable(fn):
            raise TypeError(f"PythonChild needs an async function, got {fn!r}")
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "args", tuple(args))
        object.__setattr__(self, "ready", ready)


@dataclass(frozen=True, init=False)
class SupervisorChild:
    """Start a child supervisor with its own flags and children."""

    flags: SupervisorFlags
    children: tuple[ChildSpec, ...]

    def __init__(self, flags: SupervisorFlags, children: Sequence[ChildSpec] = ()) -> None:
        if not isinstance(flags, SupervisorFlags):
            raise SupervisorFlagsError("flags", f"must be SupervisorFlags, got {flags!r}")
        children = tuple(children)
        check_children(flags, children)
        object.__setattr__(self, "flags", flags)
        object.__setattr__(self, "children", children)


Start = WasmChild | PythonChild | SupervisorChild


@dataclass(frozen=True, init=False)
class ChildSpec:
    """A supervised child (OTP's child spec).

    * ``id``: unique among the supervisor's children;
    * ``start``: a :class:`WasmChild`, :class:`PythonChild` or
      :class:`SupervisorChild`;
    * ``restart``: ``permanent`` (default), ``transient`` or ``temporary``;
    * ``shutdown``: seconds to wait for the child to stop before killing it,
      ``"brutal_kill"`` or ``"infinity"`` (default: 5 s for a worker,
      infinity for a supervisor);
    * ``type``: ``worker`` or ``supervisor`` (default: from ``start``);
    * ``significant``: whether its own exit can shut the supervisor down
      (only for transient and temporary children under ``auto_shutdown``);
    * ``backoff``: restart delays for this child (overrides the flags').
    """

    id: str
    start: Start
    restart: Restart
    shutdown: Shutdown
    type: ChildType
    significant: bool
    backoff: Backoff | None

    def __init__(
        self,
        id: str,
        start: Start,
        restart: Restart | str = Restart.PERMANENT,
        shutdown: Shutdown | None = None,
        type: str | None = None,
        significant: bool = False,
        backoff: Backoff | None = None,
    ) -> None:
        def err(name: str) -> Callable[[str], Exception]:
            return lambda message: ChildSpecError(id, name, message)

        if not isinstance(id, str) or not id:
            raise ChildSpecError(id, "id", "must be a non-empty string")
        if not isinstance(start, WasmChild | PythonChild | SupervisorChild):
            raise ChildSpecError(
                id, "start", f"must be a WasmChild, PythonChild or SupervisorChild, got {start!r}"
            )
        kind: Restart = _choice(Restart, restart, err("restart"))
        if type is None:
            type = "supervisor" if isinstance(start, SupervisorChild) else "worker"
        if type not in ("worker", "supervisor"):
            raise ChildSpecError(id, "type", f"must be worker or supervisor (got {type!r})")
        if shutdown is None:
            shutdown = INFINITY if type == "supervisor" else WORKER_SHUTDOWN
        elif shutdown not in (BRUTAL_KILL, INFINITY):
            if (
                isinstance(shutdown, bool)
                or not isinstance(shutdown, int | float)
                or not math.isfinite(shutdown)
                or shutdown < 0
            ):
                raise ChildSpecError(
                    id,
                    "shutdown",
                    f'must be seconds >= 0, "brutal_kill" or "infinity" (got {shutdown!r})',
                )
            shutdown = float(shutdown)
        if not isinstance(significant, bool):
            raise ChildSpecError(id, "significant", f"must be true or false (got {significant!r})")
        if significant and kind is Restart.PERMANENT:
            raise ChildSpecError(
                id, "significant", "a permanent child cannot be significant (bad combination)"
            )
        if backoff is not None and not isinstance(backoff, Backoff):
            raise ChildSpecError(id, "backoff", f"must be a Backoff, got {backoff!r}")
        for name, value in (
            ("id", id),
            ("start", start),
            ("restart", kind),
            ("shutdown", shutdown),
            ("type", type),
            ("significant", significant),
            ("backoff", backoff),
        ):
            object.__setattr__(self, name, value)

    @property
    def is_supervisor(self) -> bool:
        return self.type == "supervisor"


def check_children(flags: SupervisorFlags, children: Sequence[ChildSpec]) -> None:
    """The checks that need the flags and all children: unique ids, significant
    children only with ``auto_shutdown``, one spec for ``simple_one_for_one``."""
    seen: set[str] = set()
    for spec in children:
        if not isinstance(spec, ChildSpec):
            raise ChildSpecError(spec, "spec", f"must be a ChildSpec, got {type(spec).__name__}")
        if spec.id in seen:
            raise ChildSpecError(spec.id, "id", f"duplicate child id {spec.id!r}")
        seen.add(spec.id)
        if spec.significant and flags.auto_shutdown is AutoShutdown.NEVER:
            raise ChildSpecError(
                spec.id,
                "significant",
                "needs auto_shutdown any_significant or all_significant (bad combination)",
            )
    if flags.strategy is Strategy.SIMPLE_ONE_FOR_ONE and len(children) != 1:
        raise SupervisorFlagsError(
            "strategy",
            f"a simple_one_for_one supervisor has exactly one child spec (got {len(children)})",
        )
