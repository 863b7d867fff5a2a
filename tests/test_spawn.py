"""lunatic::process::spawn and get_or_spawn, step by step (HOSTAPI.md 1.3)."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import trio
from hypothesis import given

import supervisor
from hostapi.abi import HostTrap
from hostapi.process import decode_params, encode_params
from hostapi.signatures import ValType
from supervisor import Context, DataMessage, ExitReason, LinkDied, ProcessConfig

from .guests import data_string, guest, param_i32, param_i64, run_python, value_of

# -- parameter records ---------------------------------------------------------

_RANGES = {ValType.I32: 32, ValType.I64: 64, ValType.V128: 128}


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


@given(st.lists(st.tuples(st.sampled_from(sorted(_RANGES)), st.integers(-(2**130), 2**130))))
def test_param_records_round_trip_to_the_low_bits_of_each_type(
    params: list[tuple[ValType, int]],
) -> None:
    raw = encode_params(params)
    assert len(raw) == 17 * len(params)
    decoded = decode_params(raw)
    expected: list[tuple[ValType, int]] = []
    for kind, value in params:
        if kind == ValType.V128:
            expected.append((kind, value & ((1 << 128) - 1)))
        else:
            expected.append((kind, _signed(value, _RANGES[kind])))
    assert decoded == expected


@given(st.binary(max_size=80))
def test_param_records_either_decode_or_trap_with_lunatics_messages(raw: bytes) -> None:
    try:
        decoded = decode_params(raw)
    except HostTrap as e:
        message = str(e)
    else:
        assert len(decoded) * 17 == len(raw)
        return
    assert message == "Unsupported type ID" or message.startswith(
        "Params array must be in chunks of 17 bytes, but"
    )


def test_an_unknown_type_code_is_reported_before_a_partial_record() -> None:
    with pytest.raises(HostTrap, match="Unsupported type ID"):
        decode_params(b"\x7d" + bytes(16) + b"\x7f")
    with pytest.raises(HostTrap, match="but 3 bytes remained"):
        decode_params(param_i32(1) + b"\x7f\0\0")


PARAMS_GUEST = guest(
    """
  (func (export "main") (param $to i64)
    (local $child i64)
    (local.set $child (call $spawn_self (i64.const 0) (i32.const 0) (i32.const 5)
                                        (i32.const 100) (i32.const 68)))
    (call $create_data (i64.const 0) (i64.const 0))
    (i64.store (i32.const 300) (local.get $to))
    (drop (call $write_data (i32.const 300) (i32.const 8)))
    (drop (call $send (local.get $child))))
  (func (export "child") (param $a i32) (param $b i64) (param $c v128) (param $d i32)
    (local $to i64)
    (drop (call $recv))
    (local.set $to (call $read_i64))
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_s (local.get $a)))
    (call $report (local.get $to) (i64.const 1) (local.get $b))
    (call $report (local.get $to) (i64.const 1) (i64x2.extract_lane 0 (local.get $c)))
    (call $report (local.get $to) (i64.const 1) (i64x2.extract_lane 1 (local.get $c)))
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_s (local.get $d))))
"""
)


async def test_spawned_entry_receives_i32_i64_and_v128_parameters(
    runtime: supervisor.Runtime,
) -> None:
    records = (
        param_i32(-5)
        + param_i64(-(2**40))
        + b"\x7b"
        + (3 | (7 << 64)).to_bytes(16, "little")
        + param_i32(2**31 + 1)  # the low 32 bits: -2147483647
    )
    module = runtime.compile_module(
        PARAMS_GUEST.replace(
            "(module", "(module " + data_string(0, b"child") + data_string(100, records), 1
        )
    )

    async def test(ctx: Context) -> list[int]:
        await ctx.spawn(module, "main", [ctx.id])
        return [value_of(await ctx.receive(1)) for _ in range(5)]

    assert await run_python(runtime, test) == [-5, -(2**40), 3, 7, -(2**31) + 1]


FIRST_MESSAGE = guest(
    """
  ;; Spawn and immediately send: the child must be registered already, and the
  ;; parent's message must be the child's first (section 5.3).
  (func (export "main") (param $to i64)
    (local $child i64)
    (local.set $child (call $spawn_self (i64.const 0) (i32.const 0) (i32.const 5)
                                        (i32.const 0) (i32.const 0)))
    (call $create_data (i64.const 0) (i64.const 0))
    (i64.store (i32.const 300) (local.get $to))
    (drop (call $write_data (i32.const 300) (i32.const 8)))
    (drop (call $send (local.get $child))))
  (func (export "child")
    (local $to i64)
    (drop (call $recv))
    (local.set $to (call $read_i64))
    (call $report (local.get $to) (i64.const 1) (call $process_id)))
