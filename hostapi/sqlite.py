"""``lunatic::sqlite``: SQLite databases on Python's sqlite3 (HOSTAPI.md section 2.12).

Connections and statements are per-process resources (tables
``sqlite_connection`` and ``sqlite_statement``, ids from 0); an unknown id
traps, and both are closed when the process dies (finalizing a statement never
closes its connection). Results that lunatic returns in guest-allocated memory
(``read_row``, ``read_column``, ``column_names``, ``column_name``,
``last_error``) go through the guest's ``lunatic_alloc``, bincode 1.x encoded,
with a 4-byte length (section 6.2). Database I/O is synchronous, on the Trio
thread: calls are short, and a locked database fails at once with SQLITE_BUSY
(no busy timeout, as with lunatic's ``sqlite`` crate) instead of blocking.

**Deliberate differences from lunatic** (section 6.17 and elsewhere):

* Malformed bincode given to ``bind_value`` traps (lunatic's host panics,
  section 6.9); binding ``BindValue::Null`` binds SQL NULL as section 2.12
  lists it (lunatic's host hits a ``todo!()`` panic). Everything section 6.17
  lists is kept: named and unnumbered binds go to parameter 1, prepare and
  step errors trap, there is no close function, ``last_error`` traps when the
  connection reports no error. Like lunatic, the permission check covers only
  ``open``: SQL such as ``ATTACH`` or ``VACUUM INTO`` reaches any file the
  host can.
* The text of the permission error is the anyhow chain as ``{:?}`` shows it,
  ``"Failed to access '<path>'\\n\\nCaused by:\\n    Permission to '<abs>'
  denied"`` (lunatic's ``lunatic::error::to_string`` shows only the first line,
  and quotes the path twice, ``'"<abs>"'``); other errors read
  ``<sqlite message> (code <n>)`` like the ``sqlite`` crate's.
* Text columns keep any NUL characters they contain (lunatic cuts them at the
  first NUL); invalid UTF-8 is replaced, as lunatic does.
* Python's sqlite3 reads one row ahead: an error met while SQLite computes row
  k+1 of a streaming query traps at the step that would have returned row k.
* Column names of a statement with side effects and result columns
  (``... RETURNING``, a PRAGMA that sets something) are not known before its
  first step: ``column_names``/``column_name`` trap then (lunatic knows them
  from compilation). ``column_count`` always works.
* A bind index is checked as the u64 the guest sent (lunatic truncates it to a
  C ``int`` first).
* (Not guest-visible.) Binding by index goes through Python's sequence
  binding, which Python 3.12 and 3.13 deprecate for named placeholders
  (``:name``; 3.12.1 also ``?NNN``); the warning is silenced here, and Python
  3.14 (outside ``requires-python``) would refuse it.

The statement model is :mod:`hostapi.sqlite_db`'s; the wire formats are
:mod:`hostapi.sqlite_wire`'s.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Final

from .abi import MASK64, CallGuest, Namespace, lookup_trap, op_trap
from .alloc import host_allocated
from .data import ResourceTable
from .protocols import HostProcess
from .sqlite_db import Connection, SqliteFailure, Statement
from .sqlite_wire import decode_bind_list, encode_error, encode_names, encode_row, encode_value

__all__ = ["namespace"]

namespace = Namespace("lunatic::sqlite")

_NS: Final = "lunatic::sqlite"
_CONNECTIONS: Final = "sqlite_connection"
_STATEMENTS: Final = "sqlite_statement"


# -- the permission check of open ------------------------------------------------------


def _absolute(path: str) -> str:
    """``path`` resolved against the host's current directory, with ``.``
    and ``..`` removed lexically (lunatic's ``get_absolute_path``)."""
    parts: list[str] = []
    for part in os.path.join(os.getcwd(), path).split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/" + "/".join(parts)


def _inside(directory: str, path: str) -> bool:
    return directory == "/" or path == directory or path.startswith(directory + "/")


def _access_error(path: str, preopens: Sequence[tuple[str, str]]) -> str | None:
    """The error text when the process may not open ``path``, else None.

    The absolute path (or, for an existing file, its directory: the same
    answer) must lie in an existing preopened host directory.
    """
    target = _absolute(path)
    for _guest, host in preopens:
        directory = _absolute(host)
        if os.path.isdir(directory) and _inside(directory, target):
            return None
    return f"Failed to access '{path}'\n\nCaused by:\n    Permission to '{target}' denied"


# -- host functions ----------------------------------------------------------------------


def _connections(proc: HostProcess) -> ResourceTable[Connection]:
    return proc.resources(_CONNECTIONS)


def _statements_of(proc: HostProcess) -> ResourceTable[Statement]:
    return proc.resources(_STATEMENTS)


def _connection(proc: HostProcess, conn_id: int, context: str) -> Connection:
    conn = _connections(proc).get(conn_id & MASK64)
    if conn is None:
        raise lookup_trap(context)
    return conn


def _statement(proc: HostProcess, statement_id: int) -> Statement:
    statement = _statements_of(proc).get(statement_id & MASK64)
    if statement is None:
        raise lookup_trap(f"{_NS}::get_statement_by_id")
    return statement


@namespace.function("open (i32, i32, i32) -> i64")
def open_database(proc: HostProcess, path_ptr: int, path_len: int, id_ptr: int) -> int:
    """0 with a connection id at ``id_ptr``, or 1 with an error id there
    (permission denied, or SQLite could not open the file)."""
    path = proc.memory.read_str(path_ptr, path_len, f"{_NS}::open")
    denied = _access_error(path, proc.config.preopens)
    if denied is not None:
        proc.memory.write_u64(id_ptr, proc.errors.add(denied))
        return 1
    try:
        conn = Connection.open(path)
    except SqliteFailure as e:
        proc.memory.write_u64(id_ptr, proc.errors.add(str(e)))
        return 1
    proc.memory.write_u64(id_ptr, _connections(proc).add(conn))
    return 0


@namespace.function("query_prepare (i64, i32, i32) -> i64")
def query_prepare(proc: HostProcess, conn_id: int, sql_ptr: int, sql_len: int) -> int:
    """A new statement id; SQL that does not compile traps."""
    sql = proc.memory.read_str(sql_ptr, sql_len, f"{_NS}::query_prepare::from_utf8")
    conn = _connection(proc, conn_id, f"{_NS}::query_prepare::obtain_conn")
    try:
        statement = conn.prepare(sql)
    except SqliteFailure as e:
        raise op_trap(e, f"{_NS}::query_prepare::prepare_statement") from None
    return _statements_of(proc).add(statement)


@namespace.function("execute (i64, i32, i32) -> i32")
def execute(proc: HostProcess, conn_id: int, sql_ptr: int, sql_len: int) -> int:
    """Run the statements of the SQL; 0, or the failing one's result code."""
    sql = proc.memory.read_str(sql_ptr, sql_len, f"{_NS}::execute")
    return _connection(proc, conn_id, f"{_NS}::execute").execute(sql)


@namespace.function("bind_value (i64, i32, i32)")
def bind_value(proc: HostProcess, statement_id: int, data_ptr: int, data_len: int) -> None:
    """Bind a bincode ``BindList``; malformed bincode and bind errors trap."""
    statement = _statement(proc, statement_id)
    data = proc.memory.read(data_ptr, data_len)
    try:
        pairs = decode_bind_list(data)
    except ValueError as e:
        raise op_trap(e, f"{_NS}::bind_value") from None
    try:
        statement.bind(pairs)
    except SqliteFailure as e:
        raise op_trap(e, "sqlite::bind::pair") from None


@namespace.function("sqlite3_changes (i64) -> i32")
def sqlite3_changes(proc: HostProcess, conn_id: int) -> int:
    """Rows changed by the last INSERT, UPDATE or DELETE that ended."""
    return _connection(proc, conn_id, f"{_NS}::sqlite3_changes::obtain_conn").changes


@namespace.function("statement_reset (i64)")
def statement_reset(proc: HostProcess, statement_id: int) -> None:
    """Re-arm the statement, keeping its bindings; traps with the error of a
    failed last step (what ``sqlite3_reset`` returns)."""
    try:
        _statement(proc, statement_id).reset()
    except SqliteFailure as e:
        raise op_trap(e, f"{_NS}::statement_reset") from None


@namespace.function("last_error (i64, i32) -> i32", blocking=True)
def last_error(proc: HostProcess, conn_id: int, len_ptr: int) -> CallGuest:
    """The connection's last result as a bincode ``SqliteError``; traps when
    it is SQLITE_OK (no error), as lunatic does."""
    context = f"{_NS}::last_error"
    result = _connection(proc, conn_id, f"{context}::obtain_conn").last
    if result is None:
        raise lookup_trap(context)
    return host_allocated(proc, encode_error(result), len_ptr, context)


@namespace.function("sqlite3_finalize (i64)")
def sqlite3_finalize(proc: HostProcess, statement_id: int) -> None:
    """Free the statement (its connection stays open); an unknown id traps."""
    statement = _statements_of(proc).remove(statement_id & MASK64)
    if statement is None:
        raise lookup_trap(f"{_NS}::sqlite3_finalize")
    statement.close()


@namespace.function("sqlite3_step (i64) -> i32")
def sqlite3_step(proc: HostProcess, statement_id: int) -> int:
    """100 (a row is current) or 101 (done); an error traps."""
    try:
        return _statement(proc, statement_id).step()
    except SqliteFailure as e:
        raise op_trap(e, f"{_NS}::sqlite3_step") from None


@namespace.function("read_column (i64, i32, i32) -> i32", blocking=True)
def read_column(proc: HostProcess, statement_id: int, col: int, len_ptr: int) -> CallGuest:
    """One bincode ``SqliteValue``; an index out of range traps."""
    try:
        value = _statement(proc, statement_id).column(col)
    except SqliteFailure as e:
        raise op_trap(e, "read_column") from None
    return host_allocated(proc, encode_value(value), len_ptr, f"{_NS}::read_column")


@namespace.function("column_names (i64, i32) -> i32", blocking=True)
def column_names(proc: HostProcess, statement_id: int, len_ptr: int) -> CallGuest:
    """The column names as a bincode ``Vec<String>``."""
    context = f"{_NS}::column_names"
    try:
        names = _statement(proc, statement_id).column_names()
    except SqliteFailure as e:
        raise op_trap(e, context) from None
    return host_allocated(proc, encode_names(names), len_ptr, context)


@namespace.function("read_row (i64, i32) -> i32", blocking=True)
def read_row(proc: HostProcess, statement_id: int, len_ptr: int) -> CallGuest:
    """The current row as a bincode ``SqliteRow`` (a ``Vec<SqliteValue>``)."""
    row = _statement(proc, statement_id).row()
    return host_allocated(proc, encode_row(row), len_ptr, f"{_NS}::read_row")


@namespace.function("column_count (i64) -> i32")
def column_count(proc: HostProcess, statement_id: int) -> int:
    """The number of result columns (known from compilation)."""
    return _statement(proc, statement_id).column_count()


@namespace.function("column_name (i64, i32, i32) -> i32", blocking=True)
def column_name(proc: HostProcess, statement_id: int, col: int, len_ptr: int) -> CallGuest:
    """One column's name as raw UTF-8 (not bincode); out of range traps."""
    context = f"{_NS}::column_name"
    try:
        name = _statement(proc, statement_id).column_name(col)
    except SqliteFailure as e:
        raise op_trap(e, context) from None
    return host_allocated(proc, name.encode(), len_ptr, context)
