"""The ``lunatrio`` command.

``lunatrio supervise TREE.toml [--events FILE.jsonl]`` runs a supervision tree
of Wasm workers declared in TOML (see :mod:`supervisor._tree_file`).

``lunatrio test FILE.wasm [FILTER] [options] [ARGS...]`` runs the
``#[lunatic::test]`` tests of a test build and reports as libtest does (see
:mod:`supervisor._test_runner`). ``lunatrio run`` switches to it by itself
when cargo runs a test build (``CARGO_MANIFEST_DIR`` is set and the file is
under ``target/wasm32-wasi/*/deps/``), and ``lunatrio FILE.wasm ...`` means
``lunatrio run FILE.wasm ...``, so ``runner = "lunatrio"`` in
``.cargo/config.toml`` makes ``cargo run`` and ``cargo test`` use lunatrio.

``lunatrio run [--dir HOST[:GUEST]]... FILE.wasm|FILE.wat [ARGS...]`` runs a
lunatic program as ``lunatic run`` does (HOSTAPI.md section 1.13): the root
process, id 1 in environment 1, calls ``_start`` with every permission, the
WASI arguments ``[file name, ARGS...]``, the host's environment variables,
``.`` and each ``--dir`` preopened, and inherited stdio. When the root process
ends, every other process is shut down.

Exit status: 0 when the root process returns, ``n`` when it calls
``proc_exit(n)``, 1 (with the reason on stderr) when it traps or is killed,
and 2 when the program cannot be loaded. This differs from lunatic, which
exits 0 whatever the root process did (its section 6.12).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

import trio

from hostapi import ffi
from hostapi.data import ProcessConfig

from ._engine import CompileError
from ._events import SupervisorEvent
from ._exit import Exit, ExitReason
from ._runtime import Runtime, open_runtime
from ._supervisor import StartFailed, run_supervisor
from ._test_cases import parse_test_export, select
from ._test_runner import DEFAULT_TIMEOUT, LibtestReport, TestOptions, run_tests, stdout_echo
from ._tree_file import Tree, TreeError, load_tree

__all__ = ["main"]

PROG = "lunatrio"


class _UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run lunatic WebAssembly programs as Erlang-style processes on Trio.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run a program's _start as the root process",
        description="Run FILE's _start export as process 1, as `lunatic run` does.",
    )
    run.add_argument(
        "--dir",
        action="append",
        default=[],
        metavar="HOST[:GUEST]",
        help="preopen a host directory (under the name GUEST; default: the host path)",
    )
    run.add_argument(
        "--bench", action="store_true", help="pass --bench to the guest (and never test)"
    )
    run.add_argument("file", metavar="FILE", help="a .wasm binary or .wat text module")
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="guest arguments")
    _add_test_arguments(
        sub.add_parser(
            "test",
            help="run the #[lunatic::test] tests of a test build, as cargo test does",
            description="Run the tests of FILE (its `#lunatic_test_` exports), each as the "
            "root process of its own environment, concurrently, and report as libtest does. "
            "Exit status: 0 when every test passed, 1 when one failed, 2 for bad input.",
        )
    )
    sup = sub.add_parser(
        "supervise",
        help="run a supervision tree of Wasm workers declared in a TOML file",
        description="Run the supervision tree declared in TREE.toml until it stops or is "
        "interrupted (Ctrl-C stops it in order). Exit status: 0 when stopped by Ctrl-C or "
        "auto_shutdown, 1 when the root supervisor's restart intensity was exceeded or a "
        "child failed to start, 2 for bad input.",
    )
    sup.add_argument("tree", metavar="TREE.toml", help="the tree (see the README for the format)")
    sup.add_argument(
        "--events", metavar="FILE.jsonl", help="write every event as one JSON object per line"
    )
    return parser


def _add_test_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a test build (.wasm) or a .wat module")
    p.add_argument(
        "filter",
        nargs="?",
        default=None,
        metavar="FILTER",
        help="run only the tests whose name contains FILTER",
    )
    p.add_argument("args", nargs="*", metavar="ARGS", help="WASI arguments of every test")
    p.add_argument(
        "--dir",
        action="append",
        default=[],
        metavar="HOST[:GUEST]",
        help="preopen a host directory (under the name GUEST; default: the host path)",
    )
    p.add_argument("--exact", action="store_true", help="FILTER must match a name exactly")
    p.add_argument("--ignored", action="store_true", help="run only the ignored tests")
    p.add_argument("--include-ignored", action="store_true", help="run the ignored tests as well")
    p.add_argument(
        "--nocapture", action="store_true", help="show the tests' output as it is written"
    )
    p.add_argument(
        "--show-output", action="store_true", help="show the output of passing tests too"
    )
    p.add_argument("--list", action="store_true", help="list the tests instead of running them")
    p.add_argument(
        "--format",
        choices=["pretty", "terse"],
        default="pretty",
        help="with --list: terse prints only `NAME: test` lines",
    )
    p.add_argument(
        "--test-threads",
        type=int,
        default=0,
        metavar="N",
        help="run at most N tests at once (default: all at once, as lunatic does)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"fail a test that runs longer (default {DEFAULT_TIMEOUT:g}; 0: no limit)",
    )
    p.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="color the results (default: when writing to a terminal)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help=argparse.SUPPRESS)


def _test_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{PROG} test", description="Run the tests of a lunatic test build."
    )
    _add_test_arguments(p)
    return p


# lunatic's test-mode detection (HOSTAPI.md section 1.13): cargo runs a test build.
_TEST_BUILD = re.compile(
    r"/target/wasm32-(wasi|wasip1|unknown-unknown)/(debug|release)/deps/[^/]*\.wasm$"
)


def is_test_build(path: str) -> bool:
    """Whether ``lunatrio run PATH`` is cargo running a test build."""
    return "CARGO_MANIFEST_DIR" in os.environ and bool(
        _TEST_BUILD.search(os.path.abspath(path).replace(os.sep, "/"))
    )


def _setup_logging(default: str = "warning") -> None:
    level_name = os.environ.get("LUNATRIO_LOG", default).upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    root = logging.getLogger("supervisor")
    root.addHandler(handler)
    root.setLevel(getattr(logging, level_name, logging.WARNING))
    root.propagate = False


def _check_dirs(dirs: Sequence[str]) -> None:
    for d in dirs:
        host = d.partition(":")[0]
        if not os.path.isdir(host):
            raise _UsageError(f"--dir {d}: {host!r} is not a directory")


async def _run(file: str, args: Sequence[str], dirs: Sequence[str]) -> Exit:
    async with open_runtime() as rt:
        module = _load(rt, file)
        if module.functions.get("_start", ...) is ...:
            raise _UsageError(f"{file} has no `_start` export to run")
        config = ProcessConfig.for_run(file, args, dirs)
        try:
            root = await rt.spawn(module, "_start", config=config)
        except ValueError as e:
            raise _UsageError(str(e)) from None
        except Exception as e:  # instantiation failed: the root process never ran
            return Exit(ExitReason.FAILURE, str(e))
        return await root.wait()


def _load(rt: Runtime, file: str) -> ffi.Module:
    try:
        return rt.load_module(file)
    except FileNotFoundError:
        raise _UsageError(f"module {file!r} not found") from None
    except (CompileError, OSError) as e:
        raise _UsageError(f"cannot load {file}: {e}") from None


async def _test(ns: argparse.Namespace) -> int:
    async with open_runtime() as rt:
        module = _load(rt, ns.file)
        cases = [c for name in module.functions if (c := parse_test_export(name)) is not None]
        if not cases and not ns.list:
            print(f"{PROG}: {ns.file} has no tests (no `#lunatic_test_` exports)", file=sys.stderr)
        selected, filtered_out = select(
            cases,
            [ns.filter] if ns.filter is not None else [],
            exact=ns.exact,
            ignored_only=ns.ignored,
            include_ignored=ns.include_ignored,
        )
        if ns.list:
            for c in selected:
                print(f"{c.name}: test")
            if ns.format != "terse":
                print(f"\n{len(selected)} test{'' if len(selected) == 1 else 's'}, 0 benchmarks")
            return 0
        options = TestOptions(
            args=ns.args,
            dirs=ns.dir,
            nocapture=ns.nocapture,
            show_output=ns.show_output,
            threads=ns.test_threads,
            timeout=ns.timeout,
            echo=stdout_echo(),
        )
        color = {"auto": None, "always": True, "never": False}[ns.color]
        report = LibtestReport(sys.stdout, color=color, show_output=ns.show_output)
        summary = await run_tests(rt, module, selected, options, report, filtered_out=filtered_out)
        return 0 if summary.ok else 1


def _check_test_args(ns: argparse.Namespace) -> None:
    _check_dirs(ns.dir)
    if ns.test_threads < 0:
        raise _UsageError(f"--test-threads must be at least 1, got {ns.test_threads}")
    if not ns.timeout >= 0:
        raise _UsageError(f"--timeout must not be negative, got {ns.timeout}")


async def _supervise(tree_path: str, out: TextIO | None) -> int:
    async with open_runtime() as rt:
        try:
            tree = load_tree(tree_path, rt.load_module)
        except TreeError as e:
            raise _UsageError(str(e)) from None
        return await _run_tree(rt, tree, out)


async def _run_tree(rt: Runtime, tree: Tree, out: TextIO | None) -> int:
    def record(event: SupervisorEvent) -> None:
        if out is not None:
            out.write(json.dumps(event.to_json()) + "\n")

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            try:
                sup = await nursery.start(
                    run_supervisor, rt, tree.flags, tree.children, tree.name, record
                )
            except StartFailed as e:
                print(f"{PROG}: {e}", file=sys.stderr)
                return 1
            for _ in range(tree.instances):
                try:
                    await sup.start_child([])
                except StartFailed as e:
                    print(f"{PROG}: {e}", file=sys.stderr)
                    await sup.stop()
                    return 1

            async def stop_on_signal() -> None:
                async for _ in signals:
                    await sup.stop("interrupted")
                    return

            nursery.start_soon(stop_on_signal)
            exit = await sup.wait()
            nursery.cancel_scope.cancel()
    if exit.detail == "reached_max_restart_intensity":
        print(
            f"{PROG}: supervisor {tree.name} stopped: restart intensity exceeded", file=sys.stderr
        )
        return 1
    return 0


def _status(exit: Exit) -> int:
    if exit.status is not None and exit.reason in (ExitReason.NORMAL, ExitReason.FAILURE):
        return exit.status
    if exit.reason is ExitReason.NORMAL:
        return 0
    print(f"{PROG}: process 1 {exit.reason}: {exit.detail}", file=sys.stderr)
    return 1


def _dirs(dirs: Sequence[str]) -> list[str]:
    return [arg for d in dirs for arg in ("--dir", d)]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lunatrio`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and (argv[0].endswith((".wasm", ".wat")) or argv[0] in ("--dir", "--bench")):
        argv.insert(0, "run")  # `lunatrio FILE.wasm ...`, as `lunatic FILE.wasm ...`
    test = None
    if argv and argv[0] == "test":
        test = _test_parser().parse_intermixed_args(argv[1:])
    else:
        ns = _parser().parse_args(argv)
        if ns.command == "run" and not ns.bench and is_test_build(ns.file):
            test = _test_parser().parse_intermixed_args([ns.file, *ns.args, *_dirs(ns.dir)])
    try:
        if test is not None:
            # lunatic's test mode logs errors only: failing tests are reported anyway
            _setup_logging("error")
            _check_test_args(test)
            return trio.run(_test, test)
        _setup_logging()
        if ns.command == "run":
            _check_dirs(ns.dir)
            args = [*ns.args, "--bench"] if ns.bench else ns.args
            exit = trio.run(_run, ns.file, args, ns.dir)
            return _status(exit)
        if ns.command == "supervise":
            logging.getLogger("supervisor.events").setLevel(logging.INFO)
            try:
                out = open(ns.events, "w", buffering=1) if ns.events else None  # noqa: SIM115
            except OSError as e:
                raise _UsageError(f"--events {ns.events}: {e.strerror or e}") from None
            try:
                return trio.run(_supervise, ns.tree, out)
            finally:
                if out is not None:
                    out.close()
    except _UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
