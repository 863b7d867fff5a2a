"""A supervision tree of Wasm and Python workers, driven from Python.

Run it with ``python examples/supervise.py``: for two seconds it prints every
event of the tree (the flaky worker crashes every 300 ms and is restarted),
then lists the children and stops the tree in order.
"""

from __future__ import annotations

import pathlib

import trio
import trio_util

import supervisor
from supervisor import ChildSpec, PythonChild, SupervisorChild, SupervisorFlags, WasmChild

HERE = pathlib.Path(__file__).resolve().parent


async def heartbeat(ctx: supervisor.Context, period: float) -> None:
    """A Python worker: wakes every ``period`` seconds until it is stopped."""
    async for _ in trio_util.periodic(period):
        pass


async def main(seconds: float = 2.0) -> None:
    async with supervisor.open_runtime() as rt:
        workers = rt.load_module(HERE / "tree" / "workers.wat")
        children = [
            ChildSpec("api", WasmChild(workers, "server")),
            ChildSpec("flaky", WasmChild(workers, "flaky", [300]), shutdown=1),
            ChildSpec(
                "cache",
                SupervisorChild(
                    SupervisorFlags("one_for_all", intensity=2, period=5),
                    [
                        ChildSpec("primary", WasmChild(workers, "server")),
                        ChildSpec("replica", WasmChild(workers, "server"), shutdown="brutal_kill"),
                    ],
                ),
            ),
            ChildSpec("heartbeat", PythonChild(heartbeat, (0.5,))),
        ]
        async with trio.open_nursery() as nursery:
            sup = await nursery.start(
                supervisor.run_supervisor, rt, SupervisorFlags("one_for_one", 5, 1), children
            )

            async def show_events() -> None:
                async with sup.events() as events:
                    async for e in events:
                        reason = f" ({e.reason})" if e.reason else ""
                        print(
                            f"{e.t:6.3f}  {e.supervisor:10} {e.event:18} {e.child or '-'}{reason}"
                        )

            nursery.start_soon(show_events)
            await trio.sleep(seconds)
            for child in await sup.which_children():
                pid = child.process.id if child.process else None
                print(f"child {child.id}: {child.type}, process {pid}")
            await sup.stop()
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
