"""SQLite's prepare/bind/step semantics on Python's sqlite3, for ``lunatic::sqlite``.

**The statement model.** Python's sqlite3 has no prepare/step API, so a
:class:`Statement` rebuilds SQLite's semantics on top of it:

* ``query_prepare`` keeps the *first* statement of the SQL (the tail is
  ignored, as ``sqlite3_prepare_v2`` does) and compiles it as
  ``EXPLAIN <statement>``, which runs SQLite's whole compiler (syntax errors,
  unknown tables or columns all fail here, and trap) without executing
  anything. That compilation also yields the number of result columns (the
  ``ResultRow`` instruction), the number of parameters, and, through a
  recording authorizer, what the statement does: whether it is a pure query
  and whether it counts changes (a top-level INSERT, UPDATE or DELETE).
* Binds accumulate by 1-based index and survive resets; as in SQLite they are
  allowed only while the statement is prepared or reset (SQLITE_MISUSE
  otherwise), and an index outside ``1..parameter count`` is SQLITE_RANGE.
  Both trap, as in lunatic.
* The first ``sqlite3_step`` after prepare or reset executes the statement
  (with every unbound parameter NULL) and returns its first row; each further
  step returns the next row (100), then 101. A DML statement runs to
  completion in its first step (SQLite already does all the work of an
  INSERT/UPDATE/DELETE ... RETURNING there; lunatrio also buffers its rows,
  so its implicit transaction ends at that step), and its changes are
  applied exactly once. Other statements stream their rows.
  Stepping a finished or failed statement starts it again (SQLite's automatic
  reset); ``statement_reset`` re-arms it, reporting (trapping on) the error of
  a failed last step as ``sqlite3_reset`` does.
* ``column_count`` is known from compilation. Column names are known once the
  statement has run; before its first step, a pure query (SELECT, VALUES,
  read-only PRAGMAs, EXPLAIN) is run once on a throwaway cursor to read them
  (it has no side effects, and its real execution still starts at the first
  step). A statement with side effects is never run early: asking for its
  column names before its first step traps when it has result columns (see
  the deviations).
* ``read_row``/``read_column`` without a current row (before the first step,
  after the last) read NULLs, as SQLite's ``sqlite3_column_*`` do.
* What Python's sqlite3 does not expose is kept by :class:`Connection`: the
  last result code and message (``sqlite3_errcode``/``sqlite3_errmsg``, for
  ``last_error``: the outcome of the last ``execute``, ``query_prepare``,
  ``bind_value``, ``sqlite3_step`` or ``statement_reset`` on the connection;
  a step leaves 100 "another row available" or 101 "no more rows available",
  as SQLite does; column reads leave it alone, where SQLite would record
  SQLITE_RANGE for a read without a row) and ``sqlite3_changes``, taken from
  SQLite's ``changes()`` right after a counting statement ends (the
  ``EXPLAIN`` compilations would otherwise reset it). Codes are SQLite's
  primary result codes, as lunatic's ``sqlite`` crate reports them.
* ``execute`` runs the statements one by one like ``sqlite3_exec``: each to
  completion, stopping at the first error, whose code it returns. The
  connection is in autocommit mode (``isolation_level=None``): transactions
  are the guest's business, nothing is committed implicitly.
"""

from __future__ import annotations

import re
import sqlite3
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Final, NamedTuple, NoReturn, TypeAlias

__all__ = ["Connection", "Result", "SqliteFailure", "Statement", "Text", "Value"]

# SQLite's result codes used here.
SQLITE_ERROR: Final = 1
SQLITE_MISUSE: Final = 21
SQLITE_RANGE: Final = 25
SQLITE_ROW: Final = 100
SQLITE_DONE: Final = 101

#: A value bound to, or read from, a statement (TEXT read back is :class:`Text`).
Value: TypeAlias = int | float | str | bytes | None


class Text(bytes):
    """A TEXT value as the connection's ``text_factory`` hands it over: its
    raw bytes, which tells it apart from a BLOB (plain ``bytes``)."""

    __slots__ = ()


