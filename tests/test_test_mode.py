"""``lunatrio test``: lunatic's test mode (HOSTAPI.md section 1.13, corrections 1-2)."""

from __future__ import annotations

import io
import logging
import pathlib
import re
import subprocess
import sys

import pytest
import trio
import trio.testing

import supervisor
from supervisor import Exit, ExitReason
from supervisor._test_cases import (
    Status,
    judge,
    panic_message,
    parse_test_export,
    select,
)
from supervisor._test_cases import (
    TestCase as Case,
)
from supervisor._test_runner import LibtestReport, Summary, run_tests
from supervisor._test_runner import TestOptions as Options
from supervisor.cli import is_test_build

from .guests import data_string, guest, lunatrio, result_lines

# -- export names ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("export", "case"),
    [
        ("#lunatic_test_m::t", Case("#lunatic_test_m::t", "m::t")),
        ("#lunatic_test_#ignore_m::t", Case("#lunatic_test_#ignore_m::t", "m::t", True)),
        (
            "#lunatic_test_#panic_boom#m::t",
            Case("#lunatic_test_#panic_boom#m::t", "m::t", False, "boom"),
        ),
        ("#lunatic_test_#panic_#m::t", Case("#lunatic_test_#panic_#m::t", "m::t", False, "")),
        (
            "#lunatic_test_#ignore_#panic_a \\# b#m::t",
            Case("#lunatic_test_#ignore_#panic_a \\# b#m::t", "m::t", True, "a # b"),
        ),
    ],
)
def test_export_names_declare_ignore_and_should_panic_prefixes(export: str, case: Case) -> None:
    assert parse_test_export(export) == case


@pytest.mark.parametrize("export", ["_start", "lunatic_test_m::t", "#lunatic_tes", "memory"])
def test_other_exports_are_not_tests(export: str) -> None:
    assert parse_test_export(export) is None


CASES = [
    Case("e1", "a::one"),
    Case("e2", "a::one_more"),
    Case("e3", "b::two", ignored=True),
]


def test_a_filter_keeps_names_containing_it_and_counts_the_rest() -> None:
    kept, out = select(CASES, ["one"])
    assert [c.name for c in kept] == ["a::one", "a::one_more"]
    assert out == 1


def test_exact_filters_match_whole_names() -> None:
    kept, out = select(CASES, ["a::one"], exact=True)
    assert [c.name for c in kept] == ["a::one"]
    assert out == 2


def test_ignored_tests_are_reported_unless_ignored_or_include_ignored_is_given() -> None:
    kept, _ = select(CASES)
    assert [c.ignored for c in kept] == [False, False, True]
    kept, out = select(CASES, ignored_only=True)
    assert [(c.name, c.ignored) for c in kept] == [("b::two", False)]
    assert out == 2
    kept, _ = select(CASES, include_ignored=True)
    assert not any(c.ignored for c in kept)


# -- panic messages and verdicts ------------------------------------------------------

OLD = "hello\nthread 'main' panicked at 'boom: 42', src/lib.rs:3:5\nnote: run with ...\n"
NEW = (
    "hello\nthread 'main' panicked at src/lib.rs:3:5:\nassertion `left == right` failed\n"
    "  left: 1\n right: 2\nnote: run with `RUST_BACKTRACE=1` environment variable\n"
)


def test_panic_messages_are_found_in_both_rust_formats() -> None:
    assert panic_message(OLD) == "boom: 42"
    assert panic_message(NEW) == "assertion `left == right` failed\n  left: 1\n right: 2"
    assert panic_message("thread 'main' panicked at src/a.rs:1:2:\nbare") == "bare"
    assert panic_message("no panic here\n") is None


FAILED = Exit(ExitReason.FAILURE, "wasm trap: unreachable")
NORMAL = Exit(ExitReason.NORMAL)


def test_an_ordinary_test_passes_only_when_it_ends_normally() -> None:
    case = Case("e", "t")
    assert judge(case, NORMAL, "").status is Status.OK
    assert judge(case, FAILED, OLD).status is Status.FAILED
    assert judge(case, Exit(ExitReason.KILLED, "x"), "").note.startswith("note: the test process")


def test_a_should_panic_test_that_returns_fails() -> None:
    v = judge(Case("e", "t", should_panic=""), NORMAL, "")
    assert (v.status, v.note) == (Status.FAILED, "note: test did not panic as expected")


