"""Supervision trees declared in TOML, for ``lunatrio supervise``.

The format uses OTP's names::

    [supervisor]
    id = "root"                  # default "root"
    strategy = "one_for_one"     # one_for_all, rest_for_one, simple_one_for_one
    intensity = 3                # default 1
    period = 5                   # seconds, default 5
    auto_shutdown = "never"      # any_significant, all_significant

    [[supervisor.children]]
    id = "worker"
    module = "worker.wat"        # .wasm or .wat, relative to this file
    entry = "main"               # default "_start"
    params = [1, 2]              # converted to the entry's parameter types
    restart = "permanent"        # transient, temporary
    shutdown = 5                 # seconds, "brutal_kill" or "infinity"
    type = "worker"              # or "supervisor", with its own strategy,
    significant = false          # intensity, period and children

A ``simple_one_for_one`` supervisor has exactly one child spec, the template
of its instances, and an ``instances`` count of children to start with.

:func:`load_tree` checks everything before anything runs; a mistake raises
:class:`TreeError` naming the key path (``supervisor.children[1].restart``)
and, for syntax errors, the line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hostapi.signatures import ValType
from strategies import Strategy

from ._engine import CompileError
from ._specs import (
    ChildSpec,
    ChildSpecError,
    SupervisorChild,
    SupervisorFlags,
    SupervisorFlagsError,
    WasmChild,
    check_children,
)

if TYPE_CHECKING:
    from hostapi.ffi import Module

__all__ = ["Tree", "TreeError", "load_tree"]

_SUPERVISOR_KEYS = {"id", "strategy", "intensity", "period", "auto_shutdown", "children"}
_CHILD_KEYS = {
    "id",
    "module",
    "entry",
    "params",
    "restart",
    "shutdown",
    "type",
    "significant",
    "instances",
}
_CHILD_SUPERVISOR_KEYS = _CHILD_KEYS - {"module", "entry", "params"} | _SUPERVISOR_KEYS


class TreeError(ValueError):
    """A tree file that cannot be used; the message names the key path."""


@dataclass(frozen=True)
class Tree:
    """A loaded tree: the root supervisor's id, flags, children, and how many
    instances to start under a simple_one_for_one root."""

    name: str
    flags: SupervisorFlags
    children: tuple[ChildSpec, ...]
    instances: int


def load_tree(path: str | os.PathLike[str], load_module: Callable[[str], Module]) -> Tree:
    """Read and check a tree file; ``load_module(path)`` compiles a module."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise TreeError(f"tree file {path!r} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise TreeError(f"{path}: invalid TOML: {e}") from None
    except OSError as e:
        raise TreeError(f"{path}: {e.strerror or e}") from None
    base = os.path.dirname(os.path.abspath(path))
    root = doc.get("supervisor")
    if not isinstance(root, dict):
        raise TreeError("supervisor: missing [supervisor] table")
    extra = set(doc) - {"supervisor"}
    if extra:
        raise TreeError(f"{sorted(extra)[0]}: unknown top-level key (only [supervisor])")
    loader = _Loader(base, load_module)
    flags, children, instances = loader.supervisor(root, "supervisor", _SUPERVISOR_KEYS)
    name = root.get("id", "root")
    if not isinstance(name, str) or not name or "/" in name:
        raise TreeError("supervisor.id: must be a non-empty string without '/'")
    return Tree(name, flags, children, instances)