"""
)


async def test_child_is_registered_before_spawn_returns(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(
        FIRST_MESSAGE.replace("(module", "(module " + data_string(0, b"child"), 1)
    )

    async def test(ctx: Context) -> int:
        await ctx.spawn(module, "main", [ctx.id])
        return value_of(await ctx.receive(1))

    assert await run_python(runtime, test) == 3


def _spawner(call: str, *, data: str = "") -> str:
    return guest(
        data
        + f"""
  (func (export "main") (param $to i64)
    (local $code i64)
    (local.set $code (i64.extend_i32_u {call}))
    (call $report (local.get $to) (i64.const 1) (local.get $code))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 1040))))
  (func (export "child") (param $to i64)
    (call $report (local.get $to) (i64.const 2) (call $process_id)))
  (func (export "crash") unreachable)
  (func (export "returns") (result i32) (i32.const 1))
"""
    )


async def _spawn_result(
    runtime: supervisor.Runtime, wat: str, config: ProcessConfig | None = None
) -> tuple[list[int], supervisor.Exit]:
    module = runtime.compile_module(wat)

    async def test(ctx: Context) -> tuple[list[int], supervisor.Exit]:
        h = await ctx.spawn(module, "main", [ctx.id], config=config)
        exit = await h.wait()
        out: list[int] = []
        while True:
            try:
                out.append(value_of(await ctx.receive(1, timeout=0)))
            except trio.TooSlowError:
                return out, exit

    result = await run_python(runtime, test)
    assert isinstance(result, tuple)
    return result


SPAWN_CHILD = (
    "(call $spawn (i64.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 5)"
    " (i32.const 100) (i32.const 17) (i32.const 1040))"
)


async def test_spawn_without_permission_traps_in_the_parent(runtime: supervisor.Runtime) -> None:
    _, exit = await _spawn_result(runtime, _spawner(SPAWN_CHILD), ProcessConfig())
    assert exit.detail == "Process doesn't have permissions to spawn sub-processes"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            SPAWN_CHILD.replace("(i64.const -1) (i64.const -1)", "(i64.const 5) (i64.const -1)"),
            "lunatic::process::spawn: Config ID doesn't exist",
        ),
        (
            SPAWN_CHILD.replace("(i64.const -1) (i64.const -1)", "(i64.const -1) (i64.const 5)"),
            "lunatic::process::spawn: Module ID doesn't exist",
        ),
        (
            SPAWN_CHILD.replace("(i32.const 0) (i32.const 5)", "(i32.const 60) (i32.const 2)"),
            "lunatic::process::spawn",
        ),
        (
            SPAWN_CHILD.replace("(i32.const 0) (i32.const 5)", "(i32.const 65535) (i32.const 5)"),
            "out of bounds",
        ),
        (SPAWN_CHILD.replace("(i32.const 17)", "(i32.const 18)"), "but 1 bytes remained"),
        (SPAWN_CHILD.replace("(i32.const 100)", "(i32.const 120)"), "Unsupported type ID"),
    ],
)
async def test_spawn_traps_for_bad_ids_names_and_parameters(
    runtime: supervisor.Runtime, call: str, message: str
) -> None:
    data = data_string(0, b"child") + data_string(60, b"\xff\xfe") + data_string(100, param_i64(1))
    data += data_string(120, b"\x01" * 17)
    _, exit = await _spawn_result(runtime, _spawner(call, data=data))
    assert exit.reason is ExitReason.FAILURE
    assert message in exit.detail


async def test_spawn_returns_0_and_the_child_id(runtime: supervisor.Runtime) -> None:
    data = data_string(0, b"child") + data_string(100, param_i64(1))
    out, exit = await _spawn_result(runtime, _spawner(SPAWN_CHILD, data=data))
    assert exit.normal
    assert out == [0, 3]  # the code, and the child's id at id_ptr


async def test_failed_instantiation_returns_1_with_an_error_id(
    runtime: supervisor.Runtime,
) -> None:
    # compile a module whose start function traps, then spawn from it
    bad = guest('(func $s unreachable) (start $s) (func (export "child") (param i64))')
    from hostapi.ffi import wat_to_wasm

    wasm = wat_to_wasm(bad)
    body = f"""
  (func (export "main") (param $to i64)
    (local $code i64)
    (if (call $compile_module (i32.const 2000) (i32.const {len(wasm)}) (i32.const 200))
      (then unreachable))
    (local.set $code (i64.extend_i32_u
      (call $spawn (i64.const 0) (i64.const -1) (i64.load (i32.const 200)) (i32.const 0)
                   (i32.const 5) (i32.const 100) (i32.const 17) (i32.const 1040))))
    (call $report (local.get $to) (i64.const 1) (local.get $code))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $error_string_size (i64.load (i32.const 1040))))))
