"""lunatic::sqlite (HOSTAPI.md section 2.12), driven by WAT guests.

Each guest imports the namespace and the helpers of :mod:`tests.guests`,
exports a bump ``lunatic_alloc`` and sends what it observes to a Python
process: integers with ``$say``, byte buffers (host-allocated results, error
texts) with ``$give``. The bincode layouts of section 2.12 are decoded here,
independently of the host's encoder.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest

import supervisor
from hostapi.data import ProcessConfig
from supervisor import Context, DataMessage, ExitReason

from .guests import ALLOC, data_string, guest, reports, run_python

IMPORTS = """
  (import "lunatic::sqlite" "open" (func $open (param i32 i32 i32) (result i64)))
  (import "lunatic::sqlite" "query_prepare" (func $prepare (param i64 i32 i32) (result i64)))
  (import "lunatic::sqlite" "execute" (func $execute (param i64 i32 i32) (result i32)))
  (import "lunatic::sqlite" "bind_value" (func $bind (param i64 i32 i32)))
  (import "lunatic::sqlite" "sqlite3_changes" (func $changes (param i64) (result i32)))
  (import "lunatic::sqlite" "statement_reset" (func $reset (param i64)))
  (import "lunatic::sqlite" "last_error" (func $last_error (param i64 i32) (result i32)))
  (import "lunatic::sqlite" "sqlite3_finalize" (func $finalize (param i64)))
  (import "lunatic::sqlite" "sqlite3_step" (func $step (param i64) (result i32)))
  (import "lunatic::sqlite" "read_column" (func $read_column (param i64 i32 i32) (result i32)))
  (import "lunatic::sqlite" "column_names" (func $column_names (param i64 i32) (result i32)))
  (import "lunatic::sqlite" "read_row" (func $read_row (param i64 i32) (result i32)))
  (import "lunatic::sqlite" "column_count" (func $column_count (param i64) (result i32)))
  (import "lunatic::sqlite" "column_name" (func $column_name (param i64 i32 i32) (result i32)))
"""

#: Guest memory: 0 the connection id slot (lunatic-rs passes id_ptr = 0), 8 the
#: length slot of host-allocated results, 16 another id slot, 2048-8191 a text
#: buffer, 8192-19999 data segments, 20000 on the lunatic_alloc heap.
PRELUDE = """
  (func $say (param $to i64) (param $value i64)
    (call $report (local.get $to) (i64.const 1) (local.get $value)))
  (func $say32 (param $to i64) (param $value i32)
    (call $say (local.get $to) (i64.extend_i32_s (local.get $value))))
  (func $give (param $to i64) (param $ptr i32) (param $len i32)
    (call $create_data (i64.const 1) (i64.const 0))
    (drop (call $write_data (local.get $ptr) (local.get $len)))
    (drop (call $send (local.get $to))))
  ;; a host-allocated result: its pointer, its length in the slot at 8
  (func $give_result (param $to i64) (param $ptr i32)
    (call $give (local.get $to) (local.get $ptr) (i32.load (i32.const 8))))
  (func $give_error (param $to i64) (param $id i64)
    (call $error_to_string (local.get $id) (i32.const 2048))
    (call $give (local.get $to) (i32.const 2048) (call $error_string_size (local.get $id))))
  ;; execute, trapping unless it returns 0
  (func $exec (param $conn i64) (param $sql i32) (param $len i32)
    (if (call $execute (local.get $conn) (local.get $sql) (local.get $len))
      (then unreachable)))