class _Loader:
    def __init__(self, base: str, load_module: Callable[[str], Module]) -> None:
        self.base = base
        self.load_module = load_module

    def supervisor(
        self, table: dict[str, Any], where: str, allowed: set[str]
    ) -> tuple[SupervisorFlags, tuple[ChildSpec, ...], int]:
        _known(table, where, allowed)
        try:
            flags = SupervisorFlags(
                strategy=table.get("strategy", "one_for_one"),
                intensity=table.get("intensity", 1),
                period=table.get("period", 5),
                auto_shutdown=table.get("auto_shutdown", "never"),
            )
        except SupervisorFlagsError as e:
            raise TreeError(f"{where}.{e.field}: {e.message}") from None
        children_list = table.get("children", [])
        if not isinstance(children_list, list) or not all(
            isinstance(c, dict) for c in children_list
        ):
            raise TreeError(f"{where}.children: must be an array of tables ([[...children]])")
        children = tuple(
            self.child(c, f"{where}.children[{i}]") for i, c in enumerate(children_list)
        )
        simple = flags.strategy is Strategy.SIMPLE_ONE_FOR_ONE
        instances = 0
        if simple:
            if len(children) != 1:
                raise TreeError(
                    f"{where}.children: a simple_one_for_one supervisor has exactly one child spec "
                    f"(got {len(children)})"
                )
            instances = children_list[0].get("instances", 0)
            if isinstance(instances, bool) or not isinstance(instances, int) or instances < 0:
                raise TreeError(f"{where}.children[0].instances: must be an integer >= 0")
        else:
            for i, c in enumerate(children_list):
                if "instances" in c:
                    raise TreeError(
                        f"{where}.children[{i}].instances: only for simple_one_for_one supervisors"
                    )
        try:
            check_children(flags, children)
        except ChildSpecError as e:
            # the first child with that id, or for a duplicate the second
            at = [i for i, spec in enumerate(children) if spec.id == e.child][e.field == "id"]
            raise TreeError(f"{where}.children[{at}].{e.field}: {e.message}") from None
        return flags, children, instances

    def child(self, table: dict[str, Any], where: str) -> ChildSpec:
        kind = table.get("type", "worker")
        if kind not in ("worker", "supervisor"):
            raise TreeError(f"{where}.type: must be worker or supervisor (got {kind!r})")
        cid = table.get("id")
        if not isinstance(cid, str) or not cid:
            raise TreeError(f"{where}.id: missing or not a non-empty string")
        if kind == "supervisor":
            flags, children, instances = self.supervisor(table, where, _CHILD_SUPERVISOR_KEYS)
            if instances:
                raise TreeError(
                    f"{where}: instances of a nested simple_one_for_one are not supported"
                )
            start: Any = SupervisorChild(flags, children)
        else:
            _known(table, where, _CHILD_KEYS)
            start = self.wasm_start(table, where)
        try:
            return ChildSpec(
                cid,
                start,
                restart=table.get("restart", "permanent"),
                shutdown=table.get("shutdown"),
                type=kind,
                significant=table.get("significant", False),
            )
        except ChildSpecError as e:
            raise TreeError(f"{where}.{e.field}: {e.message}") from None

    def wasm_start(self, table: dict[str, Any], where: str) -> WasmChild:
        module_path = table.get("module")
        if not isinstance(module_path, str) or not module_path:
            raise TreeError(f"{where}.module: missing (a .wasm or .wat path)")
        full = os.path.join(self.base, module_path)
        try:
            module = self.load_module(full)
        except FileNotFoundError:
            raise TreeError(
                f"{where}.module: {module_path!r} not found (looked at {full})"
            ) from None
        except (CompileError, OSError) as e:
            raise TreeError(f"{where}.module: cannot load {module_path!r}: {e}") from None
        entry = table.get("entry", "_start")
        if not isinstance(entry, str):
            raise TreeError(f"{where}.entry: must be a string")
        sig = module.functions.get(entry)
        if entry not in module.functions or sig is None:
            exports = ", ".join(sorted(module.functions)) or "none"
            raise TreeError(
                f"{where}.entry: {module_path} has no usable export {entry!r} (exports: {exports})"
            )
        params = table.get("params", [])
        if not isinstance(params, list) or any(
            isinstance(p, bool) or not isinstance(p, int) for p in params
        ):
            raise TreeError(f"{where}.params: must be an array of integers")
        if sig.results or any(
            t not in (ValType.I32, ValType.I64, ValType.V128) for t in sig.params
        ):
            raise TreeError(
                f"{where}.entry: {entry} has type {sig}; "
                "an entry takes integers and returns nothing"
            )
        if len(params) != len(sig.params):
            raise TreeError(
                f"{where}.params: {entry} takes {len(sig.params)} parameters {sig}, "
                f"got {len(params)}"
            )
        for i, (t, p) in enumerate(zip(sig.params, params, strict=True)):
            bits = {ValType.I32: 32, ValType.I64: 64, ValType.V128: 128}[t]
            if not -(1 << (bits - 1)) <= p < (1 << bits):
                raise TreeError(f"{where}.params[{i}]: {p} does not fit an {t}")
        return WasmChild(module, entry, params)


def _known(table: dict[str, Any], where: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise TreeError(f"{where}.{key}: unknown key (valid: {', '.join(sorted(allowed))})")
