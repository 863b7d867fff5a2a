"""``lunatic::process``: modules, configs, spawning and signals (section 2.3).

The checks of ``spawn`` run in lunatic's order (section 1.3), because some
failures trap in the parent while others return an error id: permission,
initialization, config, module, process id, WASI preopens, entry name,
parameters. The instantiation itself is awaited by the driver, so a blocking
start function suspends the parent, as in lunatic.
"""

from __future__ import annotations

import os
from typing import Final

import outcome

from .abi import MASK64, HostTrap, Namespace, Suspend, lookup_trap, op_trap, to_signed64
from .data import ProcessConfig, SpawnRequest
from .ffi import Module
from .protocols import HostProcess, SpawnError
from .signatures import ValType

__all__ = ["decode_params", "encode_params", "namespace"]

namespace = Namespace("lunatic::process")

_NS: Final = "lunatic::process"
_PARAM_TYPES: Final = {0x7F: ValType.I32, 0x7E: ValType.I64, 0x7B: ValType.V128}
_PARAM_CODES: Final = {t: c for c, t in _PARAM_TYPES.items()}


def decode_params(raw: bytes) -> list[tuple[ValType, int]]:
    """Decode 17-byte parameter records (type code + 128-bit little-endian value).

    An i32 takes the low 32 bits and an i64 the low 64, as signed values. An
    unknown type code traps, then a trailing partial record does.
    """
    out: list[tuple[ValType, int]] = []
    whole = len(raw) - len(raw) % 17
    for i in range(0, whole, 17):
        kind = _PARAM_TYPES.get(raw[i])
        if kind is None:
            raise HostTrap("Unsupported type ID")
        value = int.from_bytes(raw[i + 1 : i + 17], "little")
        if kind == ValType.I32:
            value &= 0xFFFF_FFFF
            value -= (value >> 31) << 32
        elif kind == ValType.I64:
            value = to_signed64(value)
        out.append((kind, value))
    if whole != len(raw):
        raise HostTrap(
            f"Params array must be in chunks of 17 bytes, but {len(raw) - whole} bytes remained"
        )
    return out


def encode_params(params: list[tuple[ValType, int]]) -> bytes:
    """The inverse of :func:`decode_params` (values sign-extended to 128 bits)."""
    out = bytearray()
    for kind, value in params:
        code = _PARAM_CODES.get(kind)
        if code is None:
            raise ValueError(f"{kind} cannot be passed to a spawned process")
        out.append(code)
        out += (value & ((1 << 128) - 1)).to_bytes(16, "little")
    return bytes(out)


def _config(proc: HostProcess, config_id: int, fn: str) -> ProcessConfig:
    config = proc.configs.get(config_id & MASK64)
    if config is None:
        raise lookup_trap(f"{_NS}::{fn}: Config ID doesn't exist")
    return config


# -- modules ---------------------------------------------------------------


def _finish_compile(proc: HostProcess, id_ptr: int, result: outcome.Outcome[Module]) -> int:
    try:
        module = result.unwrap()
    except SpawnError as e:
        proc.memory.write_u64(id_ptr, proc.errors.add(str(e)))
        return 1
    proc.memory.write_u64(id_ptr, proc.modules.add(module))
    return 0


@namespace.function("compile_module (i32, i32, i32) -> i32", blocking=True)
def compile_module(proc: HostProcess, ptr: int, length: int, id_ptr: int) -> int | Suspend:
    """Compile Wasm bytes against every host function.

    -1 without permission; 0 with a module id, or 1 with an error id, at
    ``id_ptr``. Compilation runs off the Trio thread (lunatic blocks its
    executor, section 6.10), so other processes keep running.
    """
    if not proc.config.can_compile_modules:
        return -1
    wasm = proc.memory.read(ptr, length)
    return Suspend(proc.compile, (wasm,), _finish_compile, (proc, id_ptr))


@namespace.function("drop_module (i64)")
def drop_module(proc: HostProcess, module_id: int) -> None:
    if proc.modules.remove(module_id) is None:
        raise lookup_trap(f"{_NS}::drop_module: Module ID doesn't exist")


# -- configs -----------------------------------------------------------------


@namespace.function("create_config () -> i64")
def create_config(proc: HostProcess) -> int:
    """A config with no permissions and no limits; -1 without permission."""
    if not proc.config.can_create_configs:
        return -1
    return proc.configs.add(ProcessConfig())