"""


class Data:
    """Data segments from offset 8192; ``data(value)`` places ``value`` and
    returns its WAT ``(i32.const ptr) (i32.const len)``."""

    def __init__(self) -> None:
        self.next = 8192
        self.segments: list[str] = []

    def __call__(self, value: bytes | str) -> str:
        raw = value.encode() if isinstance(value, str) else value
        ptr, self.next = self.next, self.next + len(raw)
        assert self.next <= 20000, "data segments reach the lunatic_alloc heap"
        self.segments.append(data_string(ptr, raw))
        return f"(i32.const {ptr}) (i32.const {len(raw)})"

    def wat(self) -> str:
        return "\n  ".join(self.segments)


def sqlite_guest(body: str, data: Data) -> str:
    return guest(
        f"{data.wat()}\n{ALLOC}\n{PRELUDE}\n{body}",
        extra_imports=IMPORTS,
        memory='(memory (export "memory") 2)',
    )


def memory_config(*dirs: Path) -> ProcessConfig:
    """Every permission, with ``.`` (so ``:memory:`` may be opened) and ``dirs`` preopened."""
    return ProcessConfig.privileged(preopens=[(".", "."), *((str(d), str(d)) for d in dirs)])


def raw(report: Any) -> bytes:
    """A buffer report (``reports`` turns 8-byte ones into integers)."""
    return report.to_bytes(8, "little", signed=True) if isinstance(report, int) else report


async def run_to_exit(
    runtime: supervisor.Runtime, wat: str, config: ProcessConfig | None = None
) -> supervisor.Exit:
    """Run ``main()`` of ``wat`` to its end."""
    handle = await runtime.spawn(runtime.compile_module(wat), "main", config=config)
    return await handle.wait()


# -- bincode 1.x (legacy configuration), decoded independently of the host ----------


class Bincode:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        assert self.pos + n <= len(self.data), "truncated bincode"
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def string(self) -> str:
        return self.take(self.u64()).decode()

    def value(self) -> tuple[str, object]:
        """A SqliteValue: 0 Null, 1 Blob, 2 Text, 3 Double, 4 Integer, 5 I64."""
        variant = self.u32()
        if variant == 0:
            return ("Null", None)
        if variant == 1:
            return ("Blob", self.take(self.u64()))
        if variant == 2:
            return ("Text", self.string())
        if variant == 3:
            return ("Double", struct.unpack("<d", self.take(8))[0])
        assert variant in (4, 5), variant
        return ("Integer" if variant == 4 else "I64", struct.unpack("<q", self.take(8))[0])

    def end(self) -> None:
        assert self.pos == len(self.data), "trailing bytes"


def decode_value(data: bytes) -> tuple[str, object]:
    b = Bincode(data)
    value = b.value()
    b.end()
    return value


def decode_row(data: bytes) -> list[tuple[str, object]]:
    """A SqliteRow: u64 count, then that many SqliteValues."""
    b = Bincode(data)
    row = [b.value() for _ in range(b.u64())]
    b.end()
    return row


def decode_strings(data: bytes) -> list[str]:
    b = Bincode(data)
    names = [b.string() for _ in range(b.u64())]
    b.end()
    return names


def decode_error(data: bytes) -> tuple[int | None, str | None]:
    """A SqliteError: Option<u32> code, Option<String> message."""
    b = Bincode(data)
    code = b.u32() if b.take(1) == b"\x01" else None
    message = b.string() if b.take(1) == b"\x01" else None
    b.end()
    return code, message


def bind_list(*pairs: tuple[bytes, bytes]) -> bytes:
    """A BindList from already encoded (BindKey, BindValue) pairs."""
    return struct.pack("<Q", len(pairs)) + b"".join(k + v for k, v in pairs)


def numeric(index: int) -> bytes:
    return struct.pack("<IQ", 1, index)


def named(name: str) -> bytes:
    return struct.pack("<IQ", 2, len(name.encode())) + name.encode()


def blob(data: bytes, variant: int = 1) -> bytes:
    return struct.pack("<IQ", variant, len(data)) + data


NULL = struct.pack("<I", 0)


def text(value: str) -> bytes:
    return blob(value.encode(), variant=2)


def double(value: float) -> bytes:
    return struct.pack("<Id", 3, value)


def int32(value: int) -> bytes:
    return struct.pack("<Ii", 4, value)


def int64(value: int) -> bytes:
    return struct.pack("<Iq", 5, value)


# -- open and its permission check ----------------------------------------------------------


async def test_open_allows_only_paths_inside_the_preopened_directories(
    runtime: supervisor.Runtime, tmp_path: Path
) -> None:
    inside = tmp_path / "sub" / ".." / "db.sqlite"
    outside = str(tmp_path / ".." / "elsewhere.db")
    data = Data()
    memory, inside_at, outside_at = data(":memory:"), data(str(inside)), data(outside)
    body = f"""
  (func (export "main") (param $to i64) (param $with_dot i32)
    (if (local.get $with_dot)
      (then
        ;; lunatic-rs's SqliteClient::connect passes id_ptr = 0
        (call $say (local.get $to) (call $open {memory} (i32.const 0)))
        (call $say (local.get $to) (i64.load (i32.const 0)))
        (call $say (local.get $to) (call $open {inside_at} (i32.const 16)))
        (call $say (local.get $to) (i64.load (i32.const 16))))
      (else
        (call $say (local.get $to) (call $open {outside_at} (i32.const 16)))
        (call $give_error (local.get $to) (i64.load (i32.const 16)))
        (call $say (local.get $to) (call $open {memory} (i32.const 16))))))