def test_a_should_panic_test_passes_when_the_message_contains_the_expected_text() -> None:
    assert judge(Case("e", "t", should_panic="boom"), FAILED, OLD).status is Status.OK
    assert judge(Case("e", "t", should_panic="left: 1"), FAILED, NEW).status is Status.OK
    v = judge(Case("e", "t", should_panic="bang"), FAILED, OLD)
    assert v.status is Status.FAILED
    assert v.note.startswith("note: panic did not contain expected string")


def test_any_failure_satisfies_an_empty_expected_text_but_only_a_panic_a_nonempty_one() -> None:
    killed = Exit(ExitReason.KILLED, "linked process 2 exited")
    assert judge(Case("e", "t", should_panic=""), killed, "").status is Status.OK
    assert judge(Case("e", "t", should_panic="x"), killed, "").status is Status.FAILED


# -- running a test build ----------------------------------------------------------------

TEST_IMPORTS = """
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes (param i32 i32) (result i32)))
"""

PRINT = """
  (func $print (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 900) (local.get $ptr))
    (i32.store (i32.const 904) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 900) (i32.const 1) (i32.const 908))))
"""

STRINGS = {
    "hello": (0, b"hello from a test\n"),
    "old": (100, b"thread 'main' panicked at 'boom here', src/lib.rs:3:5\n"),
    "new": (200, b"thread 'main' panicked at src/lib.rs:9:5:\nkaboom\n"),
    "child": (300, b"child"),
    "chatty": (320, b"a child speaks\n"),
    "forever": (400, b"forever"),
    "panicky": (420, b"panicky"),
}


def at(key: str) -> str:
    offset, data = STRINGS[key]
    return f"(i32.const {offset}) (i32.const {len(data)})"


def suite_module(body: str) -> str:
    data = "".join(data_string(o, d) for o, d in STRINGS.values())
    return guest(PRINT + body + data, extra_imports=TEST_IMPORTS)


SUITE = suite_module(
    f"""
  (func (export "#lunatic_test_suite::passes") (call $print (i32.const 1) {at("hello")}))
  (func (export "#lunatic_test_suite::traps") (call $print (i32.const 1) {at("hello")}) unreachable)
  (func (export "#lunatic_test_#ignore_suite::ignored") unreachable)
  (func (export "#lunatic_test_#panic_boom#suite::panics_old_style")
    (call $print (i32.const 2) {at("old")}) unreachable)
  (func (export "#lunatic_test_#panic_kaboom#suite::panics_new_style")
    (call $print (i32.const 2) {at("new")}) unreachable)
  (func (export "#lunatic_test_#panic_#suite::any_failure_will_do") unreachable)
  (func (export "#lunatic_test_#panic_boom#suite::did_not_panic"))
  (func (export "#lunatic_test_#panic_bang#suite::wrong_message")
    (call $print (i32.const 2) {at("old")}) unreachable)
  (func (export "child") (call $print (i32.const 1) {at("chatty")}))
  (func (export "forever") (loop $l (call $sleep_ms (i64.const 1000)) (br $l)))
  (func (export "#lunatic_test_suite::child_output_is_captured")
    (drop (call $spawn_self (i64.const 0) {at("child")} (i32.const 0) (i32.const 0)))
    (call $sleep_ms (i64.const 10))
    (call $print (i32.const 1) {at("hello")})
    unreachable)
  (func (export "panicky") (call $print (i32.const 2) {at("old")}) unreachable)
  (func (export "#lunatic_test_#panic_boom#suite::a_childs_panic_does_not_count")
    ;; a linked child panics with the expected text: it kills the test, but
    ;; only the test's own stream is searched for the message
    (drop (call $spawn_self (i64.const 1) {at("panicky")} (i32.const 0) (i32.const 0)))
    (loop $l (call $sleep_ms (i64.const 1000)) (br $l)))
  (func (export "#lunatic_test_suite::leaves_a_process_behind")
    (drop (call $spawn_self (i64.const 0) {at("forever")} (i32.const 0) (i32.const 0))))
  (func (export "#lunatic_test_#ignore_suite::never_ends")
    (loop $l (call $sleep_ms (i64.const 1000)) (br $l)))
"""
)

EXPECTED = {
    "suite::passes": "ok",
    "suite::traps": "FAILED",
    "suite::ignored": "ignored",
    "suite::panics_old_style - should panic": "ok",
    "suite::panics_new_style - should panic": "ok",
    "suite::any_failure_will_do - should panic": "ok",
    "suite::did_not_panic - should panic": "FAILED",
    "suite::wrong_message - should panic": "FAILED",
    "suite::child_output_is_captured": "FAILED",
    "suite::a_childs_panic_does_not_count - should panic": "FAILED",
    "suite::leaves_a_process_behind": "ok",
    "suite::never_ends": "ignored",
}