@namespace.function("drop_config (i64)")
def drop_config(proc: HostProcess, config_id: int) -> None:
    if proc.configs.remove(config_id) is None:
        raise lookup_trap(f"{_NS}::drop_config: Config ID doesn't exist")


@namespace.function("config_set_max_memory (i64, i64)")
def config_set_max_memory(proc: HostProcess, config_id: int, max_memory: int) -> None:
    _config(proc, config_id, "config_set_max_memory").max_memory = max_memory & MASK64


@namespace.function("config_get_max_memory (i64) -> i64")
def config_get_max_memory(proc: HostProcess, config_id: int) -> int:
    return _config(proc, config_id, "config_get_max_memory").max_memory


@namespace.function("config_set_max_fuel (i64, i64)")
def config_set_max_fuel(proc: HostProcess, config_id: int, max_fuel: int) -> None:
    """Fuel in units of 100 000 instructions; 0 means unlimited."""
    _config(proc, config_id, "config_set_max_fuel").max_fuel = max_fuel & MASK64


@namespace.function("config_get_max_fuel (i64) -> i64")
def config_get_max_fuel(proc: HostProcess, config_id: int) -> int:
    return _config(proc, config_id, "config_get_max_fuel").max_fuel


@namespace.function("config_can_compile_modules (i64) -> i32")
def config_can_compile_modules(proc: HostProcess, config_id: int) -> int:
    return int(_config(proc, config_id, "config_can_compile_modules").can_compile_modules)


@namespace.function("config_set_can_compile_modules (i64, i32)")
def config_set_can_compile_modules(proc: HostProcess, config_id: int, can: int) -> None:
    _config(proc, config_id, "config_set_can_compile_modules").can_compile_modules = can != 0


@namespace.function("config_can_create_configs (i64) -> i32")
def config_can_create_configs(proc: HostProcess, config_id: int) -> int:
    return int(_config(proc, config_id, "config_can_create_configs").can_create_configs)


@namespace.function("config_set_can_create_configs (i64, i32)")
def config_set_can_create_configs(proc: HostProcess, config_id: int, can: int) -> None:
    _config(proc, config_id, "config_set_can_create_configs").can_create_configs = can != 0


@namespace.function("config_can_spawn_processes (i64) -> i32")
def config_can_spawn_processes(proc: HostProcess, config_id: int) -> int:
    return int(_config(proc, config_id, "config_can_spawn_processes").can_spawn_processes)


@namespace.function("config_set_can_spawn_processes (i64, i32)")
def config_set_can_spawn_processes(proc: HostProcess, config_id: int, can: int) -> None:
    _config(proc, config_id, "config_set_can_spawn_processes").can_spawn_processes = can != 0


# -- spawning ----------------------------------------------------------------


def _spawn_request(
    proc: HostProcess,
    fn: str,
    link: int,
    config_id: int,
    module_id: int,
    func_ptr: int,
    func_len: int,
    params_ptr: int,
    params_len: int,
) -> SpawnRequest:
    """Steps 1-10 of section 1.3; every failure here traps in the caller."""
    context = f"{_NS}::{fn}"
    if not proc.config.can_spawn_processes:
        raise HostTrap("Process doesn't have permissions to spawn sub-processes")
    if not proc.initialized:
        raise HostTrap("Cannot spawn process during module initialization")
    config = proc.config if config_id == -1 else _config(proc, config_id, fn).copy()
    if module_id == -1:
        module = proc.module
    else:
        found_module = proc.modules.get(module_id & MASK64)
        if found_module is None:
            raise lookup_trap(f"{context}: Module ID doesn't exist")
        module = found_module
    pid = proc.environment.allocate_pid()
    for guest, host in config.preopens:
        if not os.path.isdir(os.path.expanduser(host)):
            raise op_trap(f"cannot preopen {host!r} as {guest!r}: not a directory", context)
    entry = proc.memory.read_str(func_ptr, func_len, context)
    params = decode_params(proc.memory.read(params_ptr, params_len))
    return SpawnRequest(
        pid=pid, config=config, module=module, entry=entry, params=params, link=link
    )


def _finish_spawn(proc: HostProcess, id_ptr: int, result: outcome.Outcome[int]) -> int:
    try:
        pid = result.unwrap()
    except SpawnError as e:
        proc.memory.write_u64(id_ptr, proc.errors.add(str(e)))
        return 1
    proc.memory.write_u64(id_ptr, pid)
    return 0


