"""lunatic::registry, timer, trap, version, wasi, distributed and metrics."""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing

import supervisor
from hostapi.distributed import NODE_EXTENSION_OID, TEST_ROOT_CERT, TEST_ROOT_KEY
from supervisor import Context, DataMessage, Exit, ExitReason

from .guests import ALLOC, data_string, forever, guest, reports, run_python, value_of

IMPORTS = """
  (import "lunatic::registry" "put" (func $reg_put (param i32 i32 i64 i64)))
  (import "lunatic::registry" "get" (func $reg_get (param i32 i32 i32 i32) (result i32)))
  (import "lunatic::registry" "remove" (func $reg_remove (param i32 i32)))
  (import "lunatic::timer" "send_after" (func $send_after (param i64 i64) (result i64)))
  (import "lunatic::timer" "cancel_timer" (func $cancel_timer (param i64) (result i32)))
  (import "lunatic::trap" "catch" (func $catch (param i32 i32) (result i32)))
  (import "lunatic::version" "major" (func $major (result i32)))
  (import "lunatic::version" "minor" (func $minor (result i32)))
  (import "lunatic::version" "patch" (func $patch (result i32)))
  (import "lunatic::wasi" "config_add_environment_variable"
    (func $add_env (param i64 i32 i32 i32 i32)))
  (import "lunatic::wasi" "config_add_command_line_argument" (func $add_arg (param i64 i32 i32)))
  (import "lunatic::wasi" "config_preopen_dir" (func $add_dir (param i64 i32 i32)))
  (import "lunatic::distributed" "nodes_count" (func $nodes_count (result i32)))
  (import "lunatic::distributed" "get_nodes" (func $get_nodes (param i32 i32) (result i32)))
  (import "lunatic::distributed" "node_id" (func $node_id (result i64)))
  (import "lunatic::distributed" "module_id" (func $module_id (result i64)))
  (import "lunatic::distributed" "spawn"
    (func $dspawn (param i64 i64 i64 i32 i32 i32 i32 i32) (result i32)))
  (import "lunatic::distributed" "send" (func $dsend (param i64 i64) (result i32)))
  (import "lunatic::distributed" "test_root_cert" (func $test_root_cert (param i32) (result i32)))
  (import "lunatic::distributed" "default_server_certificates"
    (func $server_certs (param i32 i32 i32 i32 i32) (result i32)))
  (import "lunatic::distributed" "sign_node"
    (func $sign_node (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "lunatic::metrics" "counter" (func $counter (param i32 i32 i64)))
  (import "lunatic::metrics" "increment_counter" (func $increment_counter (param i32 i32)))
  (import "lunatic::metrics" "gauge" (func $gauge (param i32 i32 f64)))
  (import "lunatic::metrics" "increment_gauge" (func $increment_gauge (param i32 i32 f64)))
  (import "lunatic::metrics" "decrement_gauge" (func $decrement_gauge (param i32 i32 f64)))
  (import "lunatic::metrics" "histogram" (func $histogram (param i32 i32 f64)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $env_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
"""


def g(body: str, data: str = "", memory: str = '(memory (export "memory") 2)') -> str:
    return guest(data + ALLOC + body, extra_imports=IMPORTS, memory=memory)


def send_bytes(ptr: int, length: int) -> str:
    """WAT: send ``length`` bytes at ``ptr`` to $to with tag 1."""
    return f"""
    (call $create_data (i64.const 1) (i64.const 0))
    (drop (call $write_data {ptr} {length}))
    (drop (call $send (local.get $to)))"""


# -- registry ----------------------------------------------------------------------


REGISTRY = g(
    """
  (func (export "main") (param $to i64)
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u
        (call $reg_get (i32.const 0) (i32.const 4) (i32.const 100) (i32.const 108))))
    (call $reg_put (i32.const 0) (i32.const 4) (i64.const 7) (i64.const 99))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u
        (call $reg_get (i32.const 0) (i32.const 4) (i32.const 100) (i32.const 108))))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 100)))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 108)))
    (call $reg_remove (i32.const 0) (i32.const 4))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u
        (call $reg_get (i32.const 0) (i32.const 4) (i32.const 100) (i32.const 108))))
    (call $reg_put (i32.const 10) (i32.const 2) (i64.const 0) (i64.const 1)))
""",
    data_string(0, b"name") + data_string(10, b"\xff\xfe"),
)


