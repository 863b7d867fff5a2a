"""Every host function, called with garbage, ends at most its own process
cleanly: a trap whose message names the function (or an ordinary return),
never a Python exception escaping a host function, and the runtime carries on.

One module imports all of Appendix A and exports ``call_<i>`` forwarding its
parameters to import ``i``. Each function gets the same kinds of arguments a
confused guest might pass: pointers at and past the end of memory, lengths
that wrap, ids that do and do not exist, -1, zero. So that small ids reach
real objects, each process first makes one of everything (``$setup``): a
config, a DNS iterator, a TCP listener and a stream connected to it, a UDP
socket, an SQLite connection with a prepared statement, and a scratch
message. Addresses the garbage points at are zeros or the setup's own
loopback address, so nothing leaves the machine, and the processes run in a
temporary directory, where any file an SQLite ``open`` creates stays.
"""

from __future__ import annotations

import pathlib
import random

import pytest
import trio
import trio.testing

import supervisor
from hostapi.signatures import APPENDIX_A, ValType
from supervisor import ProcessConfig

from .guests import import_alias, namespace_imports, open_fds

FUNCTIONS = sorted(APPENDIX_A)

I32_VALUES = (0, 1, 7, 8, 64, 4096, 65528, 65535, 65536, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF)
I64_VALUES = (0, 1, 2, 3, 42, 1 << 32, (1 << 63) - 1, -1, -(1 << 63))
VECTORS_PER_FUNCTION = 10

# A host function that raised something other than a deliberate trap: see
# hostapi.ffi._trap_address.
UNEXPECTED = "host function "


_WIRE = {ValType.F64: ValType.I64, ValType.F32: ValType.I32}


def _arg(kind: ValType, index: int) -> str:
    if kind in _WIRE:
        return f"({kind}.reinterpret_{_WIRE[kind]} (local.get {index}))"
    return f"(local.get {index})"


# Memory of the setup: strings from 1024, results below.
SETUP_DATA = {
    1024: "127.0.0.1:0",
    1040: "\\7f\\00\\00\\01",
    1048: ":memory:",
    1064: "SELECT 1, 'a'",
}
SETUP = """
  (func $setup
    (drop (call $create_config))
    (drop (call $resolve (i32.const 1024) (i32.const 11) (i64.const -1) (i32.const 512)))
    (drop (call $tcp_bind (i32.const 4) (i32.const 1040) (i32.const 0) (i32.const 0)
                          (i32.const 0) (i32.const 520)))
    (drop (call $tcp_local_addr (i64.load (i32.const 520)) (i32.const 528)))
    (drop (call $resolve_next (i64.load (i32.const 528)) (i32.const 536) (i32.const 540)
                              (i32.const 556) (i32.const 560) (i32.const 564)))
    (drop (call $tcp_connect (i32.const 4) (i32.const 1040) (i32.load16_u (i32.const 556))
                             (i32.const 0) (i32.const 0) (i64.const -1) (i32.const 568)))
    (drop (call $udp_bind (i32.const 4) (i32.const 1040) (i32.const 0) (i32.const 0)
                          (i32.const 0) (i32.const 576)))
    (drop (call $open (i32.const 1048) (i32.const 8) (i32.const 584)))
    (drop (call $query_prepare (i64.load (i32.const 584)) (i32.const 1064) (i32.const 13)))
    (call $create_data (i64.const 7) (i64.const 16))
    (drop (call $write_data (i32.const 1024) (i32.const 11))))
"""
# Imports under their own names; only distributed's clash with others.
PREFIX = {"lunatic::distributed": "distributed_"}


def _module_text() -> str:
    data = [f'  (data (i32.const {at}) "{text}")' for at, text in SETUP_DATA.items()]
    exports = []
    for i, key in enumerate(FUNCTIONS):
        ns, name = key
        sig = APPENDIX_A[key]
        # Floats arrive as the integers of their bits (spawn passes integers).
        wire = [_WIRE.get(t, t) for t in sig.params]
        args = " ".join(_arg(t, j) for j, t in enumerate(sig.params))
        call = f"(call ${import_alias(ns, name, PREFIX)} {args})"
        body = f"(drop {call})" if sig.results else call
        w = f" (param {' '.join(str(t) for t in wire)})" if wire else ""
        exports.append(f'  (func (export "call_{i}"){w} (call $setup) {body})')
    return "\n".join(
        [
            "(module",
            namespace_imports(*{ns for ns, _ in FUNCTIONS}, prefix=PREFIX),
            '  (memory (export "memory") 1)',
            *data,
            SETUP,
            # Host-allocated results (SQLite, certificates) land in the middle.
            '  (func (export "lunatic_alloc") (param i32) (result i32) (i32.const 32768))',
            '  (func (export "_lunatic_catch_trap") (param i32 i32) (result i32) unreachable)',
            *exports,
            ")",
        ]
    )


def _vectors(key: tuple[str, str]) -> list[list[int]]:
    sig = APPENDIX_A[key]
    rng = random.Random("::".join(key))  # the same garbage on every run
    pools = [I32_VALUES if k in (ValType.I32, ValType.F32) else I64_VALUES for k in sig.params]
    vectors = [[0] * len(pools), [-1] * len(pools)]
    while len(vectors) < VECTORS_PER_FUNCTION:
        vectors.append([rng.choice(pool) for pool in pools])
    return vectors


async def test_garbage_arguments_end_only_the_calling_process_with_a_clear_reason(
    autojump_clock: trio.testing.MockClock,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    config = ProcessConfig.privileged(preopens=[(".", ".")])
    fds = open_fds()
    unclear: list[str] = []
    ended = blocked = 0
    async with supervisor.open_runtime() as rt:
        module = rt.compile_module(_module_text())

        async def one(i: int, args: list[int]) -> None:
            nonlocal ended, blocked
            ns, name = FUNCTIONS[i]
            handle = await rt.spawn(module, f"call_{i}", args, config=config)
            # Blocking calls (receive, sleep, accept...) stop at the deadline.
            with trio.move_on_after(30):
                exit = await handle.wait()
                ended += 1
                if UNEXPECTED in exit.detail or (not exit.normal and not exit.detail):
                    unclear.append(f"{ns}::{name}{tuple(args)}: {exit}")
                return
            blocked += 1
            handle.kill()
            await handle.wait()

        async with trio.open_nursery() as nursery:
            for i, key in enumerate(FUNCTIONS):
                for args in _vectors(key):
                    nursery.start_soon(one, i, args)

        # The runtime still works.
        ok = await rt.spawn(rt.compile_module('(module (func (export "go")))'), "go")
        assert (await ok.wait()).normal

    assert not unclear, "\n".join(unclear)
    assert ended + blocked == len(FUNCTIONS) * VECTORS_PER_FUNCTION
    assert ended > blocked  # most garbage is refused at once
    assert open_fds() == fds