"""
    wat = sqlite_guest(body, data)
    (tmp_path / "sub").mkdir()
    got, _ = await reports(runtime, wat, 1, n=4, config=memory_config(tmp_path))
    assert got == [0, 0, 0, 1]  # two connections: ids 0 and 1
    assert (tmp_path / "db.sqlite").exists()

    only_tmp = ProcessConfig.privileged(preopens=[(str(tmp_path), str(tmp_path))])
    got, _ = await reports(runtime, wat, 0, n=3, config=only_tmp)
    absolute = tmp_path.parent / "elsewhere.db"  # ".." resolved lexically
    assert got[0] == 1
    assert raw(got[1]).decode() == (
        f"Failed to access '{outside}'\n\nCaused by:\n    Permission to '{absolute}' denied"
    )
    assert got[2] == 1  # ":memory:" needs "." (the current directory) preopened


async def test_open_reports_sqlite_errors_as_error_ids(
    runtime: supervisor.Runtime, tmp_path: Path
) -> None:
    data = Data()
    missing = data(str(tmp_path / "no" / "such" / "dir.db"))
    body = f"""
  (func (export "main") (param $to i64)
    (call $say (local.get $to) (call $open {missing} (i32.const 16)))
    (call $give_error (local.get $to) (i64.load (i32.const 16))))
"""
    got, _ = await reports(runtime, sqlite_guest(body, data), n=2, config=memory_config(tmp_path))
    assert got[0] == 1
    assert raw(got[1]).decode() == "unable to open database file (code 14)"


# -- binding, stepping and reading ----------------------------------------------------------


async def test_bound_values_of_every_kind_read_back_by_storage_class(
    runtime: supervisor.Runtime,
) -> None:
    data = Data()
    memory = data(":memory:")
    create = data("CREATE TABLE v(n, b, t, d, i, l)")
    insert = data("INSERT INTO v VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
    binds = data(
        bind_list(
            (numeric(6), int64(2**40 + 3)),  # in any order: the key is the index
            (numeric(1), NULL),
            (numeric(2), blob(b"\x00\x01\xff")),
            (numeric(3), text("héllo")),
            (numeric(4), double(2.5)),
            (numeric(5), int32(-7)),
        )
    )
    select = data("SELECT n, b, t, d, i, l FROM v")
    body = f"""
  (func (export "main") (param $to i64) (local $conn i64) (local $st i64) (local $col i32)
    (drop (call $open {memory} (i32.const 0)))
    (local.set $conn (i64.load (i32.const 0)))
    (call $exec (local.get $conn) {create})
    (local.set $st (call $prepare (local.get $conn) {insert}))
    (call $bind (local.get $st) {binds})
    (call $say32 (local.get $to) (call $step (local.get $st)))
    (call $finalize (local.get $st))
    (local.set $st (call $prepare (local.get $conn) {select}))
    (call $say32 (local.get $to) (call $step (local.get $st)))
    (i64.store (i32.const 8) (i64.const -1))  ;; only 4 bytes of the length slot get written
    (call $give_result (local.get $to) (call $read_row (local.get $st) (i32.const 8)))
    (call $say (local.get $to) (i64.load (i32.const 8)))
    (loop $columns
      (call $give_result (local.get $to)
        (call $read_column (local.get $st) (local.get $col) (i32.const 8)))
      (local.set $col (i32.add (local.get $col) (i32.const 1)))
      (br_if $columns (i32.lt_u (local.get $col) (i32.const 6))))
    (call $say32 (local.get $to) (call $step (local.get $st))))
