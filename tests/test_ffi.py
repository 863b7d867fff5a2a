"""The ctypes layer over wasmtime's async C API, tested on its own."""

from __future__ import annotations

from typing import Any

import outcome
import pytest

from hostapi import ffi
from hostapi.abi import HostTrap, Suspend
from hostapi.signatures import FuncSig, ValType
from hostapi.wasmbin import read_module_info

I32, I64, F64 = ValType.I32, ValType.I64, ValType.F64


class Owner:
    """The least a fiber's owner must offer host callbacks."""

    def __init__(self, store: ffi.Store) -> None:
        self.memory = store.memory
        self.last_trap: str | None = None
        self.calls: list[tuple[Any, ...]] = []


@pytest.fixture(scope="module")
def linker() -> ffi.Linker:
    engine = ffi.Engine(ffi.EngineSettings(fuel_slice=10_000))
    linker = ffi.Linker(engine)
    linker.define_wasi()

    def record(owner: Owner, *args: Any) -> int:
        owner.calls.append(args)
        return len(owner.calls)

    def wide(owner: Owner, a: int) -> int:
        return a

    def fail(owner: Owner) -> None:
        raise HostTrap("refused by the host")

    def bug(owner: Owner) -> None:
        raise KeyError("oops")

    def later(owner: Owner, x: int) -> Suspend:
        async def never() -> None:  # not awaited in these tests: resumed by hand
            raise AssertionError

        return Suspend(never, (), lambda r: r.unwrap() + x)

    def poke(owner: Owner, ptr: int) -> None:
        owner.memory.write_u64(ptr, 0x0102030405060708)

    linker.define("test", "record", FuncSig((I32, I64, F64), (I32,)), record)
    linker.define("test", "wide", FuncSig((I64,), (I64,)), wide)
    linker.define("test", "wide32", FuncSig((I32,), (I32,)), wide)
    linker.define("test", "fail", FuncSig((), ()), fail)
    linker.define("test", "bug", FuncSig((), ()), bug)
    linker.define("test", "later", FuncSig((I32,), (I32,)), later, blocking=True)
    linker.define("test", "poke", FuncSig((I32,), ()), poke)
    return linker


WAT = """
(module
  (import "test" "record" (func $record (param i32 i64 f64) (result i32)))
  (import "test" "wide" (func $wide (param i64) (result i64)))
  (import "test" "wide32" (func $wide32 (param i32) (result i32)))
  (import "test" "fail" (func $fail))
  (import "test" "bug" (func $bug))
  (import "test" "later" (func $later (param i32) (result i32)))
  (import "test" "poke" (func $poke (param i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "record") (result i32)
    (drop (call $record (i32.const -1) (i64.const -2) (f64.const 1.5)))
    (call $record (i32.const 7) (i64.const 9223372036854775807) (f64.const -0.25)))
  (func (export "wide") (param i64) (result i64) (call $wide (local.get 0)))
  (func (export "wide32") (param i32) (result i32) (call $wide32 (local.get 0)))
  (func (export "fail") (call $fail))
  (func (export "bug") (call $bug))
  (func (export "later") (result i32) (call $later (i32.const 5)))
  (func (export "poke") (result i64) (call $poke (i32.const 8)) (i64.load (i32.const 8)))
  (func (export "grow_poke") (result i64)
    (call $poke (i32.const 8))
    (drop (memory.grow (i32.const 12)))
    (call $poke (i32.const 786440))
    (i64.add (i64.load (i32.const 8)) (i64.load (i32.const 786440))))
  (func (export "exit") (call $exit (i32.const 3)))
  (func (export "trap") unreachable)
  (func (export "spin") (param $n i32) (result i32) (local $i i32)
    (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
             (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i))
  (func (export "v128") (param v128) (result i64) (i64x2.extract_lane 1 (local.get 0))))
"""


@pytest.fixture(scope="module")
def module(linker: ffi.Linker) -> ffi.Module:
    return ffi.Module(linker, ffi.wat_to_wasm(WAT), "test")


def _store(linker: ffi.Linker, module: ffi.Module) -> tuple[ffi.Store, Owner]:
    store = ffi.Store(linker.engine, max_memory=1 << 20, fuel=None, wasi=ffi.WasiSpec())
    owner = Owner(store)
    fib = store.instantiate(module)
    assert fib.step(owner) is True
    assert fib.result().kind == "ok"
    fib.close()
    store.instantiated()
    return store, owner