"""
    module = runtime.compile_module(
        guest(
            data_string(0, b"child")
            + data_string(100, param_i64(1))
            + data_string(2000, wasm)
            + body,
            memory='(memory (export "memory") 2)',
        )
    )

    async def test(ctx: Context) -> list[int]:
        await ctx.spawn(module, "main", [ctx.id])
        return [value_of(await ctx.receive(1)) for _ in range(2)]

    code, size = await run_python(runtime, test)
    assert code == 1
    assert size > 10


@pytest.mark.parametrize(
    ("entry", "detail"),
    [
        (b"nothere", "Function 'nothere' not found"),
        (b"crash", "has type () but was called with (i64)"),
        (b"returns", "has type () -> i32"),
    ],
)
async def test_a_bad_entry_does_not_fail_the_spawn_but_the_child(
    runtime: supervisor.Runtime, entry: bytes, detail: str
) -> None:
    # The parent links with tag 5, catches the link death and forwards the
    # LinkDied message to the test, which reads the child's exit from it.
    wat = guest(
        data_string(0, entry)
        + data_string(100, param_i64(1))
        + f"""
  (func (export "main") (param $to i64)
    (local $code i64)
    (call $die_when_link_dies (i32.const 0))
    (local.set $code (i64.extend_i32_u
      (call $spawn (i64.const 5) (i64.const -1) (i64.const -1) (i32.const 0)
                   (i32.const {len(entry)}) (i32.const 100) (i32.const 17) (i32.const 1040))))
    (call $report (local.get $to) (i64.const 1) (local.get $code))
    (if (i32.ne (call $recv) (i32.const 1)) (then unreachable))
    (drop (call $send (local.get $to))))
  (func (export "crash") unreachable)
  (func (export "returns") (result i32) (i32.const 1))
"""
    )
    module = runtime.compile_module(wat)

    async def test(ctx: Context) -> tuple[int, LinkDied]:
        await ctx.spawn(module, "main", [ctx.id])
        code = value_of(await ctx.receive(1))
        died = await ctx.receive(5)
        assert isinstance(died, LinkDied)
        return code, died

    code, died = await run_python(runtime, test)
    assert code == 0
    assert died.pid == 3
    assert isinstance(died.exit, supervisor.Exit)
    assert died.exit.reason is ExitReason.FAILURE
    assert detail in died.exit.detail


async def test_spawn_during_module_initialization_traps(runtime: supervisor.Runtime) -> None:
    wat = guest(
        data_string(0, b"child")
        + """
  (func $start
    (drop (call $spawn (i64.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 5)
                       (i32.const 0) (i32.const 0) (i32.const 1040))))
  (start $start)
  (func (export "child"))