"""
    got, exit = await reports(runtime, sqlite_guest(body, data), n=11, config=memory_config())
    assert exit.normal, exit
    inserted, first, row, length, *columns, last = got
    assert (inserted, first, last) == (101, 100, 101)
    values = [
        ("Null", None),
        ("Blob", b"\x00\x01\xff"),
        ("Text", "héllo"),
        ("Double", 2.5),
        ("Integer", -7),
        ("Integer", 2**40 + 3),
    ]
    assert decode_row(raw(row)) == values
    assert length & 0xFFFF_FFFF_FFFF_FFFF == len(raw(row)) | (0xFFFF_FFFF << 32)
    assert [decode_value(raw(c)) for c in columns] == values


async def test_numeric_keys_bind_their_index_and_other_keys_bind_index_1(
    runtime: supervisor.Runtime,
) -> None:
    data = Data()
    memory = data(":memory:")
    select = data("SELECT ?1, ?2, :third")
    first = data(bind_list((numeric(2), int32(2)), (numeric(3), int32(3))))
    # a String key and a None key both bind parameter 1; the last one wins
    others = data(bind_list((named(":third"), text("named")), (b"\0\0\0\0", text("none"))))
    empty = data(bind_list())
    body = f"""
  (func (export "main") (param $to i64) (local $st i64)
    (drop (call $open {memory} (i32.const 0)))
    (local.set $st (call $prepare (i64.load (i32.const 0)) {select}))
    (call $bind (local.get $st) {first})
    (call $bind (local.get $st) {others})
    (call $bind (local.get $st) {empty})
    (drop (call $step (local.get $st)))
    (call $give_result (local.get $to) (call $read_row (local.get $st) (i32.const 8))))
"""
    got, _ = await reports(runtime, sqlite_guest(body, data), n=1, config=memory_config())
    assert decode_row(raw(got[0])) == [("Text", "none"), ("Integer", 2), ("Integer", 3)]


async def test_column_metadata_is_known_before_the_first_step(
    runtime: supervisor.Runtime,
) -> None:
    data = Data()
    memory = data(":memory:")
    create = data(
        "CREATE TABLE m(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO m VALUES (1, 'a')"
    )
    select = data("SELECT id, name AS label, id * 2 FROM m")
    body = f"""
  (func (export "main") (param $to i64) (local $st i64)
    (drop (call $open {memory} (i32.const 0)))
    (call $exec (i64.load (i32.const 0)) {create})
    (local.set $st (call $prepare (i64.load (i32.const 0)) {select}))
    (call $say32 (local.get $to) (call $column_count (local.get $st)))
    (call $give_result (local.get $to) (call $column_names (local.get $st) (i32.const 8)))
    (call $give_result (local.get $to)
      (call $column_name (local.get $st) (i32.const 1) (i32.const 8)))
    ;; no row yet: the row reads as NULLs
    (call $give_result (local.get $to) (call $read_row (local.get $st) (i32.const 8)))
    (call $say32 (local.get $to) (call $step (local.get $st)))
    (call $give_result (local.get $to) (call $read_row (local.get $st) (i32.const 8)))
    (call $give_result (local.get $to) (call $column_names (local.get $st) (i32.const 8)))
    (call $give_result (local.get $to)
      (call $column_name (local.get $st) (i32.const 2) (i32.const 8)))
    (drop (call $column_name (local.get $st) (i32.const 3) (i32.const 8))))
