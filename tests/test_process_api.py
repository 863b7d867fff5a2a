"""lunatic::process: modules, configs, permissions and process control (2.3)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

import supervisor
from supervisor import Context, ExitReason, ProcessConfig

from .guests import data_string, guest, run_python, value_of


async def _run_main(
    runtime: supervisor.Runtime, body: str, config: ProcessConfig | None = None, *, data: str = ""
) -> tuple[list[Any], supervisor.Exit]:
    """Run a guest's ``main(to)``; collect what it reports with tag 1: integers
    (8-byte messages) or bytes."""
    module = runtime.compile_module(guest(data + body))

    async def test(ctx: Context) -> tuple[list[Any], supervisor.Exit]:
        h = await ctx.spawn(module, "main", [ctx.id], config=config)
        exit = await h.wait()
        values: list[Any] = []
        while ctx.pending():
            m = await ctx.receive(1)
            assert isinstance(m, supervisor.DataMessage)
            values.append(value_of(m) if len(m.buffer) == 8 else m.data)
        return values, exit

    result = await run_python(runtime, test)
    assert isinstance(result, tuple)
    return result


async def test_process_id_and_environment_id(runtime: supervisor.Runtime) -> None:
    values, exit = await _run_main(
        runtime,
        """
  (func (export "main") (param $to i64)
    (call $report (local.get $to) (i64.const 1) (call $process_id))
    (call $report (local.get $to) (i64.const 1) (call $environment_id)))
""",
    )
    assert exit.normal
    assert values == [2, 1]


async def test_process_ids_start_at_1_per_environment(runtime: supervisor.Runtime) -> None:
    async def noop(ctx: Context) -> int:
        return ctx.id

    env = runtime.new_environment(7)
    a = await runtime.spawn_python(noop, environment=env)
    b = await runtime.spawn_python(noop, environment=env)
    c = await runtime.spawn_python(noop)
    assert (a.id, b.id, c.id) == (1, 2, 1)
    assert a.environment_id == 7


async def test_exists_is_1_for_live_processes_only(runtime: supervisor.Runtime) -> None:
    values, _ = await _run_main(
        runtime,
        """
  (func (export "main") (param $to i64)
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (call $exists (local.get $to))))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $exists (call $process_id))))
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (call $exists (i64.const 99))))
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (call $exists (i64.const -1)))))
""",
    )
    assert values == [1, 1, 0, 0]


async def test_sleep_ms_suspends_for_virtual_time(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(
        guest('(func (export "main") (call $sleep_ms (i64.const 1500)))')
    )
    start = trio.current_time()
    await (await runtime.spawn(module, "main")).wait()
    assert trio.current_time() - start == pytest.approx(1.5)


CONFIG_BODY = """
  (func (export "main") (param $to i64)
    (local $c i64)
    (local.set $c (call $create_config))
    (call $report (local.get $to) (i64.const 1) (local.get $c))
    (call $report (local.get $to) (i64.const 1) (call $config_get_max_memory (local.get $c)))
    (call $report (local.get $to) (i64.const 1) (call $config_get_max_fuel (local.get $c)))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $config_can_compile_modules (local.get $c))))
    (call $config_set_max_memory (local.get $c) (i64.const 131072))
    (call $config_set_max_fuel (local.get $c) (i64.const 7))
    (call $config_set_can_compile_modules (local.get $c) (i32.const 5))
    (call $config_set_can_create_configs (local.get $c) (i32.const 1))
    (call $config_set_can_spawn_processes (local.get $c) (i32.const 1))
    (call $config_set_can_spawn_processes (local.get $c) (i32.const 0))
    (call $report (local.get $to) (i64.const 1) (call $config_get_max_memory (local.get $c)))
    (call $report (local.get $to) (i64.const 1) (call $config_get_max_fuel (local.get $c)))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $config_can_compile_modules (local.get $c))))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $config_can_create_configs (local.get $c))))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $config_can_spawn_processes (local.get $c))))
    (call $report (local.get $to) (i64.const 1) (call $create_config))
    (call $drop_config (local.get $c))
    (call $drop_config (local.get $c)))
"""


async def test_config_functions_get_and_set_and_drop(runtime: supervisor.Runtime) -> None:
    values, exit = await _run_main(runtime, CONFIG_BODY)
    assert values == [0, 0xFFFF_FFFF, 0, 0, 131072, 7, 1, 1, 0, 1]
    # dropping twice traps with lunatic's message
    assert exit.reason is ExitReason.FAILURE
    assert "lunatic::process::drop_config: Config ID doesn't exist" in exit.detail


async def test_create_config_returns_minus_1_without_permission(
    runtime: supervisor.Runtime,
) -> None:
    values, exit = await _run_main(
        runtime,
        """
  (func (export "main") (param $to i64)
    (call $report (local.get $to) (i64.const 1) (call $create_config)))