"""
    )
    module = runtime.compile_module(wat)
    with pytest.raises(
        supervisor.SpawnError, match="Cannot spawn process during module initialization"
    ):
        await runtime.spawn(module, "child")


async def test_a_blocking_start_function_suspends_the_spawn(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    wat = guest(
        '(func $start (call $sleep_ms (i64.const 2000))) (start $start) (func (export "main"))'
    )
    module = runtime.compile_module(wat)
    start = trio.current_time()
    h = await runtime.spawn(module, "main")
    assert trio.current_time() - start == pytest.approx(2.0)
    assert (await h.wait()).normal


LINK_TAGS = guest(
    """
  ;; spawn_link with tag 77; both sides catch link deaths. Whoever crashes,
  ;; the other reports the tag of the LinkDied it receives.
  (func (export "parent") (param $to i64) (param $crash_child i32)
    (local $child i64) (local $tag i64)
    (call $die_when_link_dies (i32.const 0))
    (i64.store (i32.const 100) (local.get $to))
    (local.set $child (call $spawn_self (i64.const 77) (i32.const 0) (i32.const 5)
                                        (i32.const 100) (i32.const 0)))
    (call $create_data (i64.const 0) (i64.const 0))
    (i32.store (i32.const 100) (local.get $crash_child))
    (i64.store (i32.const 104) (local.get $to))
    (drop (call $write_data (i32.const 100) (i32.const 12)))
    (drop (call $send (local.get $child)))
    (if (i32.eqz (local.get $crash_child)) (then (call $sleep_ms (i64.const 10)) unreachable))
    (if (i32.ne (call $recv) (i32.const 1)) (then unreachable))
    (local.set $tag (call $get_tag))
    (call $report (local.get $to) (i64.const 1) (local.get $tag)))
  (func (export "child")
    (local $to i64) (local $tag i64)
    (call $die_when_link_dies (i32.const 0))
    (drop (call $recv))
    (drop (call $read_data (i32.const 200) (i32.const 12)))
    (local.set $to (i64.load (i32.const 204)))
    (if (i32.load (i32.const 200)) (then unreachable))
    (if (i32.ne (call $recv) (i32.const 1)) (then unreachable))
    (local.set $tag (call $get_tag))
    (call $report (local.get $to) (i64.const 1) (local.get $tag)))
"""
)


@pytest.mark.parametrize(("crash_child", "tag"), [(1, 77), (0, 0)])
async def test_spawn_link_tags_differ_in_the_two_directions(
    runtime: supervisor.Runtime, crash_child: int, tag: int
) -> None:
    module = runtime.compile_module(
        LINK_TAGS.replace("(module", "(module " + data_string(0, b"child"), 1)
    )

    async def test(ctx: Context) -> int:
        await ctx.spawn(module, "parent", [ctx.id, crash_child])
        return value_of(await ctx.receive(1))

    assert await run_python(runtime, test) == tag


GET_OR_SPAWN = guest(
    data_string(0, b"child")
    + data_string(10, b"name")
    + """
  (func $gos (param $module i64) (result i64)
    (i64.extend_i32_u
      (call $get_or_spawn (i32.const 10) (i32.const 4) (i64.const 0) (i64.const -1)
                          (local.get $module) (i32.const 0) (i32.const 5) (i32.const 0)
                          (i32.const 0) (i32.const 1048) (i32.const 1040))))
  ;; get_or_spawn twice with module $module, then twice with our own module
  (func (export "main") (param $to i64) (param $module i64)
    (local $code i64)
    (local.set $code (call $gos (local.get $module)))
    (call $report (local.get $to) (i64.const 1) (local.get $code))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 1040)))
    (local.set $code (call $gos (i64.const -1)))
    (call $report (local.get $to) (i64.const 1) (local.get $code))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 1048)))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 1040)))
    (local.set $code (call $gos (i64.const -1)))
    (call $report (local.get $to) (i64.const 1) (local.get $code))
    (call $report (local.get $to) (i64.const 1) (i64.load (i32.const 1040))))
  (func (export "child") (call $sleep_ms (i64.const 1000)))