"""
    got, exit = await reports(runtime, sqlite_guest(body, data), n=8, config=memory_config())
    count, names, label, before, step, row, names_after, third = got
    assert count == 3
    assert decode_strings(raw(names)) == ["id", "label", "id * 2"]
    assert raw(label) == b"label"  # raw UTF-8, not bincode
    assert decode_row(raw(before)) == [("Null", None)] * 3
    assert step == 100
    assert decode_row(raw(row)) == [("Integer", 1), ("Text", "a"), ("Integer", 2)]
    assert decode_strings(raw(names_after)) == ["id", "label", "id * 2"]
    assert raw(third) == b"id * 2"
    # a column index out of range traps
    assert exit.reason is ExitReason.FAILURE
    assert "lunatic::sqlite::column_name" in exit.detail
    assert "out of range (3)" in exit.detail


async def test_a_dml_statement_applies_its_change_once_per_execution(
    runtime: supervisor.Runtime,
) -> None:
    data = Data()
    memory = data(":memory:")
    create = data("CREATE TABLE r(x)")
    insert = data("INSERT INTO r VALUES (1); INSERT INTO r VALUES (2)")  # only the first
    count = data("SELECT count(*), sum(x) FROM r")
    body = f"""
  (func $count (param $to i64) (local $st i64)
    (local.set $st (call $prepare (i64.load (i32.const 0)) {count}))
    (drop (call $step (local.get $st)))
    (call $give_result (local.get $to) (call $read_row (local.get $st) (i32.const 8)))
    (call $finalize (local.get $st)))
  (func (export "main") (param $to i64) (local $st i64)
    (drop (call $open {memory} (i32.const 0)))
    (call $exec (i64.load (i32.const 0)) {create})
    (local.set $st (call $prepare (i64.load (i32.const 0)) {insert}))
    (call $count (local.get $to))  ;; preparing runs nothing
    (call $say32 (local.get $to) (call $step (local.get $st)))
    (call $count (local.get $to))
    (call $say32 (local.get $to) (call $step (local.get $st)))  ;; runs again (automatic reset)
    (call $reset (local.get $st))
    (call $say32 (local.get $to) (call $step (local.get $st)))
    (call $count (local.get $to)))
"""
    got, _ = await reports(runtime, sqlite_guest(body, data), n=6, config=memory_config())
    assert [decode_row(raw(got[i])) for i in (0, 2, 5)] == [
        [("Integer", 0), ("Null", None)],
        [("Integer", 1), ("Integer", 1)],
        [("Integer", 3), ("Integer", 3)],
    ]
    assert (got[1], got[3], got[4]) == (101, 101, 101)


async def test_reset_rearms_a_statement_and_keeps_its_bindings(
    runtime: supervisor.Runtime,
) -> None:
    data = Data()
    memory = data(":memory:")
    create = data("CREATE TABLE r(x); INSERT INTO r VALUES (10), (20), (30)")
    select = data("SELECT x FROM r WHERE x >= ? ORDER BY x")
    binds = data(bind_list((numeric(1), int32(15))))
    body = f"""
  (func $column (param $to i64) (param $st i64)
    (call $give_result (local.get $to)
      (call $read_column (local.get $st) (i32.const 0) (i32.const 8))))
  (func (export "main") (param $to i64) (local $st i64)
    (drop (call $open {memory} (i32.const 0)))
    (call $exec (i64.load (i32.const 0)) {create})
    (local.set $st (call $prepare (i64.load (i32.const 0)) {select}))
    (call $bind (local.get $st) {binds})
    (call $say32 (local.get $to) (call $step (local.get $st)))
    (call $column (local.get $to) (local.get $st))
    (call $reset (local.get $st))  ;; mid-way
    (call $say32 (local.get $to) (call $step (local.get $st)))
    (call $column (local.get $to) (local.get $st))
    (call $say32 (local.get $to) (call $step (local.get $st)))
    (call $column (local.get $to) (local.get $st))
    (call $say32 (local.get $to) (call $step (local.get $st)))
    (call $reset (local.get $st))
    (call $say32 (local.get $to) (call $step (local.get $st)))
    (call $column (local.get $to) (local.get $st)))