""",
        ProcessConfig(),
    )
    assert exit.normal
    assert values == [-1]


@pytest.mark.parametrize(
    "call",
    [
        "(call $config_set_max_memory (i64.const 3) (i64.const 1))",
        "(drop (call $config_get_max_memory (i64.const 3)))",
        "(call $config_set_max_fuel (i64.const 3) (i64.const 1))",
        "(drop (call $config_get_max_fuel (i64.const 3)))",
        "(drop (call $config_can_compile_modules (i64.const 3)))",
        "(call $config_set_can_compile_modules (i64.const 3) (i32.const 1))",
        "(drop (call $config_can_create_configs (i64.const 3)))",
        "(call $config_set_can_create_configs (i64.const 3) (i32.const 1))",
        "(drop (call $config_can_spawn_processes (i64.const 3)))",
        "(call $config_set_can_spawn_processes (i64.const 3) (i32.const 1))",
        "(call $drop_config (i64.const 3))",
    ],
)
async def test_unknown_config_ids_trap(runtime: supervisor.Runtime, call: str) -> None:
    module = runtime.compile_module(guest(f'(func (export "main") {call})'))
    exit = await (await runtime.spawn(module, "main")).wait()
    assert exit.reason is ExitReason.FAILURE
    assert "Config ID doesn't exist" in exit.detail
    assert exit.detail.startswith("Trap raised during host call: Expected Some(..) got None")


EMPTY_MODULE = b"\0asm\x01\0\0\0"


async def test_compile_module_returns_a_module_id_and_drop_module_frees_it(
    runtime: supervisor.Runtime,
) -> None:
    values, exit = await _run_main(
        runtime,
        """
  (func (export "main") (param $to i64)
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $compile_module (i32.const 0) (i32.const 8) (i32.const 100))))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 100)))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $compile_module (i32.const 0) (i32.const 8) (i32.const 100))))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 100)))
    (call $drop_module (i64.const 0))
    (call $drop_module (i64.const 0)))
""",
        data=data_string(0, EMPTY_MODULE),
    )
    assert values == [0, 0, 0, 1]
    assert "lunatic::process::drop_module: Module ID doesn't exist" in exit.detail


async def test_compile_module_error_returns_1_with_a_readable_error_id(
    runtime: supervisor.Runtime,
) -> None:
    bad_import = (
        b"\0asm\x01\0\0\0"
        b"\x01\x04\x01\x60\0\0"  # type section: () -> ()
        b"\x02\x0b\x01\x03env\x03nop\x00\x00"  # import env::nop
    )
    values, exit = await _run_main(
        runtime,
        """
  (func (export "main") (param $to i64)
    (local $id i64) (local $n i32)
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $compile_module (i32.const 0) (i32.const 27) (i32.const 100))))
    (local.set $id (i64.load (i32.const 100)))
    (call $report (local.get $to) (i64.const 1) (local.get $id))
    (local.set $n (call $error_string_size (local.get $id)))
    (call $error_to_string (local.get $id) (i32.const 200))
    (call $create_data (i64.const 1) (i64.const 0))
    (drop (call $write_data (i32.const 200) (local.get $n)))
    (drop (call $send (local.get $to)))
    (call $error_drop (local.get $id)))
""",
        data=data_string(0, bad_import),
    )
    assert exit.normal
    assert values[:2] == [1, 0]
    assert isinstance(values[2], bytes)
    assert b"env::nop" in values[2]


async def test_compile_module_returns_minus_1_without_permission(
    runtime: supervisor.Runtime,
) -> None:
    values, _ = await _run_main(
        runtime,
        """
  (func (export "main") (param $to i64)
    (i64.store (i32.const 100) (i64.const 55))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $compile_module (i32.const 0) (i32.const 8) (i32.const 100))))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 100))))
