"""WAT building blocks for test guests.

:func:`guest` wraps function bodies in a module that imports every
``lunatic::process``, ``lunatic::message`` and ``lunatic::error`` function
under its own name (``$spawn``, ``$send``...), exports one page of memory and
adds a few helpers:

* ``$report(to: i64, tag: i64, value: i64)`` sends an 8-byte little-endian
  value to process ``to`` with ``tag``;
* ``$recv() -> i32`` receives any message (no timeout) and returns its kind;
* ``$read_i64() -> i64`` reads 8 bytes of the scratch message;
* ``$spawn_self(link: i64, entry_ptr: i32, entry_len: i32, params_ptr: i32,
  params_len: i32) -> i64`` spawns from this module with this config and
  returns the child's id (traps if the spawn failed).

Memory below 1024 is free for tests; the helpers use 1024-2047. Use data
segments at fixed offsets for strings.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio
import trio.testing

from hostapi.data import DataMessage, Message, ProcessConfig
from hostapi.signatures import APPENDIX_A, FuncSig
from supervisor import Context, Exit, Runtime

T = TypeVar("T")

IMPORTED_NAMESPACES = ("lunatic::process", "lunatic::message", "lunatic::error")


def import_decl(ns: str, name: str, sig: FuncSig, alias: str) -> str:
    """The WAT import of ``ns``'s function ``name`` with type ``sig``, as ``$alias``."""
    params = " ".join(map(str, sig.params))
    results = " ".join(map(str, sig.results))
    p = f" (param {params})" if params else ""
    r = f" (result {results})" if results else ""
    return f'(import "{ns}" "{name}" (func ${alias}{p}{r}))'


def import_alias(ns: str, name: str, prefix: dict[str, str] | None = None) -> str:
    return (prefix or {}).get(ns, "") + name


def namespace_imports(*namespaces: str, prefix: dict[str, str] | None = None) -> str:
    """WAT imports of every Appendix A function of ``namespaces``, each
    under its own name (after ``prefix[namespace]``, if given)."""
    return "\n".join(
        "  " + import_decl(ns, name, sig, import_alias(ns, name, prefix))
        for (ns, name), sig in APPENDIX_A.items()
        if ns in namespaces
    )


IMPORTS = namespace_imports(*IMPORTED_NAMESPACES, prefix={"lunatic::error": "error_"})

HELPERS = """
  (func $report (param $to i64) (param $tag i64) (param $value i64)
    (call $create_data (local.get $tag) (i64.const 0))
    (i64.store (i32.const 1024) (local.get $value))
    (drop (call $write_data (i32.const 1024) (i32.const 8)))
    (drop (call $send (local.get $to))))
  (func $recv (result i32)
    (call $receive (i32.const 0) (i32.const 0) (i64.const -1)))
  (func $read_i64 (result i64)
    (drop (call $read_data (i32.const 1032) (i32.const 8)))
    (i64.load (i32.const 1032)))
  (func $spawn_self (param $link i64) (param $entry i32) (param $entry_len i32)
                    (param $params i32) (param $params_len i32) (result i64)
    (if (call $spawn (local.get $link) (i64.const -1) (i64.const -1)
                     (local.get $entry) (local.get $entry_len)
                     (local.get $params) (local.get $params_len) (i32.const 1040))
      (then unreachable))
    (i64.load (i32.const 1040)))
"""


def guest(
    body: str, *, memory: str = '(memory (export "memory") 1)', extra_imports: str = ""
) -> str:
    """A WAT module with every process/message/error import, helpers and ``body``."""
    return f"(module\n{IMPORTS}\n{extra_imports}\n  {memory}\n{HELPERS}\n{body}\n)"


def param_i32(value: int) -> bytes:
    """One 17-byte spawn parameter record holding an i32."""
    return b"\x7f" + (value & ((1 << 128) - 1)).to_bytes(16, "little")


def param_i64(value: int) -> bytes:
    return b"\x7e" + (value & ((1 << 128) - 1)).to_bytes(16, "little")


def data_string(offset: int, data: bytes) -> str:
    """A data segment placing ``data`` at ``offset``."""
    escaped = "".join(f"\\{b:02x}" for b in data)
    return f'(data (i32.const {offset}) "{escaped}")'


def lunatrio(
    *args: str, cwd: pathlib.Path | None = None, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the ``lunatrio`` command to its end (``env`` adds to the environment)."""
    return subprocess.run(
        [sys.executable, "-m", "supervisor", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **env},
    )


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def result_lines(text: str) -> dict[str, str]:
    """libtest's ``test NAME ... STATUS`` lines, by test name."""
    return dict(re.findall(r"^test (.+) \.\.\. (\w+)$", text, re.MULTILINE))


async def forever(ctx: Context) -> None:
    """A Python process that waits until it is killed."""
    await trio.sleep_forever()


async def run_python(runtime: Runtime, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run ``fn`` as a Python process to completion; return its value or raise."""
    handle = await runtime.spawn_python(fn, *args)
    await handle.wait()
    assert handle.result is not None, handle.exit
    value: T = handle.result.unwrap()
    return value


def value_of(message: Message) -> int:
    """The little-endian integer in a data message (as ``$report`` sends it)."""
    assert isinstance(message, DataMessage), message
    return int.from_bytes(message.buffer, "little", signed=True)


#: A bump allocator exported as ``lunatic_alloc`` (for host-allocated results).
ALLOC = """
  (global $heap (mut i32) (i32.const 20000))
  (func (export "lunatic_alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
"""


async def reports(
    runtime: Runtime,
    wat: str,
    *params: int,
    n: int,
    config: ProcessConfig | None = None,
    entry: str = "main",
) -> tuple[list[Any], Exit]:
    """Run ``entry(to, *params)`` and collect ``n`` reports with tag 1 (8-byte
    ones as integers, others as bytes); fail at once if the guest dies first."""
    module = runtime.compile_module(wat)

    async def test(ctx: Context) -> tuple[list[Any], Exit]:
        h = await ctx.spawn(module, entry, [ctx.id, *params], config=config)
        got: list[Any] = []

        async def collect() -> None:
            for _ in range(n):
                m = await ctx.receive(1)
                assert isinstance(m, DataMessage)
                got.append(value_of(m) if len(m.buffer) == 8 else m.data)
            nursery.cancel_scope.cancel()

        async def watch() -> None:
            # a guest that dies before sending everything fails the test at once
            exit = await h.wait()
            await trio.testing.wait_all_tasks_blocked()
            if not exit.normal:
                raise AssertionError(f"main died after {len(got)} of {n} reports: {exit}")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect)
            nursery.start_soon(watch)
        return got, await h.wait()

    return await run_python(runtime, test)