"""
    got, _ = await reports(runtime, sqlite_guest(body, data), n=9, config=memory_config())
    steps = [got[i] for i in (0, 2, 4, 6, 7)]
    columns = [decode_value(raw(got[i])) for i in (1, 3, 5, 8)]
    assert steps == [100, 100, 100, 101, 100]
    assert [v for _, v in columns] == [20, 20, 30, 20]


async def test_changes_count_the_rows_of_the_last_insert_update_or_delete(
    runtime: supervisor.Runtime,
) -> None:
    data = Data()
    memory = data(":memory:")
    setup = data("CREATE TABLE c(x); INSERT INTO c VALUES (1), (2), (3)")
    update = data("UPDATE c SET x = x + 1 WHERE x >= 2")
    delete = data("DELETE FROM c WHERE x = 100")
    returning = data("UPDATE c SET x = 0 RETURNING x")
    body = f"""
  (func $changes_are (param $to i64)
    (call $say32 (local.get $to) (call $changes (i64.load (i32.const 0)))))
  (func (export "main") (param $to i64) (local $del i64) (local $ret i64)
    (drop (call $open {memory} (i32.const 0)))
    (call $exec (i64.load (i32.const 0)) {setup})
    (call $changes_are (local.get $to))
    (call $exec (i64.load (i32.const 0)) {update})
    (call $changes_are (local.get $to))
    ;; preparing statements changes nothing
    (local.set $del (call $prepare (i64.load (i32.const 0)) {delete}))
    (local.set $ret (call $prepare (i64.load (i32.const 0)) {returning}))
    (call $changes_are (local.get $to))
    (drop (call $step (local.get $del)))
    (call $changes_are (local.get $to))
    ;; an UPDATE ... RETURNING counts once it is done
    (drop (call $step (local.get $ret)))
    (call $changes_are (local.get $to))
    (drop (call $step (local.get $ret)))
    (drop (call $step (local.get $ret)))
    (call $say32 (local.get $to) (call $step (local.get $ret)))
    (call $changes_are (local.get $to)))
"""
    got, _ = await reports(runtime, sqlite_guest(body, data), n=7, config=memory_config())
    assert got == [3, 2, 2, 0, 0, 101, 3]


# -- execute and last_error ---------------------------------------------------------------------


async def test_execute_runs_each_statement_until_the_first_error(
    runtime: supervisor.Runtime,
) -> None:
    data = Data()
    memory = data(":memory:")
    setup = data("CREATE TABLE e(x UNIQUE); INSERT INTO e VALUES (1)")
    batch = data("INSERT INTO e VALUES (2); INSERT INTO e VALUES (1); INSERT INTO e VALUES (3)")
    begin = data("BEGIN; INSERT INTO e VALUES (4);")
    rollback = data("ROLLBACK")
    bad = data("SELECT 1; SELEC 2")
    rows = data("SELECT group_concat(x) FROM e")
    body = f"""
  (func (export "main") (param $to i64) (local $conn i64) (local $st i64)
    (drop (call $open {memory} (i32.const 0)))
    (local.set $conn (i64.load (i32.const 0)))
    (call $say32 (local.get $to) (call $execute (local.get $conn) {setup}))
    (call $say32 (local.get $to) (call $execute (local.get $conn) {batch}))
    (call $give_result (local.get $to) (call $last_error (local.get $conn) (i32.const 8)))
    ;; transactions are the guest's: nothing commits them behind its back
    (call $say32 (local.get $to) (call $execute (local.get $conn) {begin}))
    (call $say32 (local.get $to) (call $execute (local.get $conn) {rollback}))
    (call $say32 (local.get $to) (call $execute (local.get $conn) {bad}))
    (call $give_result (local.get $to) (call $last_error (local.get $conn) (i32.const 8)))
    (local.set $st (call $prepare (local.get $conn) {rows}))
    (drop (call $step (local.get $st)))
    (call $give_result (local.get $to) (call $read_row (local.get $st) (i32.const 8))))
"""
    got, _ = await reports(runtime, sqlite_guest(body, data), n=8, config=memory_config())
    assert got[:2] == [0, 19]  # SQLITE_CONSTRAINT
    assert decode_error(raw(got[2])) == (19, "UNIQUE constraint failed: e.x")
    assert got[3:6] == [0, 0, 1]
    assert decode_error(raw(got[6])) == (1, 'near "SELEC": syntax error')
    assert decode_row(raw(got[7])) == [("Text", "1,2")]


async def test_last_error_after_a_step_reports_sqlites_row_codes(
    runtime: supervisor.Runtime,
) -> None:
    data = Data()
    memory, select = data(":memory:"), data("SELECT 1")
    body = f"""
  (func (export "main") (param $to i64) (local $st i64)
    (drop (call $open {memory} (i32.const 0)))
    (local.set $st (call $prepare (i64.load (i32.const 0)) {select}))
    (drop (call $step (local.get $st)))
    (call $give_result (local.get $to) (call $last_error (i64.load (i32.const 0)) (i32.const 8)))
    (drop (call $step (local.get $st)))
    (call $give_result (local.get $to) (call $last_error (i64.load (i32.const 0)) (i32.const 8))))
