"""The tests of a lunatic test build: discovery, selection and verdicts.

lunatic-rs's ``#[lunatic::test]`` exports each test as a function named
``#lunatic_test_[#ignore_][#panic_<expected>#]<module path>::<name>``, where
``<expected>`` is the should-panic text with ``#`` escaped as ``\\#``
(HOSTAPI.md sections 1.13 and 5.2). This module is pure: it turns export names
into :class:`TestCase` values, selects them as libtest's arguments ask, and
judges a finished test from its exit and its own captured output.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ._exit import Exit

__all__ = [
    "TEST_PREFIX",
    "Status",
    "TestCase",
    "Verdict",
    "judge",
    "panic_message",
    "parse_test_export",
    "select",
]

TEST_PREFIX = "#lunatic_test_"
_IGNORE = "#ignore_"
_PANIC = "#panic_"


@dataclass(frozen=True, slots=True)
class TestCase:
    """One test export.

    ``name`` is ``<module path>::<fn name>``, as libtest prints it;
    ``should_panic`` is ``None`` for an ordinary test, else the text the
    panic message must contain (``""``: any failure will do).
    """

    export: str
    name: str
    ignored: bool = False
    should_panic: str | None = None


def parse_test_export(export: str) -> TestCase | None:
    """The test an export name declares, or ``None`` when it is not a test."""
    if not export.startswith(TEST_PREFIX):
        return None
    rest = export[len(TEST_PREFIX) :]
    ignored = rest.startswith(_IGNORE)
    if ignored:
        rest = rest[len(_IGNORE) :]
    expected = None
    if rest.startswith(_PANIC):
        rest = rest[len(_PANIC) :]
        # the expected text runs to the first `#` not escaped as `\#`
        end = 0
        while end < len(rest) and not (rest[end] == "#" and (end == 0 or rest[end - 1] != "\\")):
            end += 1
        expected = rest[:end].replace("\\#", "#")
        rest = rest[end + 1 :]
    return TestCase(export, rest, ignored, expected)


def select(
    cases: Iterable[TestCase],
    filters: Sequence[str] = (),
    *,
    exact: bool = False,
    ignored_only: bool = False,
    include_ignored: bool = False,
) -> tuple[list[TestCase], int]:
    """The tests to report on, in export order, and how many were filtered out.

    A test is kept when its name contains one of ``filters`` (equals one,
    with ``exact``), or when there are no filters. ``ignored_only`` keeps
    only ignored tests and runs them; ``include_ignored`` runs every test.
    Tests still marked ignored are reported as ignored, not run.
    """
    kept: list[TestCase] = []
    total = 0
    for case in cases:
        total += 1
        if ignored_only and not case.ignored:
            continue
        if filters and not any(case.name == f if exact else f in case.name for f in filters):
            continue
        if case.ignored and (ignored_only or include_ignored):
            case = TestCase(case.export, case.name, False, case.should_panic)
        kept.append(case)
    return kept, total - len(kept)


# Before Rust 1.73 (what lunatic matches, HOSTAPI.md correction 1):
#   thread 'main' panicked at 'boom', src/lib.rs:3:5
_OLD_PANIC = re.compile(r"^thread '.*' panicked at '(.*)', ", re.MULTILINE | re.DOTALL)
# Rust 1.73 and later: the location ends the line, the message follows, up
# to the backtrace note (or the end of the output).
_NEW_PANIC = re.compile(
    r"^thread '[^\n]*' panicked at [^\n]*:\d+:\d+:\n(.*?)(?=\nnote: |\n\Z|\Z)",
    re.MULTILINE | re.DOTALL,
)


def panic_message(output: str) -> str | None:
    """The message of the Rust panic reported in ``output``, if there is one."""
    m = _OLD_PANIC.search(output)
    if m is None:
        m = _NEW_PANIC.search(output)
    return None if m is None else m.group(1)


class Status(enum.Enum):
    """How a test ended, as libtest reports it."""

    OK = "ok"
    FAILED = "FAILED"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A test's status and the note to print under its output, if any."""

    status: Status
    note: str = ""


def judge(case: TestCase, exit: Exit, output: str) -> Verdict:
    """Judge a finished test from its root process's exit and own output.

    An ordinary test passes when its process ends normally. A should-panic
    test passes when the process fails and either no text is expected or the
    panic message in its own output contains the text (HOSTAPI.md section
    1.13 and correction 1).
    """
    if case.should_panic is None:
        if exit.normal:
            return Verdict(Status.OK)
        if panic_message(output) is not None:
            return Verdict(Status.FAILED)
        return Verdict(Status.FAILED, f"note: the test process ended with {exit}")
    if exit.normal:
        return Verdict(Status.FAILED, "note: test did not panic as expected")
    message = panic_message(output)
    expected = case.should_panic
    if message is None:
        if expected == "":
            return Verdict(Status.OK)
        return Verdict(
            Status.FAILED,
            f"note: expected a panic containing `{expected}`, but the test process printed "
            f"none and ended with {exit}",
        )
    if expected in message:
        return Verdict(Status.OK)
    return Verdict(
        Status.FAILED,
        "note: panic did not contain expected string\n"
        f'      panic message: `"{message}"`,\n'
        f' expected substring: `"{expected}"`',
    )