class Result(NamedTuple):
    """A result code and its message, as ``sqlite3_errcode``/``errmsg`` report."""

    code: int
    message: str

    @classmethod
    def of(cls, error: sqlite3.Error) -> Result:
        """The primary result code and message of a Python sqlite3 error
        (SQLITE_ERROR for errors Python raises itself)."""
        code = getattr(error, "sqlite_errorcode", None)
        return cls(code & 0xFF if isinstance(code, int) else SQLITE_ERROR, str(error))

    def __str__(self) -> str:
        # how the `sqlite` crate displays its errors
        return f"{self.message} (code {self.code})"


_ROW_AVAILABLE: Final = Result(SQLITE_ROW, "another row available")
_NO_MORE_ROWS: Final = Result(SQLITE_DONE, "no more rows available")
_MISUSE: Final = Result(SQLITE_MISUSE, "bad parameter or other API misuse")
_OUT_OF_RANGE: Final = Result(SQLITE_RANGE, "column index out of range")


class SqliteFailure(Exception):
    """An SQLite operation failed; the text is the error's display. The host
    function makes it a trap with its context (or, for ``open``, an error id)."""


# -- SQL text ------------------------------------------------------------------------

_BLANKS: Final = " \t\n\f\r;"
_EXPLAIN: Final = re.compile(r"explain\b", re.IGNORECASE)


def _skip_blank(sql: str, pos: int) -> int:
    """The index of the first character from ``pos`` on that is not
    whitespace, a comment or an empty statement's ``;``."""
    n = len(sql)
    while pos < n:
        if sql[pos] in _BLANKS:
            pos += 1
        elif sql.startswith("--", pos):
            end = sql.find("\n", pos)
            pos = n if end < 0 else end + 1
        elif sql.startswith("/*", pos):
            end = sql.find("*/", pos + 2)
            pos = n if end < 0 else end + 2  # SQLite lets a comment run to the end
        else:
            break
    return pos


def _split_first(sql: str) -> tuple[str, str]:
    """``(first statement, rest)``, the statement as ``sqlite3_prepare`` takes
    it: leading blanks and empty statements skipped, up to the first ``;``
    that completes it (``sqlite3_complete`` knows strings, comments and
    trigger bodies). The first part is ``""`` when no statement is left."""
    start = _skip_blank(sql, 0)
    end = start
    while (end := sql.find(";", end) + 1) > 0:
        if sqlite3.complete_statement(sql[start:end]):
            return sql[start:end], sql[end:]
    return sql[start:], ""


def _statements(sql: str) -> Iterator[str]:
    """Every statement of ``sql``, in order."""
    first, rest = _split_first(sql)
    while first:
        yield first
        first, rest = _split_first(rest)


# -- running SQL on Python's sqlite3 --------------------------------------------------

_BINDINGS: Final = re.compile(r"current statement uses (\d+),")
_NAMED_IN_SEQUENCE: Final = r"Binding \d+ \(.*\) is a named parameter"


def _execute(db: sqlite3.Connection, sql: str, args: Sequence[Value]) -> sqlite3.Cursor:
    """Execute ``sql`` (one statement) with its parameters bound by index.

    Python 3.12+ warns when a sequence binds ``:name`` placeholders (3.12.1
    also ``?NNN`` ones); binding by index is what lunatic does, so that
    warning is silenced.
    """
    if args:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _NAMED_IN_SEQUENCE, DeprecationWarning)
            return db.execute(sql, args)
    return db.execute(sql, args)


def _execute_unbound(db: sqlite3.Connection, sql: str) -> tuple[sqlite3.Cursor, int]:
    """Execute ``sql`` with every parameter NULL; also return how many it has.

    Python insists on a value for each parameter and reports the count when
    it gets too few (binding happens after compiling, before running).
    """
    try:
        return db.execute(sql), 0
    except sqlite3.ProgrammingError as e:
        match = _BINDINGS.search(str(e))
        if match is None:
            raise
    count = int(match[1])
    return _execute(db, sql, (None,) * count), count