"""
    got, _ = await reports(runtime, sqlite_guest(body, data), n=2, config=memory_config())
    assert [decode_error(raw(g)) for g in got] == [
        (100, "another row available"),
        (101, "no more rows available"),
    ]


async def test_last_error_without_an_error_traps(runtime: supervisor.Runtime) -> None:
    data = Data()
    memory, create = data(":memory:"), data("CREATE TABLE a(x)")
    body = f"""
  (func (export "main")
    (drop (call $open {memory} (i32.const 0)))
    (call $exec (i64.load (i32.const 0)) {create})
    (drop (call $last_error (i64.load (i32.const 0)) (i32.const 8))))
"""
    exit = await run_to_exit(runtime, sqlite_guest(body, data), memory_config())
    assert exit.reason is ExitReason.FAILURE
    assert "lunatic::sqlite::last_error" in exit.detail


# -- what traps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELEC 1", 'near "SELEC": syntax error'),
        ("SELECT * FROM nowhere", "no such table: nowhere"),
        ("INSERT INTO t(nope) VALUES (1)", "table t has no column named nope"),
    ],
)
async def test_sql_that_does_not_compile_traps_at_prepare(
    runtime: supervisor.Runtime, sql: str, reason: str
) -> None:
    data = Data()
    memory, create, bad = data(":memory:"), data("CREATE TABLE t(x)"), data(sql)
    body = f"""
  (func (export "main")
    (drop (call $open {memory} (i32.const 0)))
    (call $exec (i64.load (i32.const 0)) {create})
    (drop (call $prepare (i64.load (i32.const 0)) {bad})))
"""
    exit = await run_to_exit(runtime, sqlite_guest(body, data), memory_config())
    assert exit.reason is ExitReason.FAILURE
    assert "lunatic::sqlite::query_prepare" in exit.detail
    assert reason in exit.detail


async def test_a_failing_step_traps(runtime: supervisor.Runtime) -> None:
    data = Data()
    memory = data(":memory:")
    setup = data("CREATE TABLE u(x UNIQUE); INSERT INTO u VALUES (1)")
    insert = data("INSERT INTO u VALUES (1)")
    body = f"""
  (func (export "main")
    (drop (call $open {memory} (i32.const 0)))
    (call $exec (i64.load (i32.const 0)) {setup})
    (drop (call $step (call $prepare (i64.load (i32.const 0)) {insert}))))
"""
    exit = await run_to_exit(runtime, sqlite_guest(body, data), memory_config())
    assert exit.reason is ExitReason.FAILURE
    assert "lunatic::sqlite::sqlite3_step" in exit.detail
    assert "UNIQUE constraint failed: u.x" in exit.detail


UNKNOWN_IDS = [
    ("(drop (call $prepare (i64.const 5) (i32.const 0) (i32.const 0)))", "query_prepare"),
    ("(drop (call $execute (i64.const 5) (i32.const 0) (i32.const 0)))", "execute"),
    ("(drop (call $changes (i64.const 5)))", "sqlite3_changes"),
    ("(drop (call $last_error (i64.const 5) (i32.const 8)))", "last_error"),
    ("(call $bind (i64.const 5) (i32.const 0) (i32.const 0))", "get_statement_by_id"),
    ("(drop (call $step (i64.const 5)))", "get_statement_by_id"),
    ("(call $reset (i64.const 5))", "get_statement_by_id"),
    ("(drop (call $read_row (i64.const 5) (i32.const 8)))", "get_statement_by_id"),
    ("(drop (call $read_column (i64.const 5) (i32.const 0) (i32.const 8)))", "get_statement_by_id"),
    ("(drop (call $column_count (i64.const 5)))", "get_statement_by_id"),
    ("(drop (call $column_names (i64.const 5) (i32.const 8)))", "get_statement_by_id"),
    ("(drop (call $column_name (i64.const 5) (i32.const 0) (i32.const 8)))", "get_statement_by_id"),
    ("(call $finalize (i64.const 0)) (call $finalize (i64.const 0))", "sqlite3_finalize"),
]


@pytest.mark.parametrize(("call", "context"), UNKNOWN_IDS)
async def test_unknown_connection_and_statement_ids_trap(
    runtime: supervisor.Runtime, call: str, context: str
) -> None:
    data = Data()
    memory, select = data(":memory:"), data("SELECT 1")
    body = f"""
  (func (export "main")
    (drop (call $open {memory} (i32.const 0)))  ;; connection 0
    (drop (call $prepare (i64.load (i32.const 0)) {select}))  ;; statement 0
    {call})
