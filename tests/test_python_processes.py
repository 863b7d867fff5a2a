"""Python-native processes obey the same signals as Wasm processes."""

from __future__ import annotations

import pytest
import trio

import supervisor
from supervisor import Context, DataMessage, ExitReason, LinkDied, ProcessDied

from .guests import run_python


async def test_return_is_a_normal_exit_with_the_value_as_result(
    runtime: supervisor.Runtime,
) -> None:
    async def fn(ctx: Context, x: int) -> int:
        return x * 2

    h = await runtime.spawn_python(fn, 21)
    assert (await h.wait()).normal
    assert h.result is not None and h.result.unwrap() == 42
    assert h.kind == "python"


async def test_an_exception_is_a_failure_with_its_text(runtime: supervisor.Runtime) -> None:
    async def fn(ctx: Context) -> None:
        raise ValueError("bad input")

    h = await runtime.spawn_python(fn)
    exit = await h.wait()
    assert exit.reason is ExitReason.FAILURE
    assert exit.detail == "ValueError: bad input"
    assert h.result is not None
    with pytest.raises(ValueError, match="bad input"):
        h.result.unwrap()


async def test_kill_cancels_the_function(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    cleaned = []

    async def fn(ctx: Context) -> None:
        try:
            await trio.sleep_forever()
        finally:
            cleaned.append(ctx.id)

    h = await runtime.spawn_python(fn)
    await trio.sleep(1)
    h.kill()
    exit = await h.wait()
    assert exit.reason is ExitReason.KILLED
    assert cleaned == [h.id]
    assert h.result is None


async def test_receive_filters_by_tag_and_times_out(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    async def fn(ctx: Context) -> list[object]:
        ctx.send(ctx.id, b"a", tag=1)
        ctx.send(ctx.id, b"b", tag=2)
        ctx.send(ctx.id, b"c")
        got: list[object] = []
        m = await ctx.receive(2)
        got.append(m.data)  # type: ignore[union-attr]
        m = await ctx.receive()
        got.append(m.data)  # type: ignore[union-attr]
        with pytest.raises(trio.TooSlowError):
            await ctx.receive(7, timeout=3)
        got.append(trio.current_time())
        return got

    got = await run_python(runtime, fn)
    assert got[:2] == [b"b", b"a"]
    assert got[2] == pytest.approx(3.0)


async def test_link_deaths_can_be_caught_as_messages(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    async def crasher(ctx: Context) -> None:
        await trio.sleep(1)
        raise RuntimeError("x")

    async def fn(ctx: Context) -> LinkDied:
        ctx.die_when_link_dies(False)
        await ctx.spawn_python(crasher, link=5)
        m = await ctx.receive()
        assert isinstance(m, LinkDied)
        return m

    m = await run_python(runtime, fn)
    assert isinstance(m, LinkDied) and m.tag == 5 and m.pid == 2


async def test_monitors_and_exists(runtime: supervisor.Runtime) -> None:
    async def quick(ctx: Context) -> None:
        return None

    async def fn(ctx: Context) -> tuple[bool, ProcessDied]:
        child = await ctx.spawn_python(quick)
        alive = ctx.exists(child.id)
        ctx.monitor(child.id)
        m = await ctx.receive()
        assert isinstance(m, ProcessDied)
        return alive, m

    alive, m = await run_python(runtime, fn)
    assert alive
    assert m.pid == 2 and m.exit == supervisor.Exit(ExitReason.NORMAL)


async def test_python_processes_message_wasm_processes(runtime: supervisor.Runtime) -> None:
    from .guests import guest

    echo = runtime.compile_module(
        guest(
            """
  (func (export "main")
    (local $to i64)
    (drop (call $recv))
    (local.set $to (call $read_i64))
    (call $seek_data (i64.const 0))
    (drop (call $send (local.get $to))))
"""
        )
    )

    async def fn(ctx: Context) -> DataMessage:
        w = await ctx.spawn(echo, "main")
        ctx.send(w.id, ctx.id.to_bytes(8, "little") + b"!", tag=3)
        m = await ctx.receive(3)
        assert isinstance(m, DataMessage)
        return m

    m = await run_python(runtime, fn)
    assert isinstance(m, DataMessage) and m.data.endswith(b"!")


async def test_runtime_send_and_process_lookup(runtime: supervisor.Runtime) -> None:
    async def fn(ctx: Context) -> bytes:
        m = await ctx.receive()
        return m.data  # type: ignore[union-attr]

    h = await runtime.spawn_python(fn)
    assert runtime.process(h.id) == h
    assert runtime.send(h.id, b"hello")
    assert not runtime.send(999, b"x")
    await h.wait()
    assert h.result is not None and h.result.unwrap() == b"hello"
    assert runtime.process(h.id) is None


async def test_spawn_errors_are_clear(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module('(module (func (export "f") (param i32)))')
    with pytest.raises(ValueError, match="has no exported function 'g'"):
        await runtime.spawn(module, "g")
    with pytest.raises(ValueError, match=r"has type \(i32\)"):
        await runtime.spawn(module, "f", [1, 2])
    with pytest.raises(TypeError, match="expected a module"):
        await runtime.spawn("f.wasm", "f")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="async function"):
        await runtime.spawn_python(42)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        runtime.load_module("/nonexistent/x.wasm")
    with pytest.raises(supervisor.CompileError, match="not a WebAssembly module"):
        runtime.compile_module(b"junk")


async def test_exceptions_from_the_runtime_block_are_not_wrapped() -> None:
    with pytest.raises(KeyError):
        async with supervisor.open_runtime():
            raise KeyError("mine")