def _run(
    store: ffi.Store, owner: Owner, name: str, sig: FuncSig, args: list[Any]
) -> ffi.CallResult:
    fib = store.call(name, sig, args)
    assert fib is not None
    try:
        while (r := fib.step(owner)) is not True:
            assert r is None, "unexpected suspension"
        return fib.result()
    finally:
        fib.close()


def test_sync_host_functions_decode_arguments_and_return_results(
    linker: ffi.Linker, module: ffi.Module
) -> None:
    store, owner = _store(linker, module)
    r = _run(store, owner, "record", FuncSig((), (I32,)), [])
    assert r.kind == "ok" and r.values == (2,)
    # i32 arrives unsigned, i64 signed, f64 as a float
    assert owner.calls == [(0xFFFF_FFFF, -2, 1.5), (7, 2**63 - 1, -0.25)]
    store.close()


@pytest.mark.parametrize("value", [0, 1, -1, 2**63 - 1, -(2**63)])
def test_i64_results_keep_their_bits(linker: ffi.Linker, module: ffi.Module, value: int) -> None:
    store, owner = _store(linker, module)
    assert _run(store, owner, "wide", FuncSig((I64,), (I64,)), [value]).values == (value,)
    store.close()


@pytest.mark.parametrize(("value", "back"), [(-1, -1), (2**31, -(2**31)), (5, 5)])
def test_i32_results_are_truncated_to_32_bits(
    linker: ffi.Linker, module: ffi.Module, value: int, back: int
) -> None:
    store, owner = _store(linker, module)
    assert _run(store, owner, "wide32", FuncSig((I32,), (I32,)), [value]).values == (back,)
    store.close()


def test_a_host_trap_ends_the_call_with_its_message(linker: ffi.Linker, module: ffi.Module) -> None:
    store, owner = _store(linker, module)
    r = _run(store, owner, "fail", FuncSig((), ()), [])
    assert r.kind == "error"
    assert owner.last_trap == "refused by the host"
    r = _run(store, owner, "bug", FuncSig((), ()), [])
    assert r.kind == "error"
    assert owner.last_trap == "host function test::bug failed: KeyError: 'oops'"
    store.close()


def test_guest_traps_and_exits_are_told_apart(linker: ffi.Linker, module: ffi.Module) -> None:
    store, owner = _store(linker, module)
    r = _run(store, owner, "trap", FuncSig((), ()), [])
    assert (r.kind, r.trap_code) == ("trap", "unreachable")
    r = _run(store, owner, "exit", FuncSig((), ()), [])
    assert (r.kind, r.status) == ("exit", 3)
    store.close()


def test_a_blocking_host_call_suspends_until_resumed(
    linker: ffi.Linker, module: ffi.Module
) -> None:
    store, owner = _store(linker, module)
    fib = store.call("later", FuncSig((), (I32,)), [])
    assert fib is not None
    pending = fib.step(owner)
    assert pending is not None and pending is not True
    assert fib.step(owner) is None  # still waiting: polling again does not finish
    pending.resume(outcome.Value(10))
    assert fib.step(owner) is True
    assert fib.result().values == (15,)
    fib.close()
    fib.close()  # idempotent
    assert ffi.live_pending() == 0
    store.close()


def test_a_failed_operation_becomes_a_trap(linker: ffi.Linker, module: ffi.Module) -> None:
    store, owner = _store(linker, module)
    fib = store.call("later", FuncSig((), (I32,)), [])
    assert fib is not None
    pending = fib.step(owner)
    assert isinstance(pending, object) and pending not in (None, True)
    pending.resume(outcome.Error(OSError("socket closed")))  # type: ignore[union-attr]
    assert fib.step(owner) is True
    assert fib.result().kind == "error"
    assert owner.last_trap == "host function test::later failed: OSError: socket closed"
    fib.close()
    store.close()


def test_deleting_a_suspended_call_releases_its_pending_operation(
    linker: ffi.Linker, module: ffi.Module
) -> None:
    store, owner = _store(linker, module)
    fib = store.call("later", FuncSig((), (I32,)), [])
    assert fib is not None
    assert fib.step(owner) not in (None, True)
    assert ffi.live_pending() == 1
    fib.close()
    assert ffi.live_pending() == 0
    # the store is still usable
    assert _run(store, owner, "wide", FuncSig((I64,), (I64,)), [4]).values == (4,)
    store.close()
    store.close()  # idempotent