_QUERY_ACTIONS: Final = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_COUNTING_ACTIONS: Final = frozenset(
    {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}
)
#: PRAGMAs that only report, whatever their argument.
_READ_ONLY_PRAGMAS: Final = frozenset(
    {
        "collation_list",
        "compile_options",
        "database_list",
        "foreign_key_check",
        "foreign_key_list",
        "function_list",
        "index_info",
        "index_list",
        "index_xinfo",
        "integrity_check",
        "module_list",
        "pragma_list",
        "quick_check",
        "table_info",
        "table_list",
        "table_xinfo",
    }
)


class _Observer:
    """Records what SQLite compiles (authorizer) and whether a statement
    started running (trace callback) while it is installed."""

    __slots__ = ("actions", "started")

    def __init__(self) -> None:
        self.actions: list[tuple[int, str | None, str | None]] = []
        self.started = False

    def authorize(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, inner: str | None
    ) -> int:
        self.actions.append((action, arg1, inner))
        return sqlite3.SQLITE_OK

    def trace(self, _sql: str) -> None:
        self.started = True

    def is_query(self) -> bool:
        """Whether the compiled statement only reads (it may be run early)."""
        return all(
            action in _QUERY_ACTIONS
            or (action == sqlite3.SQLITE_PRAGMA and (arg or "").lower() in _READ_ONLY_PRAGMAS)
            for action, arg, _ in self.actions
        )

    def counts_changes(self) -> bool:
        """Whether the statement is an INSERT, UPDATE or DELETE, whose end sets
        ``sqlite3_changes`` (writes by triggers and to the schema do not)."""
        return any(
            action in _COUNTING_ACTIONS
            and inner is None
            and not (table or "").lower().startswith("sqlite_")
            for action, table, inner in self.actions
        )


@contextmanager
def _observing(db: sqlite3.Connection) -> Iterator[_Observer]:
    seen = _Observer()
    db.set_authorizer(seen.authorize)
    db.set_trace_callback(seen.trace)
    try:
        yield seen
    finally:
        db.set_authorizer(None)
        db.set_trace_callback(None)


class _Compiled(NamedTuple):
    """What compiling a statement tells about it."""

    params: int
    columns: int
    #: Known at once only for the guest's own EXPLAIN statements.
    names: tuple[str, ...] | None
    query: bool
    counts_changes: bool


#: A blank SQL text: no statement (``sqlite3_prepare`` gives a NULL one).
_NOTHING: Final = _Compiled(0, 0, (), True, False)


def _names_of(cursor: sqlite3.Cursor) -> tuple[str, ...]:
    return tuple(d[0] for d in cursor.description or ())


def _result_columns(listing: sqlite3.Cursor) -> int:
    """The result width in an EXPLAIN listing: P2 of its ResultRow (0: none)."""
    for _addr, opcode, _p1, p2, *_ in listing:
        if opcode == b"ResultRow":
            return int(p2)
    return 0


def _compile(db: sqlite3.Connection, sql: str) -> _Compiled:
    """Compile ``sql`` (one statement) without running it; raises
    ``sqlite3.Error`` when it does not compile.

    An EXPLAIN statement of the guest's is run as it is (it only lists a
    program), which also gives its column names.
    """
    own_explain = _EXPLAIN.match(sql) is not None
    with _observing(db) as seen:
        cursor, params = _execute_unbound(db, sql if own_explain else f"EXPLAIN {sql}")
        try:
            names = _names_of(cursor) if own_explain else None
            columns = len(names) if names is not None else _result_columns(cursor)
        finally:
            cursor.close()
    if own_explain:
        return _Compiled(params, columns, names, True, False)
    return _Compiled(params, columns, None, seen.is_query(), seen.counts_changes())


# -- connections and statements --------------------------------------------------------


