"""A misbehaving guest ends only its own process, with a clear reason, and its
links and monitors are told; the host carries on."""

from __future__ import annotations

import pytest
import trio

import supervisor
from supervisor import Context, ExitReason, ProcessConfig, ProcessDied

from .guests import guest, run_python

FAULTS = {
    "bad pointer": (
        "(call $create_data (i64.const 0) (i64.const 0))"
        "(drop (call $write_data (i32.const 65530) (i32.const 100)))",
        "out of bounds memory access: [65530, 65630) of 65536 bytes (lunatic::message::write_data)",
    ),
    "wrapping pointer": (
        "(call $create_data (i64.const 0) (i64.const 0))"
        "(drop (call $write_data (i32.const -1) (i32.const 2)))",
        "out of bounds memory access",
    ),
    "unknown resource id": (
        "(call $error_drop (i64.const 42))",
        "Expected Some(..) got None (lunatic::error::drop)",
    ),
    "unknown module id": (
        "(call $drop_module (i64.const 7))",
        "lunatic::process::drop_module: Module ID doesn't exist",
    ),
    "unreachable": ("unreachable", "wasm trap: wasm `unreachable` instruction executed"),
    "division by zero": (
        "(drop (i32.div_s (i32.const 1) (i32.sub (i32.const 1) (i32.const 1))))",
        "integer divide by zero",
    ),
    "guest store out of bounds": (
        "(i32.store (i32.const 65534) (i32.const 1))",
        "out of bounds memory access",
    ),
    "stack overflow": ("(drop (call $recurse (i32.const 0)))", "call stack exhausted"),
    "bad tags pointer": (
        "(drop (call $receive (i32.const 65535) (i32.const 2) (i64.const 0)))",
        "lunatic::message::receive",
    ),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_faulting_guest_ends_only_itself_and_its_monitors_are_told(
    runtime: supervisor.Runtime, fault: str
) -> None:
    body, detail = FAULTS[fault]
    module = runtime.compile_module(
        guest(
            f"""
  (func $recurse (param i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "main") {body})
"""
        )
    )

    async def watcher(ctx: Context) -> ProcessDied:
        h = await ctx.spawn(module, "main")
        ctx.monitor(h.id)
        m = await ctx.receive()
        assert isinstance(m, ProcessDied)
        return m

    died = await run_python(runtime, watcher)
    assert isinstance(died, ProcessDied) and isinstance(died.exit, supervisor.Exit)
    assert died.exit.reason is ExitReason.FAILURE
    assert detail in died.exit.detail
    # the host and the runtime carry on
    ok = await runtime.spawn(runtime.compile_module(guest('(func (export "main"))')), "main")
    assert (await ok.wait()).normal


MEMORY_SHAPES = [
    "(memory 0)",
    "(memory 0 1)",
    "(memory 1)",
    "(memory 1 1)",
    "(memory 2)",
    "(memory 2 4)",
]


@pytest.mark.parametrize("shape", MEMORY_SHAPES)
async def test_stores_past_the_end_of_memory_trap_for_every_memory_shape(
    runtime: supervisor.Runtime, shape: str
) -> None:
    # DESIGN.md: small reservations once let stores past the end go through.
    pages = int(shape.split()[1].rstrip(")"))
    memory = shape.replace("(memory", '(memory (export "memory")')
    module = runtime.compile_module(
        f"""(module {memory}
  (func (export "at") (param $addr i32) (i32.store8 (local.get $addr) (i32.const 7)))
  (func (export "grown") (param $addr i32)
    (drop (memory.grow (i32.const 1)))
    (i32.store8 (local.get $addr) (i32.const 7))))"""
    )
    size = pages * 65536
    if size:
        assert (await (await runtime.spawn(module, "at", [size - 1])).wait()).normal
    for addr in (size, size + 4096, 1 << 20, 0x7FFF_FFFF):
        exit = await (await runtime.spawn(module, "at", [addr])).wait()
        assert exit.reason is ExitReason.FAILURE, (shape, addr)
        assert "out of bounds" in exit.detail
    if shape != "(memory 0 1)" and shape != "(memory 1 1)":
        assert (await (await runtime.spawn(module, "grown", [size + 100])).wait()).normal
        exit = await (await runtime.spawn(module, "grown", [size + 65536])).wait()
        assert exit.reason is ExitReason.FAILURE


async def test_an_endless_loop_with_a_fuel_limit_runs_out_of_fuel(
    runtime: supervisor.Runtime,
) -> None:
    module = runtime.compile_module(guest('(func (export "main") (loop $l (br $l)))'))
    h = await runtime.spawn(module, "main", config=ProcessConfig(max_fuel=50))
    exit = await h.wait()
    assert exit.reason is ExitReason.FAILURE
    assert "all fuel consumed" in exit.detail


async def test_a_module_without_memory_traps_on_memory_host_calls(
    runtime: supervisor.Runtime,
) -> None:
    module = runtime.compile_module(
        """(module
  (import "lunatic::message" "create_data" (func $create_data (param i64 i64)))
  (import "lunatic::message" "write_data" (func $write_data (param i32 i32) (result i32)))
  (func (export "main")
    (call $create_data (i64.const 0) (i64.const 0))
    (drop (call $write_data (i32.const 0) (i32.const 0)))))"""
    )
    exit = await (await runtime.spawn(module, "main")).wait()
    assert exit.detail == (
        "Trap raised during host call: Expected Some(..) got None (No export memory found)."
    )


async def test_a_trap_in_a_host_call_made_after_a_wait_is_reported(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    # the trap happens when the suspended call resumes (in its continuation)
    module = runtime.compile_module(
        guest(
            """
  (func (export "main")
    (drop (call $spawn (i64.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 4)
                       (i32.const 0) (i32.const 0) (i32.const 65535))))
  (func (export "\\00\\00\\00\\00"))
"""
        )
    )
    exit = await (await runtime.spawn(module, "main")).wait()
    assert exit.reason is ExitReason.FAILURE
    assert "out of bounds" in exit.detail and "lunatic::process::spawn" in exit.detail


async def test_huge_memory_requests_fail_only_that_process(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(
        guest(
            """
  (func (export "main") (param $to i64)
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_s (memory.grow (i32.const 70000)))))
"""
        )
    )

    async def test(ctx: Context) -> int:
        await ctx.spawn(module, "main", [ctx.id], config=ProcessConfig(max_memory=1 << 20))
        m = await ctx.receive(1)
        return int.from_bytes(m.buffer, "little", signed=True)  # type: ignore[union-attr]

    assert await run_python(runtime, test) == -1
