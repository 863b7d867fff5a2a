"""``lunatic::registry``: names of processes (HOSTAPI.md section 2.4).

A name maps to a ``(node id, process id)`` pair, shared by the processes of
one environment. While a ``get_or_spawn`` holds the registry, these calls wait
for it. Names must be valid UTF-8; anything else traps.
"""

from __future__ import annotations

from typing import Any

import outcome

from .abi import MASK64, Namespace, Suspend
from .protocols import HostEnvironment, HostProcess

__all__ = ["namespace"]

namespace = Namespace("lunatic::registry")


def _name(proc: HostProcess, ptr: int, length: int, fn: str) -> str:
    return proc.memory.read_str(ptr, length, f"lunatic::registry::{fn}")


def _when_free(env: HostEnvironment, finish: Any, *args: Any) -> Any:
    """Run ``finish(*args, outcome)`` now, or once the registry is free."""
    if env.registry_busy():
        return Suspend(env.registry_wait, (), finish, args)
    return finish(*args, outcome.Value(None))


def _put(env: HostEnvironment, name: str, node: int, pid: int, _: outcome.Outcome[None]) -> None:
    env.registry_put(name, node, pid)


@namespace.function("put (i32, i32, i64, i64)", blocking=True)
def put(proc: HostProcess, name_ptr: int, name_len: int, node_id: int, pid: int) -> Any:
    """Register ``name`` (or overwrite it); the process need not exist."""
    name = _name(proc, name_ptr, name_len, "put")
    env = proc.environment
    return _when_free(env, _put, env, name, node_id & MASK64, pid & MASK64)


def _get(
    proc: HostProcess, name: str, node_ptr: int, pid_ptr: int, _: outcome.Outcome[None]
) -> int:
    found = proc.environment.registry_get(name)
    if found is None:
        return 1
    proc.memory.write_u64(node_ptr, found[0])
    proc.memory.write_u64(pid_ptr, found[1])
    return 0


@namespace.function("get (i32, i32, i32, i32) -> i32", blocking=True)
def get(proc: HostProcess, name_ptr: int, name_len: int, node_ptr: int, pid_ptr: int) -> Any:
    """0 with the node and process ids written, or 1 (nothing written)."""
    name = _name(proc, name_ptr, name_len, "get")
    return _when_free(proc.environment, _get, proc, name, node_ptr, pid_ptr)


def _remove(env: HostEnvironment, name: str, _: outcome.Outcome[None]) -> None:
    env.registry_remove(name)


@namespace.function("remove (i32, i32)", blocking=True)
def remove(proc: HostProcess, name_ptr: int, name_len: int) -> Any:
    name = _name(proc, name_ptr, name_len, "remove")
    env = proc.environment
    return _when_free(env, _remove, env, name)