class Connection:
    """An open database, with the state SQLite's C API would report and
    Python's sqlite3 does not: the last result (``last``, None for SQLITE_OK)
    and ``sqlite3_changes`` (``changes``)."""

    __slots__ = ("changes", "closed", "db", "last", "statements")

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.last: Result | None = None
        self.changes = 0
        self.statements: set[Statement] = set()
        self.closed = False

    @classmethod
    def open(cls, path: str) -> Connection:
        """Open or create the database at ``path`` (``""``: a temporary one,
        ``":memory:"``); raises :class:`SqliteFailure`.

        No busy timeout (SQLITE_BUSY at once, never blocking the Trio
        thread); autocommit; no statement cache, so that every execution is
        compiled under the authorizer when one is installed; TEXT read as
        :class:`Text`. The connection belongs to one process, whose calls the
        runtime serializes, so Python's same-thread check is off (it would
        refuse a close made elsewhere).
        """
        try:
            db = sqlite3.connect(
                path, timeout=0, isolation_level=None, check_same_thread=False, cached_statements=0
            )
        except sqlite3.Error as e:
            raise SqliteFailure(str(Result.of(e))) from None
        except ValueError as e:  # a NUL in the path
            raise SqliteFailure(str(e)) from None
        db.text_factory = Text
        return cls(db)

    def prepare(self, sql: str) -> Statement:
        """Compile the first statement of ``sql`` (raises :class:`SqliteFailure`)."""
        first, _tail = _split_first(sql)
        try:
            info = _compile(self.db, first) if first else _NOTHING
        except sqlite3.Error as e:
            self.last = Result.of(e)
            raise SqliteFailure(str(self.last)) from None
        self.last = None
        statement = Statement(self, first, info)
        self.statements.add(statement)
        return statement

    def execute(self, sql: str) -> int:
        """Run every statement of ``sql`` like ``sqlite3_exec``: 0, or the
        result code of the first that fails (the rest do not run)."""
        for text in _statements(sql):
            failed: Result | None = None
            with _observing(self.db) as seen:
                try:
                    cursor, _ = _execute_unbound(self.db, text)
                    try:
                        for _row in cursor:
                            pass
                    finally:
                        cursor.close()
                except sqlite3.Error as e:
                    failed = Result.of(e)
            if seen.started and seen.counts_changes():
                self.changes = self.read_changes()
            if failed is not None:
                self.last = failed
                return failed.code
        self.last = None
        return 0

    def read_changes(self) -> int:
        """SQLite's ``changes()`` now (right after a counting statement ended)."""
        row = self.db.execute("SELECT changes()").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Finalize the statements, then close the database (never raises)."""
        if self.closed:
            return
        self.closed = True
        for statement in list(self.statements):
            statement.close()
        with suppress(sqlite3.Error):
            self.db.close()


_READY: Final = 0  # prepared or reset: binds allowed, the next step executes
_RUNNING: Final = 1  # a row is current
_HALTED: Final = 2  # done or failed: the next step starts again


class Statement:
    """A prepared statement with SQLite's prepare/bind/step/reset/finalize
    semantics (see the module docstring)."""

    __slots__ = (
        "_args",
        "_buffered",
        "_closed",
        "_conn",
        "_cursor",
        "_failed",
        "_info",
        "_names",
        "_pending_changes",
        "_row",
        "_sql",
        "_state",
    )

    def __init__(self, conn: Connection, sql: str, info: _Compiled) -> None:
        self._conn = conn
        self._sql = sql
        self._info = info
        self._args: dict[int, Value] = {}
        self._names = info.names
        self._state = _READY
        self._cursor: sqlite3.Cursor | None = None  # a streaming execution
        self._buffered: deque[tuple[Value, ...]] | None = None  # a counting one's rows
        self._row: tuple[Value, ...] | None = None
        self._failed: Result | None = None
        self._pending_changes: int | None = None
        self._closed = False

    # -- binding -----------------------------------------------------------------

    def bind(self, pairs: Sequence[tuple[int | None, Value]]) -> None:
        """Bind each ``(index, value)`` in order; ``None`` stands for a key
        that is not numeric, which lunatic binds at index 1."""
        for index, value in pairs:
            if not self._sql or self._state != _READY:
                self._fail_with(_MISUSE)
            i = 1 if index is None else index
            if not 1 <= i <= self._info.params:
                self._fail_with(_OUT_OF_RANGE)
            self._args[i] = value
            self._conn.last = None

    def _fail_with(self, result: Result) -> NoReturn:
        self._conn.last = result
        raise SqliteFailure(str(result))

    def _arguments(self) -> tuple[Value, ...]:
        return tuple(self._args.get(i) for i in range(1, self._info.params + 1))

    # -- stepping ----------------------------------------------------------------

    def step(self) -> int:
        """SQLITE_ROW with the next row current, or SQLITE_DONE; raises
        :class:`SqliteFailure` when SQLite fails."""
        if not self._sql:
            raise SqliteFailure(str(_MISUSE))  # sqlite3_step(NULL)
        if self._state == _HALTED:
            self._rearm()  # SQLite's automatic reset
        if self._state == _READY:
            self._start()
        row = self._next_row()
        if row is None:
            self._halt()
            self._conn.last = _NO_MORE_ROWS
            return SQLITE_DONE
        self._row = row
        self._conn.last = _ROW_AVAILABLE
        return SQLITE_ROW

    def _start(self) -> None:
        """Execute the statement: a counting one to completion (its rows
        buffered, its change count kept until it halts), any other one
        streaming."""
        db, counting = self._conn.db, self._info.counts_changes
        failed: sqlite3.Error | None = None
        with _observing(db) as seen:
            try:
                cursor = _execute(db, self._sql, self._arguments())
                self._names = _names_of(cursor)
                if counting:
                    try:
                        self._buffered = deque(cursor.fetchall())
                    finally:
                        cursor.close()
                else:
                    self._cursor = cursor
            except sqlite3.Error as e:
                failed = e
        if counting and seen.started:  # it ran (a failed compilation changes nothing)
            self._pending_changes = self._conn.read_changes()
        if failed is not None:
            self._fail(failed)
        self._state = _RUNNING

    def _next_row(self) -> tuple[Value, ...] | None:
        if self._buffered is not None:
            return self._buffered.popleft() if self._buffered else None
        assert self._cursor is not None
        try:
            row: tuple[Value, ...] | None = self._cursor.fetchone()
        except sqlite3.Error as e:
            self._fail(e)
        return row

    def _fail(self, error: sqlite3.Error) -> NoReturn:
        result = Result.of(error)
        self._halt()
        self._failed = result
        self._fail_with(result)

    def _halt(self) -> None:
        """End the current execution (the VM halts: a counting statement's
        change count becomes ``sqlite3_changes``)."""
        cursor, self._cursor = self._cursor, None
        if cursor is not None:
            with suppress(sqlite3.Error):
                cursor.close()
        self._buffered = None
        self._row = None
        self._state = _HALTED
        if self._pending_changes is not None:
            self._conn.changes = self._pending_changes
            self._pending_changes = None

    def _rearm(self) -> None:
        self._halt()
        self._state = _READY
        self._failed = None

    def reset(self) -> None:
        """Back to the start, keeping the bindings; raises the last step's
        error, as ``sqlite3_reset`` returns it."""
        failed, was_ready = self._failed, self._state == _READY
        self._rearm()
        if failed is not None:
            self._fail_with(failed)
        if not was_ready:
            self._conn.last = None

    # -- columns -----------------------------------------------------------------

    def column_count(self) -> int:
        return len(self._names) if self._names is not None else self._info.columns

    def column_names(self) -> tuple[str, ...]:
        """The result's column names; a pure query that has not run yet is
        run once, aside, to learn them."""
        if self._names is not None:
            return self._names
        if self._info.columns == 0:
            return ()
        if not self._info.query:
            raise SqliteFailure(
                "lunatrio knows the column names of a statement with side effects "
                "only after its first step"
            )
        try:
            cursor = _execute(self._conn.db, self._sql, self._arguments())
        except sqlite3.Error as e:
            raise SqliteFailure(str(Result.of(e))) from None
        try:
            self._names = _names_of(cursor)
        finally:
            cursor.close()
        return self._names

    def column_name(self, index: int) -> str:
        names = self.column_names()
        if index >= len(names):
            raise SqliteFailure(f"the index is out of range ({index})")
        return names[index]

    def row(self) -> list[Value]:
        """The current row; NULLs when there is none."""
        if self._row is None:
            return [None] * self.column_count()
        return list(self._row)

    def column(self, index: int) -> Value:
        if index >= self.column_count():
            raise SqliteFailure(f"the index is out of range ({index})")
        return None if self._row is None else self._row[index]

    def close(self) -> None:
        """Finalize: end any execution; the connection stays open."""
        if self._closed:
            return
        self._closed = True
        self._halt()
        self._conn.statements.discard(self)