async def run_suite(
    runtime: supervisor.Runtime, wat: str, *filters: str, **options: object
) -> tuple[Summary, str]:
    module = runtime.compile_module(wat)
    from supervisor._test_cases import parse_test_export as parse

    cases = [c for name in module.functions if (c := parse(name)) is not None]
    selected, out = select(cases, list(filters))
    buf = io.StringIO()
    summary = await run_tests(
        runtime,
        module,
        selected,
        Options(**options),  # type: ignore[arg-type]
        LibtestReport(buf, color=False),
        filtered_out=out,
    )
    return summary, buf.getvalue()


async def test_each_test_is_judged_and_reported_as_libtest_does(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    summary, text = await run_suite(runtime, SUITE)
    assert result_lines(text) == EXPECTED
    assert text.startswith("\nrunning 12 tests\n")
    assert (summary.passed, summary.failed, summary.ignored) == (5, 5, 2)
    last = text.strip().splitlines()[-1]
    assert re.fullmatch(
        r"test result: FAILED\. 5 passed; 5 failed; 2 ignored; 0 measured; 0 filtered out; "
        r"finished in \d+\.\d\ds",
        last,
    )
    # the failures section lists every failed test after their outputs
    listed = text.split("\nfailures:\n")[-1]
    assert sorted(re.findall(r"^    (\S+)$", listed, re.MULTILINE)) == sorted(
        n.split(" ")[0] for n, s in EXPECTED.items() if s == "FAILED"
    )


async def test_failures_show_their_captured_output_and_a_note(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    _, text = await run_suite(runtime, SUITE)
    section = text.split("---- suite::traps stdout ----\n")[1].split("\n\n")[0]
    assert section.startswith("hello from a test\n")
    assert "note: the test process ended with failure: " in section
    assert "note: test did not panic as expected" in text
    assert 'panic message: `"boom here"`,\n expected substring: `"bang"`' in text


async def test_children_write_to_new_streams_of_the_tests_capture_group(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    _, text = await run_suite(runtime, SUITE, "child_output")
    section = text.split("---- suite::child_output_is_captured stdout ----\n")[1]
    assert section.startswith(
        " --- process 0 stdout ---\nhello from a test\n --- process 1 stdout ---\na child speaks\n"
    )


async def test_a_finished_tests_leftover_processes_are_killed_silently(
    runtime: supervisor.Runtime,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        summary, _ = await run_suite(runtime, SUITE, "leaves_a_process_behind")
    assert summary.passed == 1
    assert runtime.processes() == []
    assert "killed" not in caplog.text


async def test_a_test_past_its_timeout_fails_and_its_processes_are_killed(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    wat = suite_module(
        f"""
  (func (export "forever") (loop $l (call $sleep_ms (i64.const 1000)) (br $l)))
  (func (export "#lunatic_test_t::hangs")
    (drop (call $spawn_self (i64.const 0) {at("forever")} (i32.const 0) (i32.const 0)))
    (loop $l (call $sleep_ms (i64.const 1000)) (br $l)))
"""
    )
    summary, text = await run_suite(runtime, wat, timeout=30)
    assert summary.failed == 1
    assert "did not finish within 30 s" in text
    assert trio.current_time() == pytest.approx(30)
    assert runtime.processes() == []


SLEEPERS = suite_module(
    "".join(
        f'(func (export "#lunatic_test_t::sleeps_{i}") (call $sleep_ms (i64.const 10000)))'
        for i in range(3)
    )
)


async def test_tests_run_concurrently_unless_test_threads_limits_them(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    await run_suite(runtime, SLEEPERS)
    assert trio.current_time() == pytest.approx(10)
    await run_suite(runtime, SLEEPERS, threads=1)
    assert trio.current_time() == pytest.approx(40)


async def test_every_test_is_the_root_of_its_own_environment(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    # each test sees process id 1 and an empty registry
    wat = suite_module(
        "".join(
            f"""(func (export "#lunatic_test_t::{i}")
    (if (i64.ne (call $process_id) (i64.const 1)) (then unreachable))
    (if (i64.ne (call $environment_id) (i64.const 0)) (then unreachable)))"""
            for i in range(3)
        )
    )
    summary, _ = await run_suite(runtime, wat)
    assert summary.passed == 3


async def test_the_trailing_arguments_are_the_only_wasi_arguments(
    runtime: supervisor.Runtime,
) -> None:
    wat = suite_module(
        """(func (export "#lunatic_test_t::argc")
    (drop (call $args_sizes (i32.const 500) (i32.const 504)))
    (if (i32.ne (i32.load (i32.const 500)) (i32.const 2)) (then unreachable)))"""
    )
    summary, _ = await run_suite(runtime, wat, args=["a", "b"])
    assert summary.passed == 1
    summary, _ = await run_suite(runtime, wat)
    assert summary.failed == 1


# -- the command ---------------------------------------------------------------------------


@pytest.fixture
def suite_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "suite.wat"
    path.write_text(SUITE)
    return path


def test_lunatrio_test_exits_1_when_a_test_failed(
    suite_file: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    r = lunatrio("test", str(suite_file), cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert result_lines(r.stdout) == EXPECTED
    assert r.stderr == ""  # the test mode logs errors only


def test_lunatrio_test_exits_0_when_every_selected_test_passed(
    suite_file: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    r = lunatrio("test", str(suite_file), "panics_", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 10 filtered out" in r.stdout


def test_color_always_colours_each_status_and_never_leaves_it_plain(
    suite_file: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    always = lunatrio("test", str(suite_file), "panics_", "--color", "always", cwd=tmp_path)
    assert "test suite::panics_old_style - should panic ... \x1b[32mok\x1b[0m" in always.stdout
    assert "test result: \x1b[32mok\x1b[0m." in always.stdout
    never = lunatrio("test", str(suite_file), "panics_", "--color", "never", cwd=tmp_path)
    assert "\x1b" not in never.stdout


def test_lunatrio_test_lists_tests(suite_file: pathlib.Path, tmp_path: pathlib.Path) -> None:
    r = lunatrio("test", str(suite_file), "--list", "--format", "terse", "--ignored", cwd=tmp_path)
    assert r.returncode == 0
    assert r.stdout.splitlines() == ["suite::ignored: test", "suite::never_ends: test"]
    r = lunatrio("test", str(suite_file), "--list", "--exact", "suite::passes", cwd=tmp_path)
    assert r.stdout.splitlines() == ["suite::passes: test", "", "1 test, 0 benchmarks"]


def test_lunatrio_test_runs_only_ignored_tests_with_ignored(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "t.wat"
    path.write_text(suite_module('(func (export "#lunatic_test_#ignore_t::slow"))'))
    r = lunatrio("test", str(path), "--ignored", cwd=tmp_path)
    assert r.returncode == 0
    assert "test t::slow ... ok" in r.stdout


def test_lunatrio_test_on_a_module_without_tests_says_so_and_exits_0(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "none.wat"
    path.write_text(guest('(func (export "_start"))'))
    r = lunatrio("test", str(path), cwd=tmp_path)
    assert r.returncode == 0
    assert "running 0 tests" in r.stdout
    assert "has no tests" in r.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "not found"), ("(module (func", "cannot load"), ("", "cannot load")],
)
def test_lunatrio_test_on_a_missing_or_bad_module_prints_one_line_and_exits_2(
    tmp_path: pathlib.Path, content: str | None, message: str
) -> None:
    path = tmp_path / "bad.wasm"
    if content is not None:
        path.write_text(content)
    r = lunatrio("test", str(path), cwd=tmp_path)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_cargo_running_a_test_build_selects_the_test_mode(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps = tmp_path / "target" / "wasm32-wasi" / "debug" / "deps"
    deps.mkdir(parents=True)
    wasm = deps / "suite-0123.wasm"
    wasm.write_text(SUITE)  # a text module under a .wasm name loads too
    r = lunatrio(str(wasm), "passes", cwd=tmp_path, CARGO_MANIFEST_DIR=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test suite::passes ... ok" in r.stdout
    monkeypatch.delenv("CARGO_MANIFEST_DIR", raising=False)
    assert not is_test_build(str(wasm))


async def test_captured_output_sinks_are_forgotten_with_their_store(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    from hostapi import ffi

    before = len(ffi._sinks)
    summary, _ = await run_suite(runtime, SUITE)
    assert summary.passed == 5
    assert len(ffi._sinks) == before


def test_lunatrio_test_exits_cleanly_after_captured_output(tmp_path: pathlib.Path) -> None:
    # wasmtime drops captured streams on its own worker threads; a callback
    # into Python from there while the interpreter exits used to abort it
    path = tmp_path / "prints.wat"
    path.write_text(
        suite_module(
            f'(func (export "#lunatic_test_t::prints") (call $print (i32.const 1) {at("hello")}))'
        )
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "supervisor", "test", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert (run.returncode, err) == (0, "")
