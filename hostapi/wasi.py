"""``lunatic::wasi``: the WASI context of configs (HOSTAPI.md section 2.8).

Each function edits a config resource of the caller. Strings must be valid
UTF-8, and are checked, with their memory ranges, before the config id. A
process spawned with the config sees exactly these arguments (no ``argv[0]``
is added), environment variables and preopened directories; a directory that
cannot be opened makes the spawn trap.
"""

from __future__ import annotations

import os

from .abi import MASK64, Namespace, lookup_trap
from .data import ProcessConfig
from .protocols import HostProcess

__all__ = ["namespace"]

namespace = Namespace("lunatic::wasi")

_NS = "lunatic::wasi"


def _text(proc: HostProcess, ptr: int, length: int, fn: str) -> str:
    return proc.memory.read_str(ptr, length, f"{_NS}::{fn}")


def _config(proc: HostProcess, config_id: int, fn: str) -> ProcessConfig:
    config = proc.configs.get(config_id & MASK64)
    if config is None:
        raise lookup_trap(f"{_NS}::{fn}")
    return config


@namespace.function("config_add_environment_variable (i64, i32, i32, i32, i32)")
def config_add_environment_variable(
    proc: HostProcess, config_id: int, key_ptr: int, key_len: int, value_ptr: int, value_len: int
) -> None:
    fn = "config_add_environment_variable"
    key = _text(proc, key_ptr, key_len, fn)
    value = _text(proc, value_ptr, value_len, fn)
    _config(proc, config_id, fn).add_env(key, value)


@namespace.function("config_add_command_line_argument (i64, i32, i32)")
def config_add_command_line_argument(
    proc: HostProcess, config_id: int, arg_ptr: int, arg_len: int
) -> None:
    fn = "config_add_command_line_argument"
    arg = _text(proc, arg_ptr, arg_len, fn)
    _config(proc, config_id, fn).add_arg(arg)


@namespace.function("config_preopen_dir (i64, i32, i32)")
def config_preopen_dir(proc: HostProcess, config_id: int, dir_ptr: int, dir_len: int) -> None:
    """The guest sees the directory under the name given; ``~`` is the host
    user's home directory. It is only opened when a process is spawned."""
    fn = "config_preopen_dir"
    path = _text(proc, dir_ptr, dir_len, fn)
    host = os.path.expanduser("~") if path == "~" else path
    _config(proc, config_id, fn).add_preopen(path, host)
