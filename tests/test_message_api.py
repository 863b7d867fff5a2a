"""lunatic::message: the scratch area, send and receive (HOSTAPI.md 2.2, 4)."""

from __future__ import annotations

import pytest
import trio

import supervisor
from hostapi.abi import TIMEOUT
from supervisor import Context, DataMessage, ExitReason, LinkDied, ProcessDied

from .guests import data_string, guest, run_python, value_of

ECHO = guest(
    """
  ;; Receive one data message and send it back, tag and bytes unchanged,
  ;; to the process whose id is in the first 8 bytes.
  (func (export "echo")
    (local $to i64)
    (drop (call $recv))
    (local.set $to (call $read_i64))
    (call $seek_data (i64.const 0))
    (drop (call $send (local.get $to))))
"""
)


async def test_data_message_round_trip_keeps_tag_and_bytes(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(ECHO)

    async def client(ctx: Context) -> tuple[int, bytes]:
        echo = await ctx.spawn(module, "echo")
        ctx.send(echo.id, ctx.id.to_bytes(8, "little") + b"payload", tag=77)
        m = await ctx.receive()
        assert isinstance(m, DataMessage)
        return m.tag, m.data

    assert await run_python(runtime, client) == (77, (1).to_bytes(8, "little") + b"payload")


READER = guest(
    """
  ;; Read the message in chunks of 3 until read_data returns 0, keeping the
  ;; counts at 200.. and the bytes at 100..; then report data_size, each
  ;; count, and the bytes, to process $to.
  (func (export "reader") (param $to i64)
    (local $n i32) (local $total i32) (local $calls i32) (local $size i64) (local $i i32)
    (drop (call $recv))
    (local.set $size (call $data_size))
    (block $done
      (loop $more
        (local.set $n (call $read_data (i32.add (i32.const 100) (local.get $total)) (i32.const 3)))
        (i32.store (i32.add (i32.const 200) (i32.mul (local.get $calls) (i32.const 4)))
                   (local.get $n))
        (local.set $calls (i32.add (local.get $calls) (i32.const 1)))
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $total (i32.add (local.get $total) (local.get $n)))
        (br $more)))
    (call $report (local.get $to) (i64.const 1) (local.get $size))
    (loop $each
      (call $report (local.get $to) (i64.const 2)
        (i64.load32_u (i32.add (i32.const 200) (i32.mul (local.get $i) (i32.const 4)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $each (i32.lt_u (local.get $i) (local.get $calls))))
    (call $create_data (i64.const 3) (i64.const 0))
    (drop (call $write_data (i32.const 100) (local.get $total)))
    (drop (call $send (local.get $to))))
"""
)


async def test_read_data_advances_a_cursor_and_returns_0_at_the_end(
    runtime: supervisor.Runtime,
) -> None:
    module = runtime.compile_module(READER)

    async def client(ctx: Context) -> tuple[int, list[int], bytes]:
        await ctx.spawn(module, "reader", [ctx.id])
        ctx.send(2, b"abcdefg")
        size = value_of(await ctx.receive(1))
        counts = []
        while True:
            n = value_of(await ctx.receive(2))
            counts.append(n)
            if n == 0:
                break
        data = await ctx.receive(3)
        assert isinstance(data, DataMessage)
        return size, counts, data.data

    assert await run_python(runtime, client) == (7, [3, 3, 1, 0], b"abcdefg")


FILTER = guest(
    """
  (data (i32.const 0) "\\40\\00\\00\\00\\00\\00\\00\\00\\41\\00\\00\\00\\00\\00\\00\\00")
  ;; receive with tags [64, 65]; report the tag and value of each of 2 messages,
  ;; then receive anything and report its tag.
  (func (export "filtered") (param $to i64)
    (drop (call $receive (i32.const 0) (i32.const 2) (i64.const -1)))
    (call $report (local.get $to) (i64.const 1) (call $get_tag))
    (drop (call $receive (i32.const 0) (i32.const 2) (i64.const -1)))
    (call $report (local.get $to) (i64.const 1) (call $get_tag))
    (drop (call $recv))
    (call $report (local.get $to) (i64.const 1) (call $get_tag)))
"""
)


async def test_filtered_receive_takes_first_matching_and_leaves_the_rest_in_order(
    runtime: supervisor.Runtime,
) -> None:
    module = runtime.compile_module(FILTER)

    async def client(ctx: Context) -> list[int]:
        w = await ctx.spawn(module, "filtered", [ctx.id])
        ctx.send(w.id, b"x", tag=0)  # untagged never matches a filter
        ctx.send(w.id, b"x", tag=9)
        ctx.send(w.id, b"x", tag=65)
        ctx.send(w.id, b"x", tag=64)
        return [value_of(await ctx.receive(1)) for _ in range(3)]

    assert await run_python(runtime, client) == [65, 64, 0]


TIMEOUTS = guest(
    """
  ;; receive with timeout 0 on an empty mailbox, then 50 ms: both 9027, and the
  ;; scratch area keeps the message built before.
  (func (export "timeouts") (param $to i64)
    (call $create_data (i64.const 5) (i64.const 0))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $receive (i32.const 0) (i32.const 0) (i64.const 0))))
    (call $create_data (i64.const 6) (i64.const 0))
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $receive (i32.const 0) (i32.const 0) (i64.const 50))))
    (call $create_data (i64.const 7) (i64.const 0))
    (drop (call $receive (i32.const 0) (i32.const 0) (i64.const 50)))
    (call $report (local.get $to) (i64.const 1) (call $get_tag)))
"""
)


async def test_receive_timeout_returns_9027_and_leaves_the_scratch_unchanged(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(TIMEOUTS)

    async def client(ctx: Context) -> list[int]:
        await ctx.spawn(module, "timeouts", [ctx.id])
        return [value_of(await ctx.receive(1)) for _ in range(3)]

    assert await run_python(runtime, client) == [TIMEOUT, TIMEOUT, 7]


WAITER = guest(
    """
  (data (i32.const 0) "\\05\\00\\00\\00\\00\\00\\00\\00")
  ;; a receive filtered on tag 5 times out after 10 ms; then an unfiltered
  ;; receive must return messages in arrival order (the fix of section 6.1).
  (func (export "waiter") (param $to i64)
    (call $report (local.get $to) (i64.const 1)
      (i64.extend_i32_u (call $receive (i32.const 0) (i32.const 1) (i64.const 10))))
    (call $sleep_ms (i64.const 100))
    (drop (call $recv))
    (call $report (local.get $to) (i64.const 2) (call $get_tag))
    (drop (call $recv))
    (call $report (local.get $to) (i64.const 2) (call $get_tag)))
"""
)


async def test_timed_out_receive_leaves_no_waiter_behind(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(WAITER)

    async def client(ctx: Context) -> list[int]:
        w = await ctx.spawn(module, "waiter", [ctx.id])
        assert value_of(await ctx.receive(1)) == TIMEOUT
        ctx.send(w.id, b"", tag=5)  # would have been parked by a stale waiter
        ctx.send(w.id, b"", tag=6)
        return [value_of(await ctx.receive(2)) for _ in range(2)]

    assert await run_python(runtime, client) == [5, 6]


SKIP_SEARCH = guest(
    """
  ;; A message tagged 42 is already queued; send_receive_skip_search(.., 42)
  ;; must wait for a new one (the reply) and leave the old one queued.
  (func (export "client") (param $server i64) (param $to i64)
    (local $code i64) (local $value i64)
    (drop (call $receive (i32.const 0) (i32.const 0) (i64.const 0)))   ;; nothing yet
    (call $sleep_ms (i64.const 20))                                    ;; old 42 arrives
    (call $create_data (i64.const 1) (i64.const 0))
    (i64.store (i32.const 0) (call $process_id))
    (drop (call $write_data (i32.const 0) (i32.const 8)))
    (local.set $code (i64.extend_i32_u
      (call $send_receive_skip_search (local.get $server) (i64.const 42) (i64.const -1))))
    (local.set $value (call $read_i64))
    (call $report (local.get $to) (i64.const 1) (local.get $code))
    (call $report (local.get $to) (i64.const 2) (local.get $value))
    (drop (call $recv))
    (call $report (local.get $to) (i64.const 3) (call $read_i64))
    (call $create_data (i64.const 1) (i64.const 0))
    (call $report (local.get $to) (i64.const 4)
      (i64.extend_i32_u
        (call $send_receive_skip_search (i64.const 999) (i64.const 42) (i64.const 10)))))
"""
)


async def test_send_receive_skip_search_waits_only_for_new_replies(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(SKIP_SEARCH)

    async def server(ctx: Context) -> None:
        m = await ctx.receive()
        client = value_of_first8(m)
        await trio.sleep(0.01)
        ctx.send(client, (222).to_bytes(8, "little"), tag=42)

    async def test(ctx: Context) -> list[int]:
        srv = await ctx.spawn_python(server)
        c = await ctx.spawn(module, "client", [srv.id, ctx.id])
        await trio.sleep(0.005)
        ctx.send(c.id, (111).to_bytes(8, "little"), tag=42)
        return [value_of(await ctx.receive(t)) for t in (1, 2, 3, 4)]

    assert await run_python(runtime, test) == [0, 222, 111, TIMEOUT]


def value_of_first8(m: object) -> int:
    assert isinstance(m, DataMessage)
    return int.from_bytes(m.buffer[:8], "little")


KINDS = guest(
    """
  ;; catch link deaths and monitor: report receive's code, get_tag and
  ;; get_process_id for the LinkDied and ProcessDied messages.
  (func (export "observer") (param $to i64)
    (local $child i64) (local $i i32) (local $code i64) (local $tag i64) (local $pid i64)
    (call $die_when_link_dies (i32.const 0))
    (local.set $child (call $spawn_self (i64.const 200) (i32.const 0) (i32.const 5)
                                        (i32.const 0) (i32.const 0)))
    (call $monitor (local.get $child))
    (loop $two
      (local.set $code (i64.extend_i32_u (call $recv)))
      (local.set $tag (call $get_tag))
      (local.set $pid (call $get_process_id))
      (call $report (local.get $to) (i64.const 1) (local.get $code))
      (call $report (local.get $to) (i64.const 2) (local.get $tag))
      (call $report (local.get $to) (i64.const 3) (local.get $pid))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $two (i32.lt_u (local.get $i) (i32.const 2))))
    (call $report (local.get $to) (i64.const 4) (local.get $child)))
  (func (export "crash") (call $sleep_ms (i64.const 5)) unreachable)
"""
)


async def test_link_died_and_process_died_as_the_guest_sees_them(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(
        KINDS.replace("(module", "(module " + data_string(0, b"crash"), 1)
    )

    async def test(ctx: Context) -> list[int]:
        await ctx.spawn(module, "observer", [ctx.id])
        got = []
        for _ in range(2):
            got += [value_of(await ctx.receive(t)) for t in (1, 2, 3)]
        child = value_of(await ctx.receive(4))
        return [*got, child]

    kinds = await run_python(runtime, test)
    child = kinds[-1]
    # LinkDied first (code 1, the spawn-link tag, no process id), then ProcessDied.
    assert kinds[:-1] == [1, 200, 0, 2, 0, child]


def test_message_kinds_are_visible_to_python() -> None:
    assert DataMessage(3, b"x").kind == 0
    assert LinkDied(5).kind == 1
    assert ProcessDied(7).kind == 2
    assert ExitReason.NORMAL.value == "normal"


async def test_send_to_a_missing_process_is_silently_dropped(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(
        guest(
            """
  (func (export "main")
    (call $create_data (i64.const 0) (i64.const 0))
    (if (call $send (i64.const 12345)) (then unreachable)))
"""
        )
    )
    h = await runtime.spawn(module, "main")
    assert (await h.wait()).reason is ExitReason.NORMAL


@pytest.mark.parametrize(
    ("call", "trap"),
    [
        ("(drop (call $write_data (i32.const 0) (i32.const 1)))", "lunatic::message::write_data"),
        ("(drop (call $read_data (i32.const 0) (i32.const 1)))", "lunatic::message::read_data"),
        ("(call $seek_data (i64.const 0))", "lunatic::message::seek_data"),
        ("(drop (call $get_tag))", "lunatic::message::get_tag"),
        ("(drop (call $get_process_id))", "lunatic::message::get_process_id"),
        ("(drop (call $data_size))", "lunatic::message::data_size"),
        ("(drop (call $send (i64.const 1)))", "lunatic::message::send"),
        (
            "(drop (call $send_receive_skip_search (i64.const 1) (i64.const 1) (i64.const 0)))",
            "lunatic::message::send_receive_skip_search",
        ),
        ("(drop (call $take_module (i64.const 0)))", "lunatic::message::take_module"),
    ],
)
async def test_scratch_functions_trap_when_the_scratch_area_is_empty(
    runtime: supervisor.Runtime, call: str, trap: str
) -> None:
    module = runtime.compile_module(guest(f'(func (export "main") {call})'))
    exit = await (await runtime.spawn(module, "main")).wait()
    assert exit.reason is ExitReason.FAILURE
    assert trap in exit.detail and "Expected Some" in exit.detail


async def test_data_functions_trap_on_a_link_died_message(
    runtime: supervisor.Runtime,
) -> None:
    module = runtime.compile_module(
        guest(
            """
  (func (export "main")
    (call $die_when_link_dies (i32.const 0))
    (call $link (i64.const 3) (i64.const 999))     ;; NoProcess: a LinkDied message
    (if (i32.ne (call $recv) (i32.const 1)) (then unreachable))
    (drop (call $data_size)))
"""
        )
    )
    exit = await (await runtime.spawn(module, "main")).wait()
    assert exit.detail == "Unexpected `Message::LinkDied` in scratch area"


async def test_read_data_checks_the_whole_destination_range(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(
        guest(
            """
  (func (export "main")
    (call $create_data (i64.const 0) (i64.const 0))
    (drop (call $read_data (i32.const 65535) (i32.const 2))))
"""
        )
    )
    exit = await (await runtime.spawn(module, "main")).wait()
    assert exit.reason is ExitReason.FAILURE
    assert "out of bounds" in exit.detail and "lunatic::message::read_data" in exit.detail


async def test_read_data_traps_when_seeked_past_the_end(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(
        guest(
            """
  (func (export "main")
    (call $create_data (i64.const 0) (i64.const 0))
    (drop (call $write_data (i32.const 0) (i32.const 4)))
    (call $seek_data (i64.const 4))
    (if (call $read_data (i32.const 0) (i32.const 4)) (then unreachable))  ;; at the end: 0
    (call $seek_data (i64.const 5))
    (drop (call $read_data (i32.const 0) (i32.const 4))))
"""
        )
    )
    exit = await (await runtime.spawn(module, "main")).wait()
    assert "past the end" in exit.detail


async def test_huge_create_data_capacity_is_only_a_hint(runtime: supervisor.Runtime) -> None:
    module = runtime.compile_module(
        guest(
            """
  (func (export "main")
    (call $create_data (i64.const 0) (i64.const -1))
    (drop (call $write_data (i32.const 0) (i32.const 8))))
"""
        )
    )
    assert (await (await runtime.spawn(module, "main")).wait()).normal


async def test_push_and_take_module_copy_the_module(runtime: supervisor.Runtime) -> None:
    # The sender keeps its module id; the receiver gets a new id; taking the
    # slot twice traps.
    wat = guest(
        """
  (func (export "main") (param $to i64)
    (local $mod i64)
    (if (call $compile_module (i32.const 0) (i32.const 8) (i32.const 200)) (then unreachable))
    (local.set $mod (i64.load (i32.const 200)))
    (call $create_data (i64.const 0) (i64.const 0))
    (call $report (local.get $to) (i64.const 1) (call $push_module (local.get $mod)))
    (call $create_data (i64.const 0) (i64.const 0))
    (drop (call $push_module (local.get $mod)))
    (drop (call $push_module (local.get $mod)))
    (call $seek_data (i64.const 0))
    (call $report (local.get $to) (i64.const 2) (call $take_module (i64.const 1)))
    (drop (call $take_module (i64.const 1))))
"""
    ).replace("(module", "(module " + data_string(0, b"\0asm\x01\0\0\0"), 1)
    module = runtime.compile_module(wat)

    async def test(ctx: Context) -> tuple[list[int], supervisor.Exit]:
        h = await ctx.spawn(module, "main", [ctx.id])
        got = [value_of(await ctx.receive(1)), value_of(await ctx.receive(2))]
        return got, await h.wait()

    got, exit = await run_python(runtime, test)
    assert got == [0, 1]  # index 0 in the first message; module id 1 after id 0
    assert "lunatic::message::take_module" in exit.detail


@pytest.mark.parametrize(
    ("body", "context"),
    [
        # moving a stream out of the table traps on an unknown id, before the
        # scratch area is even looked at
        ("(drop (call $push_tcp_stream (i64.const 0)))", "lunatic::message::push_tcp_stream"),
        ("(drop (call $push_tls_stream (i64.const 3)))", "lunatic::message::push_tls_stream"),
        ("(drop (call $push_udp_socket (i64.const 1)))", "lunatic::message::push_udp_socket"),
        ("(drop (call $push_module (i64.const 0)))", "lunatic::message::push_module"),
        # taking from a slot that does not exist, or from an empty scratch
        (
            "(call $create_data (i64.const 0) (i64.const 0))"
            "(drop (call $take_tcp_stream (i64.const 0)))",
            "lunatic::message::take_tcp_stream",
        ),
        ("(drop (call $take_udp_socket (i64.const 0)))", "lunatic::message::take_udp_socket"),
        ("(drop (call $take_tls_stream (i64.const -1)))", "lunatic::message::take_tls_stream"),
    ],
)
async def test_resource_pushes_and_takes_trap_on_unknown_ids_and_slots(
    runtime: supervisor.Runtime, body: str, context: str
) -> None:
    module = runtime.compile_module(guest(f'(func (export "main") {body})'))
    exit = await (await runtime.spawn(module, "main")).wait()
    assert exit.reason is ExitReason.FAILURE
    assert exit.detail == f"Trap raised during host call: Expected Some(..) got None ({context})."


async def test_take_module_traps_on_a_slot_of_another_kind(runtime: supervisor.Runtime) -> None:
    # A message whose slot 0 holds a module: take_tcp_stream(0) must trap.
    module = runtime.compile_module(
        guest(
            data_string(0, b"\0asm\x01\0\0\0")
            + """
  (func (export "main")
    (if (call $compile_module (i32.const 0) (i32.const 8) (i32.const 200)) (then unreachable))
    (call $create_data (i64.const 0) (i64.const 0))
    (drop (call $push_module (i64.load (i32.const 200))))
    (drop (call $take_tcp_stream (i64.const 0))))
"""
        )
    )
    exit = await (await runtime.spawn(module, "main")).wait()
    assert "lunatic::message::take_tcp_stream" in exit.detail


async def test_skip_search_with_tag_0_never_matches(
    runtime: supervisor.Runtime, autojump_clock: trio.testing.MockClock
) -> None:
    module = runtime.compile_module(
        guest(
            """
  (func (export "main") (param $to i64)
    (local $code i64)
    (call $create_data (i64.const 0) (i64.const 0))
    (local.set $code (i64.extend_i32_u
      (call $send_receive_skip_search (call $process_id) (i64.const 0) (i64.const 100))))
    (call $report (local.get $to) (i64.const 1) (local.get $code))
    (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (call $recv))))
"""
        )
    )

    async def test(ctx: Context) -> list[int]:
        await ctx.spawn(module, "main", [ctx.id])
        return [value_of(await ctx.receive(1)) for _ in range(2)]

    # it times out although an untagged message (its own) arrived meanwhile
    assert await run_python(runtime, test) == [TIMEOUT, 0]


async def test_forwarding_keeps_tag_bytes_and_process_died_messages(
    runtime: supervisor.Runtime,
) -> None:
    module = runtime.compile_module(
        guest(
            """
  (func (export "main") (param $to i64)
    (call $monitor (i64.const 4242))
    (drop (call $recv))
    (drop (call $send (local.get $to))))
"""
        )
    )

    async def test(ctx: Context) -> supervisor.Message:
        await ctx.spawn(module, "main", [ctx.id])
        return await ctx.receive()

    m = await run_python(runtime, test)
    assert isinstance(m, ProcessDied) and m.pid == 4242
