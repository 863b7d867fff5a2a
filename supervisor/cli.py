"""The ``lunatrio`` command.

``lunatrio supervise TREE.toml [--events FILE.jsonl]`` runs a supervision tree
of Wasm workers declared in TOML (see :mod:`supervisor._tree_file`).

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
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

import trio

from hostapi.data import ProcessConfig

from ._engine import CompileError
from ._events import SupervisorEvent
from ._exit import Exit, ExitReason
from ._runtime import Runtime, open_runtime
from ._supervisor import StartFailed, run_supervisor
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
    run.add_argument("file", metavar="FILE", help="a .wasm binary or .wat text module")
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="guest arguments")
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


def _setup_logging() -> None:
    level_name = os.environ.get("LUNATRIO_LOG", "warning").upper()
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
        try:
            module = rt.load_module(file)
        except FileNotFoundError:
            raise _UsageError(f"module {file!r} not found") from None
        except (CompileError, OSError) as e:
            raise _UsageError(f"cannot load {file}: {e}") from None
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lunatrio`` console script."""
    ns = _parser().parse_args(argv)
    _setup_logging()
    try:
        if ns.command == "run":
            _check_dirs(ns.dir)
            exit = trio.run(_run, ns.file, ns.args, ns.dir)
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
