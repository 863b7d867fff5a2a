"""``lunatrio run``: the root process, exit statuses and bad input."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

from .guests import data_string, lunatrio

WASI = """
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
"""


def run(tmp_path: pathlib.Path, wat: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``lunatrio run [OPTIONS...] prog.wat [ARG]`` in ``tmp_path``: the last
    of ``args`` is the guest's argument, the others are options."""
    path = tmp_path / "prog.wat"
    path.write_text(wat)
    options, guest_args = args[:-1], args[-1:]
    return lunatrio("run", *options, str(path), *guest_args, cwd=tmp_path, timeout=60)


def program(body: str, data: str = "") -> str:
    return f"""(module {WASI}
  (import "lunatic::process" "sleep_ms" (func $sleep (param i64)))
  (import "lunatic::process" "spawn"
    (func $spawn (param i64 i64 i64 i32 i32 i32 i32 i32) (result i32)))
  (import "lunatic::process" "process_id" (func $pid (result i64)))
  (memory (export "memory") 1)
  {data}
  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 1000) (local.get $ptr))
    (i32.store (i32.const 1004) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 1000) (i32.const 1) (i32.const 1008))))
  {body})"""


def test_root_process_runs_start_and_prints(tmp_path: pathlib.Path) -> None:
    r = run(
        tmp_path,
        program(
            '(func (export "_start") (call $print (i32.const 0) (i32.const 6)))',
            data_string(0, b"hello\n"),
        ),
    )
    assert (r.returncode, r.stdout, r.stderr) == (0, "hello\n", "")


# print argv[0..n] separated by the NULs args_get leaves between them
PRINT_ARGS = """(func (export "_start")
    (local $size i32)
    (drop (call $args_sizes (i32.const 100) (i32.const 104)))
    (local.set $size (i32.load (i32.const 104)))
    (drop (call $args_get (i32.const 200) (i32.const 300)))
    (call $print (i32.load (i32.const 200)) (local.get $size)))"""


def test_wasi_arguments_are_the_file_name_then_the_guest_arguments(
    tmp_path: pathlib.Path,
) -> None:
    r = run(tmp_path, program(PRINT_ARGS), "--dir", str(tmp_path), "one two")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\0")[:-1] == ["prog.wat", "one two"]


def test_bench_is_passed_to_the_guest_and_never_selects_the_test_mode(
    tmp_path: pathlib.Path,
) -> None:
    # a test build where cargo puts one, with a _start that prints its arguments
    deps = tmp_path / "target" / "wasm32-wasi" / "release" / "deps"
    deps.mkdir(parents=True)
    wasm = deps / "bench-0123.wasm"
    wasm.write_text(program(PRINT_ARGS + '\n  (func (export "#lunatic_test_m::t"))'))
    tests = lunatrio("run", str(wasm), CARGO_MANIFEST_DIR=str(tmp_path))
    assert "test m::t ... ok" in tests.stdout, tests.stdout + tests.stderr
    bench = lunatrio("run", "--bench", str(wasm), "fast", CARGO_MANIFEST_DIR=str(tmp_path))
    assert bench.returncode == 0, bench.stderr
    assert bench.stdout.split("\0")[:-1] == [wasm.name, "fast", "--bench"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('(func (export "_start") (call $exit (i32.const 0)))', 0),
        ('(func (export "_start") (call $exit (i32.const 7)))', 7),
        ('(func (export "_start"))', 0),
    ],
)
def test_exit_status_is_0_or_the_proc_exit_code(
    tmp_path: pathlib.Path, body: str, status: int
) -> None:
    r = run(tmp_path, program(body))
    assert r.returncode == status


def test_a_trapping_root_exits_1_with_the_reason_on_stderr(tmp_path: pathlib.Path) -> None:
    r = run(tmp_path, program('(func (export "_start") unreachable)'))
    assert r.returncode == 1
    assert "process 1 failure: wasm trap: wasm `unreachable` instruction executed" in r.stderr
    assert "Traceback" not in r.stderr


def test_when_the_root_ends_every_other_process_is_shut_down(tmp_path: pathlib.Path) -> None:
    body = """
  (func (export "sleeper") (call $sleep (i64.const -1)))
  (func (export "_start")
    (drop (call $spawn (i64.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 7)
                       (i32.const 0) (i32.const 0) (i32.const 500)))
    (call $sleep (i64.const 10)))"""
    r = run(tmp_path, program(body, data_string(0, b"sleeper")))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "module '{path}' not found"),
        ('(module (import "env" "x" (func)))', "unknown import: `env::x` has not been defined"),
        ("garbage", "not a WebAssembly module"),
        ('(module (func (export "main")))', "has no `_start` export"),
        ("(module (func $x (i32.nonsense)))", "invalid WAT at line 1, column 19"),
        ("(module (func $x (i32.add)))", "type mismatch"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(
    tmp_path: pathlib.Path, content: str | None, message: str
) -> None:
    path = tmp_path / "bad.wat"
    if content is not None:
        path.write_text(content)
    r = lunatrio("run", str(path), timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1
    assert message.format(path=path) in r.stderr


def test_a_missing_dir_is_bad_input(tmp_path: pathlib.Path) -> None:
    r = run(tmp_path, program('(func (export "_start"))'), "--dir", "/nonexistent/dir", "x")
    assert r.returncode == 2
    assert "is not a directory" in r.stderr


def test_usage_errors_exit_2(tmp_path: pathlib.Path) -> None:
    r = lunatrio()
    assert r.returncode == 2
    assert "usage: lunatrio" in r.stderr