def test_fuel_slices_make_a_busy_guest_yield(linker: ffi.Linker, module: ffi.Module) -> None:
    store, owner = _store(linker, module)
    fib = store.call("spin", FuncSig((I32,), (I32,)), [1_000_000])
    assert fib is not None
    yields = 0
    while (r := fib.step(owner)) is not True:
        assert r is None
        yields += 1
    assert fib.result().values == (1_000_000,)
    assert yields > 100  # slices of 10 000 instructions
    fib.close()
    store.close()


def test_guest_memory_is_bounds_checked(linker: ffi.Linker, module: ffi.Module) -> None:
    store, owner = _store(linker, module)
    mem = store.memory
    assert mem.size() == 65536
    mem.write(65530, b"abcdef")
    assert mem.read(65530, 6) == b"abcdef"
    assert mem.read(65536, 0) == b""  # zero-length at the end is fine
    with pytest.raises(ffi.GuestMemoryError, match=r"\[65531, 65537\)"):
        mem.read(65531, 6)
    with pytest.raises(ffi.GuestMemoryError):
        mem.check(65537, 0)
    mem.write_u64(0, 2**64 - 1)
    mem.write_u32(8, 7)
    assert mem.read_i64s(0, 2) == [-1, 7]
    mem.copy_out(100, 4, bytearray(b"xyz"), 1, 2)
    assert mem.read(100, 2) == b"yz"
    assert _run(store, owner, "poke", FuncSig((), (I64,)), []).values == (0x0102030405060708,)
    store.close()


def test_host_calls_see_memory_the_guest_grew_since_the_previous_one(
    linker: ffi.Linker, module: ffi.Module
) -> None:
    store, owner = _store(linker, module)
    # Growing from 1 to 13 pages moves the memory; the second poke writes
    # past the old end, through a view of the new mapping.
    result = _run(store, owner, "grow_poke", FuncSig((), (I64,)), [])
    assert result.kind == "ok", result
    assert result.values == (2 * 0x0102030405060708,)
    assert store.memory.read(786440, 8) == (0x0102030405060708).to_bytes(8, "little")
    store.close()


def test_v128_parameters_reach_the_guest(linker: ffi.Linker, module: ffi.Module) -> None:
    store, owner = _store(linker, module)
    sig = FuncSig((ValType.V128,), (I64,))
    assert _run(store, owner, "v128", sig, [(5 << 64) | 1]).values == (5,)
    store.close()


def test_calling_a_missing_export_returns_none(linker: ffi.Linker, module: ffi.Module) -> None:
    store, _ = _store(linker, module)
    assert store.call("nope", FuncSig((), ()), []) is None
    assert store.call("memory", FuncSig((), ()), []) is None
    store.close()


def test_module_info_is_read_from_the_binary(module: ffi.Module) -> None:
    assert module.functions["v128"] == FuncSig((ValType.V128,), (I64,))
    assert module.functions["record"] == FuncSig((), (I32,))
    assert module.exports["memory"] == "memory"
    assert ("test", "later") in module.imports
    assert module.imports_wasi
    info = read_module_info(ffi.wat_to_wasm('(module (func (export "f") (param funcref)))'))
    assert info.functions == {"f": None}


def test_engine_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="fuel_slice"):
        ffi.EngineSettings(fuel_slice=0)
    with pytest.raises(ValueError, match="async_stack_size"):
        ffi.EngineSettings(async_stack_size=512 << 10, max_wasm_stack=512 << 10)


def test_wasi_output_can_be_captured(linker: ffi.Linker) -> None:
    chunks: list[bytes] = []

    class Sink:
        def write(self, data: bytes) -> int:
            chunks.append(data)
            return len(data)

    wat = """(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "hi!")
      (func (export "main")
        (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 3))
        (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""
    mod = ffi.Module(linker, ffi.wat_to_wasm(wat))
    store = ffi.Store(
        linker.engine, max_memory=1 << 20, fuel=None, wasi=ffi.WasiSpec(), stdout=Sink()
    )
    owner = Owner(store)
    fib = store.instantiate(mod)
    assert fib.step(owner) is True
    fib.close()
    store.instantiated()
    assert _run(store, owner, "main", FuncSig((), ()), []).kind == "ok"
    assert chunks == [b"hi!"]
    store.close()