async def test_registry_put_get_remove(runtime: supervisor.Runtime) -> None:
    got, exit = await reports(runtime, REGISTRY, n=5)
    assert got == [1, 0, 7, 99, 1]
    # the last put used a name that is not UTF-8
    assert exit.reason is ExitReason.FAILURE
    assert "lunatic::registry::put" in exit.detail


async def test_registry_entries_of_a_dead_process_are_dropped(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    env = runtime.default_environment

    async def named(ctx: Context) -> None:
        await ctx.receive()

    a = await runtime.spawn_python(named)
    b = await runtime.spawn_python(named)
    env.registry_put("mine", 0, a.id)
    env.registry_put("moved", 0, a.id)
    env.registry_put("moved", 0, b.id)  # re-registered to b meanwhile
    env.registry_put("remote", 5, a.id)  # another node's process: not ours to drop
    runtime.send(a, b"bye")
    await a.wait()
    assert env.registry == {"moved": (0, b.id), "remote": (5, a.id)}


async def test_registry_calls_wait_while_get_or_spawn_holds_it(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    env = runtime.default_environment
    order: list[str] = []

    async def holder(ctx: Context) -> None:
        async with env.registry_lock:
            order.append("holding")
            await trio.sleep(1)
            env.registry_put("name", 0, 42)
            order.append("released")

    await runtime.spawn_python(holder)
    await trio.testing.wait_all_tasks_blocked()
    got, _ = await reports(
        runtime,
        g(
            """
  (func (export "main") (param $to i64)
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u
        (call $reg_get (i32.const 0) (i32.const 4) (i32.const 100) (i32.const 108))))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 108))))
""",
            data_string(0, b"name"),
        ),
        n=2,
    )
    assert order == ["holding", "released"]
    assert got == [0, 42]


# -- timers -------------------------------------------------------------------------


TIMERS = g(
    """
  ;; timer 0: 30 ms, tag 5; timer 1: 10 ms, tag 6, cancelled; timer 2: 20 ms, tag 7
  (func $timer (param $to i64) (param $tag i64) (param $ms i64) (result i64)
    (call $create_data (local.get $tag) (i64.const 0))
    (call $send_after (local.get $to) (local.get $ms)))
  (func (export "main") (param $to i64) (param $sink i64)
    (local $t0 i64) (local $t1 i64) (local $t2 i64)
    (local.set $t0 (call $timer (local.get $sink) (i64.const 5) (i64.const 30)))
    (local.set $t1 (call $timer (local.get $sink) (i64.const 6) (i64.const 10)))
    (local.set $t2 (call $timer (local.get $sink) (i64.const 7) (i64.const 20)))
    (call $report (local.get $to) (i64.const 1) (local.get $t2))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $cancel_timer (local.get $t1))))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $cancel_timer (local.get $t1))))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $cancel_timer (i64.const 77))))
    (call $sleep_ms (i64.const 25))
    ;; timer 2 has fired: it is gone from the table (lunatic would say 1)
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $cancel_timer (local.get $t2)))))
"""
)


async def test_send_after_delivers_in_deadline_order_and_cancel_stops_delivery(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(TIMERS)

    arrivals: list[tuple[int, float]] = []
    start = trio.current_time()

    async def sink(ctx: Context) -> None:
        while True:
            m = await ctx.receive()
            arrivals.append((m.tag, round((trio.current_time() - start) * 1000)))

    async def test(ctx: Context) -> list[int]:
        s = await ctx.spawn_python(sink)
        await ctx.spawn(module, "main", [ctx.id, s.id])
        got = [value_of(await ctx.receive(1)) for _ in range(5)]
        await trio.sleep(1)
        return got

    got = await run_python(runtime, test)
    assert got == [2, 1, 0, 0, 0]
    assert arrivals == [(7, 20), (5, 30)]
    assert runtime.timers.pending == 0


async def test_timers_outlive_their_creator_and_skip_dead_targets(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(
        g(
            """
  (func (export "main") (param $to i64) (param $gone i64)
    (call $create_data (i64.const 3) (i64.const 0))
    (drop (call $send_after (local.get $to) (i64.const 50)))
    (call $create_data (i64.const 4) (i64.const 0))
    (drop (call $send_after (local.get $gone) (i64.const 50))))
"""
        )
    )

    async def test(ctx: Context) -> float:
        victim = await ctx.spawn_python(forever)
        start = trio.current_time()
        creator = await ctx.spawn(module, "main", [ctx.id, victim.id])
        await creator.wait()  # the creator is gone before its timer fires
        victim.kill()
        m = await ctx.receive()
        assert m.tag == 3
        return trio.current_time() - start

    assert await run_python(runtime, test) == pytest.approx(0.05)
    await trio.sleep(1)
    assert runtime.timers.pending == 0
    assert runtime.timers.size == 0


async def test_cancelled_timers_leave_nothing_behind(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    target = await runtime.spawn_python(forever)
    timers = [
        runtime.timers.schedule(runtime._nursery, 3600, target._proc, DataMessage(1))  # type: ignore[arg-type]
        for _ in range(1000)
    ]
    assert runtime.timers.pending == 1000
    assert all(t.cancel() for t in timers)
    assert not timers[0].cancel()
    assert runtime.timers.pending == 0
    assert runtime.timers.size < 100  # compacted, not 1000 dead entries


async def test_send_after_without_a_message_traps(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(
        g('(func (export "main") (drop (call $send_after (i64.const 1) (i64.const 1))))')
    )
    exit = await (await runtime.spawn(module, "main")).wait()
    assert "lunatic::timer::send_after" in exit.detail


# -- catch --------------------------------------------------------------------------


CATCH = g(
    """
  (type $cb (func (param i32) (result i32)))
  (table 8 funcref)
  (elem (i32.const 0) $ok $bad $sleepy $nested $spin $oob $exit)
  (global $marker (mut i32) (i32.const 0))
  (func $ok (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (func $bad (param i32) (result i32) (global.set $marker (i32.const 99)) unreachable)
  (func $sleepy (param i32) (result i32)
    (call $sleep_ms (i64.const 5)) (i32.mul (local.get 0) (i32.const 3)))
  (func $nested (param i32) (result i32)
    (i32.add (call $catch (i32.const 1) (i32.const 0)) (i32.const 1000)))
  (func $spin (param i32) (result i32) (loop $l (br $l)) (i32.const 0))
  (func $oob (param i32) (result i32) (i32.load (i32.const -1)))
  (func $exit (param i32) (result i32) (call $proc_exit (local.get 0)) (i32.const 0))
  (func (export "_lunatic_catch_trap") (param $f i32) (param $p i32) (result i32)
    (call_indirect (type $cb) (local.get $p) (local.get $f)))
  (func $try (param $to i64) (param $f i32) (param $arg i32)
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_s (call $catch (local.get $f) (local.get $arg)))))
  (func (export "main") (param $to i64)
    (call $try (local.get $to) (i32.const 0) (i32.const 41))   ;; 42
    (call $try (local.get $to) (i32.const 1) (i32.const 0))    ;; 0: unreachable
    (call $try (local.get $to) (i32.const 2) (i32.const 7))    ;; 21: it slept inside
    (call $try (local.get $to) (i32.const 3) (i32.const 0))    ;; 1000: catch in catch
    (call $try (local.get $to) (i32.const 5) (i32.const 0))    ;; 0: out of bounds
    (call $try (local.get $to) (i32.const 9) (i32.const 0))    ;; 0: bad table index
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_s (global.get $marker))))
  (func (export "spin") (drop (call $catch (i32.const 4) (i32.const 0))))
  ;; tell $to, then spin inside catch
  (func (export "spinning") (param $to i64)
    (call $report (local.get $to) (i64.const 1) (i64.const 0))
    (drop (call $catch (i32.const 4) (i32.const 0))))
  (func (export "fuel") (param $to i64)
    (call $try (local.get $to) (i32.const 4) (i32.const 0)))
  (func (export "exit") (param $code i32) (drop (call $catch (i32.const 6) (local.get $code))))
""",
    memory='(memory (export "memory") 2)',
)
CATCH = CATCH.replace(
    "(module",
    '(module (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))',
    1,
)


async def test_catch_returns_the_result_or_0_after_any_trap(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    got, exit = await reports(runtime, CATCH, n=7)
    # the state the trapping closure left (the marker) survives
    assert got == [42, 0, 21, 1000, 0, 0, 99]
    assert exit.normal


async def test_catch_cannot_refill_fuel_the_process_has_used_up(
    runtime: supervisor.Runtime,
) -> None:
    # The budget belongs to the process: the closure burns it all, catch returns,
    # and the very next instruction of the caller runs out of fuel too.
    module = runtime.compile_module(CATCH)
    config = supervisor.ProcessConfig(max_fuel=20)
    exit = await (await runtime.spawn(module, "fuel", [0], config=config)).wait()
    assert exit.reason is ExitReason.FAILURE
    assert "all fuel consumed" in exit.detail


async def test_catch_never_swallows_a_kill(runtime: supervisor.Runtime) -> None:
    # real clock: the nested call spins in pure Wasm
    module = runtime.compile_module(CATCH)

    async def test(ctx: Context) -> Exit:
        h = await ctx.spawn(module, "spinning", [ctx.id])
        await ctx.receive(1)  # it is about to spin inside catch
        h.kill()
        return await h.wait()

    assert (await run_python(runtime, test)).reason is ExitReason.KILLED
    from hostapi import ffi

    assert ffi.live_pending() == 0


async def test_catch_never_swallows_a_link_death(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(CATCH)

    async def crasher(ctx: Context) -> None:
        await ctx.receive()  # the guest is about to spin inside catch
        raise RuntimeError("x")

    c = await runtime.spawn_python(crasher)
    h = await runtime.spawn(module, "spinning", [c.id])
    runtime.link(h, c)
    # the guest spins inside catch: only its fuel yields let the death in
    exit = await h.wait()
    assert exit.reason is ExitReason.FAILURE
    assert exit.detail.startswith("linked process")


@pytest.mark.parametrize("code", [0, 3])
async def test_proc_exit_inside_catch_ends_the_process(
    runtime: supervisor.Runtime, code: int
) -> None:
    module = runtime.compile_module(CATCH)
    exit = await (await runtime.spawn(module, "exit", [code])).wait()
    assert exit.status == code
    assert exit.reason is (ExitReason.NORMAL if code == 0 else ExitReason.FAILURE)


async def test_catch_without_the_export_traps(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(
        g('(func (export "main") (drop (call $catch (i32.const 0) (i32.const 0))))')
    )
    exit = await (await runtime.spawn(module, "main")).wait()
    assert "_lunatic_catch_trap" in exit.detail


# -- version, wasi, distributed, metrics --------------------------------------------


async def test_version_is_lunatic_0_13_2(runtime: supervisor.Runtime) -> None:
    body = """
  (func (export "main") (param $to i64)
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (call $major)))
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (call $minor)))
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (call $patch))))
"""
    got, _ = await reports(runtime, g(body), n=3)
    assert got == [0, 13, 2]


WASI = g(
    """
  ;; build a config with an argument, a variable and a preopen; spawn "child"
  ;; with it; the child sends its argv and environ blocks
  (func (export "main") (param $to i64)
    (local $c i64)
    (local.set $c (call $create_config))
    (call $config_set_can_spawn_processes (local.get $c) (i32.const 1))
    (call $add_arg (local.get $c) (i32.const 0) (i32.const 3))
    (call $add_env (local.get $c) (i32.const 10) (i32.const 3) (i32.const 20) (i32.const 5))
    (call $add_dir (local.get $c) (i32.const 30) (i32.const 1))
    (i64.store (i32.const 200) (local.get $to))
    (call $create_data (i64.const 0) (i64.const 0))
    (drop (call $write_data (i32.const 200) (i32.const 8)))
    (if (call $spawn (i64.const 1) (local.get $c) (i64.const -1) (i32.const 40) (i32.const 5)
                     (i32.const 0) (i32.const 0) (i32.const 300))
      (then unreachable))
    (drop (call $send (i64.load (i32.const 300)))))
  (func (export "child")
    (local $to i64)
    (drop (call $recv))
    (local.set $to (call $read_i64))
    (drop (call $args_sizes (i32.const 400) (i32.const 404)))
    (drop (call $args_get (i32.const 500) (i32.const 600)))
    (call $create_data (i64.const 1) (i64.const 0))
    (drop (call $write_data (i32.const 600) (i32.load (i32.const 404))))
    (drop (call $send (local.get $to)))
    (drop (call $env_sizes (i32.const 400) (i32.const 404)))
    (drop (call $env_get (i32.const 500) (i32.const 700)))
    (call $create_data (i64.const 1) (i64.const 0))
    (drop (call $write_data (i32.const 700) (i32.load (i32.const 404))))
    (drop (call $send (local.get $to)))
    ;; fd 3 is the preopened directory
    (call $create_data (i64.const 1) (i64.const 0))
    (i64.store (i32.const 800) (i64.extend_i32_u (call $prestat (i32.const 3) (i32.const 812))))
    (drop (call $write_data (i32.const 800) (i32.const 8)))
    (drop (call $send (local.get $to))))
""",
    data_string(0, b"one")
    + data_string(10, b"KEY")
    + data_string(20, b"value")
    + data_string(30, b".")
    + data_string(40, b"child"),
)


async def test_wasi_config_functions_build_the_childs_wasi_context(
    runtime: supervisor.Runtime,
) -> None:
    got, _ = await reports(runtime, WASI, n=3)
    assert got[0] == b"one\0"
    assert got[1] == b"KEY=value\0"
    assert got[2] == 0  # fd_prestat_get(3) succeeded: "." is preopened


async def test_wasi_functions_trap_on_unknown_configs_and_bad_utf8(
    runtime: supervisor.Runtime,
) -> None:
    for call, where in [
        (
            "(call $add_arg (i64.const 9) (i32.const 0) (i32.const 1))",
            "config_add_command_line_argument",
        ),
        ("(call $add_dir (i64.const 0) (i32.const 50) (i32.const 2))", "config_preopen_dir"),
    ]:
        module = runtime.compile_module(
            g(f'(func (export "main") {call})', data_string(0, b"x") + data_string(50, b"\xff\xfe"))
        )
        exit = await (await runtime.spawn(module, "main")).wait()
        assert f"lunatic::wasi::{where}" in exit.detail


async def test_distributed_is_a_single_node(runtime: supervisor.Runtime) -> None:
    body = """
  (func (export "main") (param $to i64)
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (call $nodes_count)))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $get_nodes (i32.const 0) (i32.const 4))))
    (call $report (local.get $to) (i64.const 1) (call $node_id))
    (call $report (local.get $to) (i64.const 1) (call $module_id))
    (drop (call $dspawn (i64.const 1) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 1)
                        (i32.const 0) (i32.const 0) (i32.const 100))))
"""
    got, exit = await reports(runtime, g(body), n=4)
    assert got == [0, 0, 0, 0]
    assert exit.detail == "Distributed is not initialized"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("(call $create_data (i64.const 0) (i64.const 0))", "Distributed is not initialized"),
        (
            "(call $die_when_link_dies (i32.const 0)) (call $link (i64.const 1) (i64.const 99))"
            "(drop (call $recv))",
            "Only Message::Data can be sent across nodes.",
        ),
    ],
)
async def test_distributed_send_takes_the_message_then_traps(
    runtime: supervisor.Runtime, setup: str, message: str
) -> None:
    module = runtime.compile_module(
        g(f'(func (export "main") {setup} (drop (call $dsend (i64.const 1) (i64.const 1))))')
    )
    exit = await (await runtime.spawn(module, "main")).wait()
    assert exit.detail == message


def _bincode_strings(data: bytes) -> list[str]:
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 8], "little")
        out.append(data[pos + 8 : pos + 8 + n].decode())
        pos += 8 + n
    return out


CERTS = g(
    """
  (func $give (param $to i64) (param $ptr i32)
    (call $create_data (i64.const 1) (i64.const 0))
    (drop (call $write_data (local.get $ptr) (i32.load (i32.const 8))))
    (drop (call $send (local.get $to))))
  ;; test_root_cert; then a server certificate and a node certificate signed by it
  (func (export "main") (param $to i64) (param $csr i32) (param $csr_len i32)
    (local $root i32) (local $cert_len i32) (local $key_ptr i32) (local $key_len i32)
    (i64.store (i32.const 8) (i64.const -1))  ;; the length slot: only 4 bytes get written
    (local.set $root (call $test_root_cert (i32.const 8)))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 8)))
    (call $give (local.get $to) (local.get $root))
    ;; the PEMs inside the bincode pair: u64 length, bytes, u64 length, bytes
    (local.set $cert_len (i32.load (local.get $root)))
    (local.set $key_ptr (i32.add (local.get $root) (i32.add (i32.const 16) (local.get $cert_len))))
    (local.set $key_len (i32.load (i32.sub (local.get $key_ptr) (i32.const 8))))
    (call $give (local.get $to)
      (call $server_certs (i32.add (local.get $root) (i32.const 8)) (local.get $cert_len)
                          (local.get $key_ptr) (local.get $key_len) (i32.const 8)))
    (call $give (local.get $to)
      (call $sign_node (i32.add (local.get $root) (i32.const 8)) (local.get $cert_len)
                       (local.get $key_ptr) (local.get $key_len)
                       (local.get $csr) (local.get $csr_len) (i32.const 8))))
"""
)


async def test_certificate_helpers_return_bincode_in_guest_allocated_memory(
    runtime: supervisor.Runtime,
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    node_key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node-1")]))
        .sign(node_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    wat = CERTS.replace("(module", "(module " + data_string(40000, csr), 1)
    got, exit = await reports(runtime, wat, 40000, len(csr), n=4)
    assert exit.normal, exit
    length, root, server, node = got
    assert length & 0xFFFF_FFFF_FFFF_FFFF == len(root) | (0xFFFF_FFFF << 32)  # 4 bytes written
    assert _bincode_strings(root) == [TEST_ROOT_CERT, TEST_ROOT_KEY]
    ca = x509.load_pem_x509_certificate(TEST_ROOT_CERT.encode())
    server_cert, server_key = _bincode_strings(server)
    cert = x509.load_pem_x509_certificate(server_cert.encode())
    assert cert.issuer == ca.subject
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Control CA"
    assert "ctrl.lunatic.cloud" in cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)
    assert server_key.startswith("-----BEGIN PRIVATE KEY-----")
    (node_cert_pem,) = _bincode_strings(node)
    node_cert = x509.load_pem_x509_certificate(node_cert_pem.encode())
    assert node_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "node-1"
    ext = node_cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(NODE_EXTENSION_OID))
    body = b'{"allowed_envs":[],"is_privileged":true}'
    # DER UTF8String: tag 0x0c, short length, the JSON
    assert ext.value.value == bytes([0x0C, len(body)]) + body  # type: ignore[attr-defined]


async def test_certificate_helpers_trap_on_bad_pems(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(
        g(
            '(func (export "main") (drop (call $server_certs (i32.const 0) (i32.const 3)'
            " (i32.const 0) (i32.const 3) (i32.const 8))))",
            data_string(0, b"bad"),
        )
    )
    exit = await (await runtime.spawn(module, "main")).wait()
    assert "lunatic::distributed::default_server_certificates" in exit.detail


METRICS = g(
    """
  (func (export "main")
    (call $counter (i32.const 0) (i32.const 4) (i64.const 5))
    (call $increment_counter (i32.const 0) (i32.const 4))
    (call $gauge (i32.const 10) (i32.const 9) (f64.const 2.5))
    (call $increment_gauge (i32.const 10) (i32.const 9) (f64.const 1))
    (call $decrement_gauge (i32.const 10) (i32.const 9) (f64.const 0.25))
    (call $histogram (i32.const 20) (i32.const 7) (f64.const 0.02))
    (call $histogram (i32.const 20) (i32.const 7) (f64.const 3))
    (call $increment_counter (i32.const 30) (i32.const 2)))
""",
    data_string(0, b"reqs")
    + data_string(10, b"app.depth")
    + data_string(20, b"latency")
    + data_string(30, b"\xff\xfe"),
)


async def test_metrics_are_recorded_and_readable_from_python(runtime: supervisor.Runtime) -> None:
    exit = await (await runtime.spawn(runtime.compile_module(METRICS), "main")).wait()
    assert "lunatic::metrics::increment_counter" in exit.detail  # the bad name at the end
    snap = runtime.metrics.snapshot()
    assert snap["counters"] == {"reqs": 6}
    assert snap["gauges"] == {"app.depth": 3.25}
    assert snap["histograms"] == {"latency": {"count": 2, "sum": 3.02, "min": 0.02, "max": 3.0}}


async def test_metrics_can_be_exposed_through_prometheus_client(
    runtime: supervisor.Runtime,
) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    await (await runtime.spawn(runtime.compile_module(METRICS), "main")).wait()
    registry = CollectorRegistry()
    registry.register(runtime.metrics.prometheus_collector())
    text = generate_latest(registry).decode()
    assert "reqs_total 6.0" in text
    assert "app_depth 3.25" in text
    assert 'latency_bucket{le="0.025"} 1.0' in text
    assert "latency_count 2.0" in text


def test_prometheus_names_are_sanitized() -> None:
    from supervisor._metrics import _prom

    assert _prom("lunatic.process.count") == "lunatic_process_count"
    assert _prom("9lives") == "_9lives"
    assert os.sep not in _prom("a/b")