"""
    exit = await run_to_exit(runtime, sqlite_guest(body, data), memory_config())
    assert exit.reason is ExitReason.FAILURE
    assert f"Expected Some(..) got None (lunatic::sqlite::{context}" in exit.detail


@pytest.mark.parametrize(
    ("binds", "reason"),
    [
        (b"\x01\x00\x00", "malformed BindList: unexpected end"),
        (bind_list((numeric(1), b"")), "malformed BindList: unexpected end"),  # no value
        (bind_list((struct.pack("<I", 3), int32(1))), "invalid BindKey variant 3"),
        (bind_list((numeric(1), struct.pack("<I", 6))), "invalid BindValue variant 6"),
        (bind_list((numeric(1), blob(b"\xff", variant=2))), "invalid UTF-8"),
        (bind_list((numeric(2), int32(1))), "column index out of range"),
        (bind_list((numeric(0), int32(1))), "column index out of range"),
    ],
)
async def test_malformed_bind_lists_and_bad_indexes_trap(
    runtime: supervisor.Runtime, binds: bytes, reason: str
) -> None:
    data = Data()
    memory, select, encoded = data(":memory:"), data("SELECT ?"), data(binds)
    body = f"""
  (func (export "main")
    (drop (call $open {memory} (i32.const 0)))
    (call $bind (call $prepare (i64.load (i32.const 0)) {select}) {encoded}))
"""
    exit = await run_to_exit(runtime, sqlite_guest(body, data), memory_config())
    assert exit.reason is ExitReason.FAILURE
    assert "bind" in exit.detail
    assert reason in exit.detail


async def test_binding_a_running_statement_traps(runtime: supervisor.Runtime) -> None:
    data = Data()
    memory, select = data(":memory:"), data("SELECT ?")
    binds = data(bind_list((numeric(1), int32(1))))
    body = f"""
  (func (export "main") (local $st i64)
    (drop (call $open {memory} (i32.const 0)))
    (local.set $st (call $prepare (i64.load (i32.const 0)) {select}))
    (drop (call $step (local.get $st)))
    (call $bind (local.get $st) {binds}))
"""
    exit = await run_to_exit(runtime, sqlite_guest(body, data), memory_config())
    assert exit.reason is ExitReason.FAILURE
    assert "bad parameter or other API misuse" in exit.detail


# -- resources ------------------------------------------------------------------------------------


def open_files(path: Path) -> int:
    """How many of this process's file descriptors are ``path`` (or its journal)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(str(path))
    return count


async def test_connections_close_when_their_process_ends(
    runtime: supervisor.Runtime, tmp_path: Path
) -> None:
    database = tmp_path / "closing.db"
    data = Data()
    path = data(str(database))
    setup = data("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)")
    select = data("SELECT x FROM t")
    body = f"""
  (func (export "main") (param $to i64) (local $st i64)
    (drop (call $open {path} (i32.const 0)))
    (call $exec (i64.load (i32.const 0)) {setup})
    (local.set $st (call $prepare (i64.load (i32.const 0)) {select}))
    (drop (call $step (local.get $st)))  ;; a statement in the middle of its rows
    (call $finalize (call $prepare (i64.load (i32.const 0)) {select}))  ;; finalized: harmless
    (call $say (local.get $to) (i64.const 1))
    (drop (call $recv)))
"""
    module = runtime.compile_module(sqlite_guest(body, data))
    config = ProcessConfig.privileged(preopens=[(str(tmp_path), str(tmp_path))])

    async def test(ctx: Context) -> tuple[int, int]:
        handle = await ctx.spawn(module, "main", [ctx.id], config=config)
        assert isinstance(await ctx.receive(1), DataMessage)
        while_running = open_files(database)
        ctx.send(handle.id, b"end")
        exit = await handle.wait()
        assert exit.normal, exit
        return while_running, open_files(database)

    assert open_files(database) == 0
    assert await run_python(runtime, test) == (1, 0)