""",
        ProcessConfig(),
        data=data_string(0, EMPTY_MODULE),
    )
    assert values == [0xFFFF_FFFF, 55]  # -1 as u32; nothing written


async def test_max_memory_limits_memory_grow_without_trapping(
    runtime: supervisor.Runtime,
) -> None:
    values, exit = await _run_main(
        runtime,
        """
  (func (export "main") (param $to i64)
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_s (memory.grow (i32.const 1))))
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_s (memory.grow (i32.const 1)))))
""",
        ProcessConfig(max_memory=2 * 65536),
    )
    assert exit.normal
    assert values == [1, -1]


async def test_initial_memory_above_max_memory_fails_the_spawn(
    runtime: supervisor.Runtime,
) -> None:
    module = runtime.compile_module(
        guest('(func (export "main"))', memory='(memory (export "memory") 3)')
    )
    with pytest.raises(supervisor.SpawnError, match="Failed to spawn process"):
        await runtime.spawn(module, "main", config=ProcessConfig(max_memory=2 * 65536))


async def test_max_fuel_counts_units_of_100k_instructions(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(
        guest(
            """
  (func (export "spin") (param $n i64)
    (local $i i64)
    (loop $l
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (local.get $n)))))
"""
        )
    )
    # About 5 instructions per iteration: 10 000 iterations fit in one unit,
    # 1 000 000 do not fit in ten.
    ok = await (
        await runtime.spawn(module, "spin", [10_000], config=ProcessConfig(max_fuel=1))
    ).wait()
    assert ok.normal
    out = await (
        await runtime.spawn(module, "spin", [1_000_000], config=ProcessConfig(max_fuel=10))
    ).wait()
    assert out.reason is ExitReason.FAILURE
    assert "fuel" in out.detail


async def test_die_when_link_dies_zero_turns_link_failures_into_messages(
    runtime: supervisor.Runtime,
) -> None:
    values, exit = await _run_main(
        runtime,
        """
  (func (export "main") (param $to i64)
    (call $die_when_link_dies (i32.const 0))
    (call $link (i64.const 9) (i64.const 4242))
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (call $recv))))
""",
    )
    assert exit.normal
    assert values == [1]


async def test_link_to_a_missing_process_kills_by_default(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(
        guest(
            """
  (func (export "main")
    (call $link (i64.const 0) (i64.const 4242))
    (call $sleep_ms (i64.const 1000)))
"""
        )
    )
    exit = await (await runtime.spawn(module, "main")).wait()
    assert exit.reason is ExitReason.FAILURE
    assert "4242" in exit.detail


async def test_kill_self_finishes_the_call_and_dies_at_the_next_yield(
    runtime: supervisor.Runtime,
) -> None:
    values, exit = await _run_main(
        runtime,
        """
  (func (export "main") (param $to i64)
    (call $kill (call $process_id))
    (call $report (local.get $to) (i64.const 1) (i64.const 1))
    (call $sleep_ms (i64.const 1))
    (call $report (local.get $to) (i64.const 1) (i64.const 2)))
""",
    )
    assert values == [1]
    assert exit.reason is ExitReason.KILLED


async def test_kill_unlink_monitor_and_stop_monitoring_of_missing_ids_never_trap(
    runtime: supervisor.Runtime,
) -> None:
    values, exit = await _run_main(
        runtime,
        """
  (func (export "main") (param $to i64)
    (call $kill (i64.const 777))
    (call $unlink (i64.const 777))
    (call $stop_monitoring (i64.const 777))
    (call $report (local.get $to) (i64.const 1) (i64.const 1)))
""",
    )
    assert exit.normal
    assert values == [1]


async def test_monitor_of_a_missing_process_reports_it_dead_at_once(
    runtime: supervisor.Runtime,
) -> None:
    values, exit = await _run_main(
        runtime,
        """
  (func (export "main") (param $to i64)
    (local $code i64) (local $pid i64)
    (call $monitor (i64.const 777))
    (local.set $code (i64.extend_i32_u (call $recv)))
    (local.set $pid (call $get_process_id))
    (call $report (local.get $to) (i64.const 1) (local.get $code))
    (call $report (local.get $to) (i64.const 1) (local.get $pid)))
""",
    )
    assert exit.normal
    assert values == [2, 777]


WASI_EXIT = guest(
    """
  (func (export "main") (param $code i32) (call $proc_exit (local.get $code)))
""",
    extra_imports='(import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))',
)


@pytest.mark.parametrize(("code", "reason"), [(0, ExitReason.NORMAL), (3, ExitReason.FAILURE)])
async def test_proc_exit_ends_only_the_calling_process(
    runtime: supervisor.Runtime, code: int, reason: ExitReason
) -> None:
    module = runtime.compile_module(WASI_EXIT)
    exit = await (await runtime.spawn(module, "main", [code])).wait()
    assert exit.reason is reason
    assert exit.status == code
    assert exit.detail == f"proc_exit({code})"


async def test_get_or_spawn_traps_on_a_name_that_is_not_utf8(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(
        guest(
            data_string(0, b"\xff\xfe")
            + """
  (func (export "main")
    (drop (call $get_or_spawn (i32.const 0) (i32.const 2) (i64.const 0) (i64.const -1)
                              (i64.const -1) (i32.const 0) (i32.const 0) (i32.const 0)
                              (i32.const 0) (i32.const 100) (i32.const 108))))
"""
        )
    )
    exit = await (await runtime.spawn(module, "main")).wait()
    assert exit.reason is ExitReason.FAILURE
    assert "lunatic::process::get_or_spawn" in exit.detail
    assert "utf-8" in exit.detail


async def test_compile_module_traps_on_an_out_of_bounds_range(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(
        guest(
            """
  (func (export "main")
    (drop (call $compile_module (i32.const 65000) (i32.const 1000) (i32.const 0))))
"""
        )
    )
    exit = await (await runtime.spawn(module, "main")).wait()
    assert "out of bounds" in exit.detail and "lunatic::process::compile_module" in exit.detail