@namespace.function("spawn (i64, i64, i64, i32, i32, i32, i32, i32) -> i32", blocking=True)
def spawn(
    proc: HostProcess,
    link: int,
    config_id: int,
    module_id: int,
    func_ptr: int,
    func_len: int,
    params_ptr: int,
    params_len: int,
    id_ptr: int,
) -> Suspend:
    """Spawn a process; 0 with its id, or 1 with an error id, at ``id_ptr``.

    ``link`` != 0 links the child to the caller with that tag; -1 for the
    config or the module means the caller's own. A missing or mismatched
    entry export does not fail the spawn: the child fails at once instead.
    """
    request = _spawn_request(
        proc, "spawn", link, config_id, module_id, func_ptr, func_len, params_ptr, params_len
    )
    return Suspend(proc.spawn, (request,), _finish_spawn, (proc, id_ptr))


def _finish_get_or_spawn(
    proc: HostProcess,
    node_id_ptr: int,
    id_ptr: int,
    result: outcome.Outcome[tuple[int, int, int]],
) -> int:
    try:
        code, node, pid = result.unwrap()
    except SpawnError as e:
        proc.memory.write_u64(node_id_ptr, 0)
        proc.memory.write_u64(id_ptr, proc.errors.add(str(e)))
        return 1
    proc.memory.write_u64(node_id_ptr, node)
    proc.memory.write_u64(id_ptr, pid)
    return code


@namespace.function(
    "get_or_spawn (i32, i32, i64, i64, i64, i32, i32, i32, i32, i32, i32) -> i32", blocking=True
)
def get_or_spawn(
    proc: HostProcess,
    name_ptr: int,
    name_len: int,
    link: int,
    config_id: int,
    module_id: int,
    func_ptr: int,
    func_len: int,
    params_ptr: int,
    params_len: int,
    node_id_ptr: int,
    id_ptr: int,
) -> int | Suspend:
    """Look ``name`` up, or spawn a process and register it, atomically.

    Returns 2 with the registered (node, id), 0 with the new process, or 1
    with an error id. Only a successful spawn is registered (fix of lunatic's
    section 6.4). The registry is re-checked under its lock by the runtime.
    """
    context = f"{_NS}::get_or_spawn"
    name = proc.memory.read_str(name_ptr, name_len, context)
    found = proc.environment.registry_get(name)
    if found is not None:
        proc.memory.write_u64(node_id_ptr, found[0])
        proc.memory.write_u64(id_ptr, found[1])
        return 2
    request = _spawn_request(
        proc,
        "get_or_spawn",
        link,
        config_id,
        module_id,
        func_ptr,
        func_len,
        params_ptr,
        params_len,
    )
    return Suspend(
        proc.get_or_spawn, (name, request), _finish_get_or_spawn, (proc, node_id_ptr, id_ptr)
    )


# -- process control -----------------------------------------------------------


@namespace.function("sleep_ms (i64)", blocking=True)
def sleep_ms(proc: HostProcess, ms: int) -> Suspend:
    """Suspend for ``ms`` milliseconds; a yield point (signals take effect)."""
    return Suspend(proc.sleep, (ms & MASK64,), _finish_nothing)


def _finish_nothing(result: outcome.Outcome[None]) -> None:
    result.unwrap()


@namespace.function("die_when_link_dies (i32)")
def die_when_link_dies(proc: HostProcess, flag: int) -> None:
    proc.set_die_when_link_dies(flag != 0)


@namespace.function("process_id () -> i64")
def process_id(proc: HostProcess) -> int:
    return proc.id


@namespace.function("environment_id () -> i64")
def environment_id(proc: HostProcess) -> int:
    return proc.environment.id


@namespace.function("link (i64, i64)")
def link(proc: HostProcess, tag: int, pid: int) -> None:
    proc.link(tag, pid & MASK64)


@namespace.function("unlink (i64)")
def unlink(proc: HostProcess, pid: int) -> None:
    proc.unlink(pid & MASK64)


@namespace.function("monitor (i64)")
def monitor(proc: HostProcess, pid: int) -> None:
    proc.monitor(pid & MASK64)


@namespace.function("stop_monitoring (i64)")
def stop_monitoring(proc: HostProcess, pid: int) -> None:
    proc.stop_monitoring(pid & MASK64)


@namespace.function("kill (i64)")
def kill(proc: HostProcess, pid: int) -> None:
    proc.kill(pid & MASK64)


@namespace.function("exists (i64) -> i32")
def exists(proc: HostProcess, pid: int) -> int:
    return 1 if proc.environment.exists(pid & MASK64) else 0