"""
)


async def test_get_or_spawn_spawns_once_then_returns_2_with_the_registered_id(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(GET_OR_SPAWN)

    async def test(ctx: Context) -> list[int]:
        await ctx.spawn(module, "main", [ctx.id, -1])
        return [value_of(await ctx.receive(1)) for _ in range(7)]

    got = await run_python(runtime, test)
    # spawned (0) as process 3; then found (2) at node 0, id 3, twice
    assert got == [0, 3, 2, 0, 3, 2, 3]
    assert runtime.default_environment.registry == {"name": (0, 3)}


async def test_get_or_spawn_registers_only_successful_spawns(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    # Module 0 of the guest has a trapping start function: the first
    # get_or_spawn fails (1, an error id) and leaves the name free, so the
    # next one spawns (0) instead of finding the error id (lunatic's 6.4).
    from hostapi.ffi import wat_to_wasm

    failing = wat_to_wasm(guest('(func $s unreachable) (start $s) (func (export "child"))'))
    wat = GET_OR_SPAWN.replace(
        "(func $gos",
        data_string(3000, failing) + "\n  (func $gos",
    ).replace(
        '(func (export "main") (param $to i64) (param $module i64)\n    (local $code i64)',
        f"""(func (export "main") (param $to i64) (param $module i64)
    (local $code i64)
    (if (call $compile_module (i32.const 3000) (i32.const {len(failing)}) (i32.const 200))
      (then unreachable))
    (local.set $module (i64.load (i32.const 200)))""",
    )
    module = runtime.compile_module(wat)

    async def test(ctx: Context) -> list[int]:
        await ctx.spawn(module, "main", [ctx.id, 0])
        return [value_of(await ctx.receive(1)) for _ in range(7)]

    got = await run_python(runtime, test)
    assert got[0] == 1  # the failed spawn, with an error id
    assert got[2:] == [0, 0, 4, 2, 4]  # process 3 was used up by the failure
    assert runtime.default_environment.registry == {"name": (0, 4)}


async def test_get_or_spawn_checks_spawn_permission_only_when_spawning(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(GET_OR_SPAWN)
    runtime.default_environment.registry["name"] = (0, 42)
    h = await runtime.spawn(module, "main", [999, -1], config=ProcessConfig())
    assert (await h.wait()).normal  # found: no permission needed
    del runtime.default_environment.registry["name"]
    h = await runtime.spawn(module, "main", [999, -1], config=ProcessConfig())
    assert (await h.wait()).detail == "Process doesn't have permissions to spawn sub-processes"


@pytest.mark.parametrize("stderr_same", [True, False])
async def test_captured_output_gives_children_new_streams_in_the_same_group(
    runtime: supervisor.Runtime, stderr_same: bool
) -> None:
    wat = guest(
        data_string(0, b"child")
        + data_string(16, b"parent\n")
        + data_string(32, b"child\n")
        + """
  (func (export "main")
    (i32.store (i32.const 100) (i32.const 16))
    (i32.store (i32.const 104) (i32.const 7))
    (drop (call $fd_write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 108)))
    (drop (call $spawn_self (i64.const 0) (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 0))))
  (func (export "child")
    (i32.store (i32.const 100) (i32.const 32))
    (i32.store (i32.const 104) (i32.const 6))
    (drop (call $fd_write (i32.const 2) (i32.const 100) (i32.const 1) (i32.const 108))))
""",
        extra_imports='(import "wasi_snapshot_preview1" "fd_write" '
        "(func $fd_write (param i32 i32 i32 i32) (result i32)))",
    )
    module = runtime.compile_module(wat)
    group = supervisor.CaptureGroup()
    out = group.new_stream()
    err = out if stderr_same else group.new_stream()
    h = await runtime.spawn(module, "main", stdout=out, stderr=err)
    await h.wait()
    for child in runtime.processes():
        await child.wait()
    assert out.data == b"parent\n"
    if stderr_same:
        assert [s.data for s in group.streams] == [b"parent\n", b"child\n"]
    else:
        assert [s.data for s in group.streams] == [b"parent\n", b"", b"", b"child\n"]


def test_linkdied_message_carries_tag_and_exit() -> None:
    m = LinkDied(5, 3, supervisor.Exit(ExitReason.FAILURE, "x"))
    assert isinstance(m.exit, supervisor.Exit)
    assert (m.tag, m.pid, m.exit.reason) == (5, 3, ExitReason.FAILURE)
    assert DataMessage(1, b"ab").data == b"ab"
