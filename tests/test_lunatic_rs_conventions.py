"""C guests that follow lunatic-rs 0.14.1's conventions to the byte run on lunatrio.

``tests/lunatic_rs/lunatic_rs.h`` renders the guest side of lunatic-rs in C:
the same host calls, in the same order, with the same tags and bytes
(HOSTAPI.md section 5). Two guests are built with it:

* ``suite.c``, a test build: ``lunatrio test`` runs it, and every result line,
  the summary, the exit status and the captured output of failures are
  checked here;
* ``payloads.c``, entry points that exchange messages with a Python process,
  which checks their bytes and tags against HOSTAPI.md Appendix B.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest
import trio
import trio.testing

import supervisor
from hostapi.data import DataMessage, Message
from hostapi.signatures import APPENDIX_A, FuncSig, ValType
from hostapi.wasmbin import read_module_info
from supervisor import Context
from supervisor._wasm import WasmProcess

from .guests import param_i32, result_lines, run_python
from .lunatic_rs.build import build

I32, I64 = ValType.I32, ValType.I64
TRAMPOLINE = "_lunatic_spawn_by_index_0.14.1"


@pytest.fixture(scope="session")
def guests() -> dict[str, pathlib.Path]:
    """suite.wasm and payloads.wasm, built once per session."""
    return {name: build(name) for name in ("suite", "payloads")}


# -- the test build under `lunatrio test` ------------------------------------------

EXPECTED = {
    "spawn::the_capture_is_the_childs_first_message": "ok",
    "spawn::a_zero_sized_capture_is_not_sent": "ok",
    "spawn::the_trampoline_calls_the_wrapper_with_the_entry_index": "ok",
    "links::a_caught_link_death_carries_the_spawn_link_tag": "ok",
    "links::a_normal_exit_produces_no_link_died": "ok",
    "links::a_killed_child_counts_as_a_failure": "ok",
    "abstract_process::request_reply_round_trip_and_tag_arithmetic": "ok",
    "abstract_process::a_request_is_tagged_and_encoded_as_b4": "ok",
    "abstract_process::untagged_messages_and_late_replies_are_ignored": "ok",
    "abstract_process::shutdown_replies_with_zero_bytes_and_exits_normally": "ok",
    "abstract_process::a_panicking_init_is_reported_as_init_panicked": "ok",
    "abstract_process::a_custom_init_error_is_returned_to_the_parent": "ok",
    "abstract_process::start_as_twice_reports_name_already_registered": "ok",
    "supervisor::one_for_one_restarts_the_failed_child": "ok",
    "supervisor::a_restarted_named_child_is_found_under_its_name": "ok",
    "supervisor::one_for_all_restarts_every_child": "ok",
    "supervisor::shutdown_answers_subscribers_and_stops_the_children": "ok",
    "catch_panic::a_panicking_closure_returns_err_and_the_process_continues": "ok",
    "catch_panic::a_returning_closure_gives_its_value": "ok",
    "catch_panic::a_link_death_inside_the_closure_is_not_caught - should panic": "ok",
    "timers::send_after_delivers_in_deadline_order": "ok",
    "timers::a_cancelled_timer_never_delivers": "ok",
    "registry::put_get_and_remove_with_typed_keys": "ok",
    "registry::get_or_spawn_returns_2_for_an_existing_name": "ok",
    "serializer::a_tuple_is_laid_out_as_b2": "ok",
    "serializer::one_byte_reads_decode_the_same_value": "ok",
    "prefixes::an_ignored_test_is_not_run": "ignored",
    "prefixes::should_panic_matches_the_pre_1_73_format - should panic": "ok",
    "prefixes::should_panic_matches_the_1_73_format - should panic": "ok",
    "prefixes::an_escaped_hash_in_the_expected_text - should panic": "ok",
    "prefixes::an_empty_expected_text_accepts_a_kill_by_a_linked_child - should panic": "ok",
    "expected_failures::prints_to_stdout_then_fails": "FAILED",
    "expected_failures::should_panic_but_returns - should panic": "FAILED",
    "expected_failures::panics_with_another_message - should panic": "FAILED",
    "expected_failures::a_childs_panic_text_does_not_count - should panic": "FAILED",
    "expected_failures::killed_by_a_linked_child": "FAILED",
}
PASSED = sum(s == "ok" for s in EXPECTED.values())
FAILED = sum(s == "FAILED" for s in EXPECTED.values())
IGNORED = sum(s == "ignored" for s in EXPECTED.values())


def section(text: str, name: str) -> str:
    """A failed test's captured output, as the failures section shows it."""
    return text.split(f"\n---- {name} stdout ----\n")[1].split("\n\n")[0]


@pytest.fixture(scope="session", params=["concurrently", "one_at_a_time"])
def suite_run(
    request: pytest.FixtureRequest, guests: dict[str, pathlib.Path]
) -> subprocess.CompletedProcess[str]:
    """`lunatrio test suite.wasm`, with every test at once (lunatic's way) and
    with --test-threads 1. A hang fails one test after 30 s, not the run."""
    extra = ["--test-threads", "1"] if request.param == "one_at_a_time" else []
    command = [sys.executable, "-m", "supervisor", "test", str(guests["suite"])]
    return subprocess.run(
        [*command, "--timeout", "30", *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_test_of_the_build_reports_its_expected_result(
    suite_run: subprocess.CompletedProcess[str],
) -> None:
    assert result_lines(suite_run.stdout) == EXPECTED, suite_run.stdout


def test_the_summary_counts_every_test_and_the_status_is_1_because_of_expected_failures(
    suite_run: subprocess.CompletedProcess[str],
) -> None:
    out = suite_run.stdout
    assert suite_run.returncode == 1, out + suite_run.stderr
    assert out.startswith(f"\nrunning {len(EXPECTED)} tests\n")
    assert re.search(
        rf"^test result: FAILED\. {PASSED} passed; {FAILED} failed; {IGNORED} ignored; "
        r"0 measured; 0 filtered out; finished in \d+\.\d\ds$",
        out,
        re.MULTILINE,
    )
    listed = out.split("\nfailures:\n")[-1]
    assert sorted(re.findall(r"^    (\S+)$", listed, re.MULTILINE)) == sorted(
        name.split(" ")[0] for name, status in EXPECTED.items() if status == "FAILED"
    )
    assert "Traceback" not in suite_run.stderr


def test_a_failing_tests_own_output_and_panic_are_shown(
    suite_run: subprocess.CompletedProcess[str],
) -> None:
    shown = section(suite_run.stdout, "expected_failures::prints_to_stdout_then_fails")
    # stdout and stderr share one capture stream: the printed line, then the
    # assertion's panic in the pre-1.73 format, then the backtrace note
    lines = shown.splitlines()
    assert lines[:3] == [
        "this line was printed by expected_failures::prints_to_stdout_then_fails",
        "thread '<unnamed>' panicked at 'assertion failed: `(left == right)`",
        "  left: `2`,",
    ]
    assert re.fullmatch(r" right: `3`: 1 \+ 1 == 3', suite\.c:\d+:\d+", lines[3])
    assert lines[4].startswith("note: run with `RUST_BACKTRACE=1`")
    # a test's group holds its children's streams, and only theirs
    killed = section(suite_run.stdout, "expected_failures::killed_by_a_linked_child")
    assert "panicked at 'a child panics on purpose'" in killed
    other = section(suite_run.stdout, "expected_failures::a_childs_panic_text_does_not_count")
    assert "a child panics on purpose" not in other
    # passing tests' output (a caught panic, say) is not shown
    assert "the closure panics" not in suite_run.stdout


def test_should_panic_failures_say_why(suite_run: subprocess.CompletedProcess[str]) -> None:
    out = suite_run.stdout
    assert section(out, "expected_failures::should_panic_but_returns") == (
        "note: test did not panic as expected"
    )
    wrong = section(out, "expected_failures::panics_with_another_message")
    assert "thread '<unnamed>' panicked at 'boom', suite.c:" in wrong
    assert wrong.endswith(
        'note: panic did not contain expected string\n      panic message: `"boom"`,\n'
        ' expected substring: `"bang"`'
    )
    # a child's panic is in another stream of the test's capture group: only
    # the test's own stream is searched
    child = section(out, "expected_failures::a_childs_panic_text_does_not_count")
    assert child.startswith(" --- process 1 stdout ---\n")
    assert "panicked at 'child text'" in child
    assert "note: expected a panic containing `child text`, but the test process printed none" in (
        child
    )
    killed = section(out, "expected_failures::killed_by_a_linked_child")
    assert "note: the test process ended with failure: linked process 2 exited" in killed


def test_test_exports_carry_the_ignore_and_panic_prefixes_with_escaped_hashes(
    guests: dict[str, pathlib.Path],
) -> None:
    exports = read_module_info(guests["suite"].read_bytes()).functions
    for name in [
        "#lunatic_test_spawn::the_capture_is_the_childs_first_message",
        "#lunatic_test_#ignore_prefixes::an_ignored_test_is_not_run",
        "#lunatic_test_#panic_boom#prefixes::should_panic_matches_the_pre_1_73_format",
        "#lunatic_test_#panic_kaboom#prefixes::should_panic_matches_the_1_73_format",
        "#lunatic_test_#panic_a \\# b#prefixes::an_escaped_hash_in_the_expected_text",
        "#lunatic_test_#panic_#prefixes::an_empty_expected_text_accepts_a_kill_by_a_linked_child",
    ]:
        assert exports[name] == FuncSig((), ())
    assert sum(name.startswith("#lunatic_test_") for name in exports) == len(EXPECTED)


@pytest.mark.parametrize("name", ["suite", "payloads"])
def test_guests_import_appendix_a_functions_and_export_what_lunatic_rs_modules_do(
    guests: dict[str, pathlib.Path], name: str
) -> None:
    info = read_module_info(guests[name].read_bytes())
    lunatic = [imp for imp in info.imports if imp[0].startswith("lunatic::")]
    assert lunatic and all(imp in APPENDIX_A for imp in lunatic)
    assert {imp[0] for imp in info.imports} - {ns for ns, _ in lunatic} == {
        "wasi_snapshot_preview1"
    }
    assert info.functions[TRAMPOLINE] == FuncSig((I32, I32), ())
    assert info.functions["_lunatic_catch_trap"] == FuncSig((I32, I32), (I32,))
    assert info.functions["lunatic_alloc"] == FuncSig((I32,), (I32,))
    assert info.functions["_start"] == FuncSig((), ())


# -- Appendix B with a Python peer ------------------------------------------------------


def data(message: Message) -> bytes:
    assert isinstance(message, DataMessage), message
    return message.data


def le(value: int, size: int = 8) -> bytes:
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


async def test_b1_a_spawn_passes_the_trampoline_and_two_table_indices(
    runtime: supervisor.Runtime, guests: dict[str, pathlib.Path]
) -> None:
    module = runtime.load_module(guests["payloads"])

    async def peer(ctx: Context) -> None:
        parent = await ctx.spawn(module, "b1_parent", [ctx.id])
        passed = data(await ctx.receive(1))
        child_id = int.from_bytes(data(await ctx.receive(4)), "little")
        called = data(await ctx.receive(2))
        entry_index = int.from_bytes(data(await ctx.receive(3)), "little")

        name, params = passed[:30], passed[30:]
        assert name == TRAMPOLINE.encode()
        f = int.from_bytes(called[:4], "little", signed=True)
        a = int.from_bytes(called[4:], "little", signed=True)
        # 0x7F + the i32 sign-extended to 16 bytes, twice: (wrapper, entry)
        assert params == param_i32(f) + param_i32(a)
        assert len(params) == 34 and params[0] == params[17] == 0x7F
        assert a == entry_index and 0 < f != a
        # the host saw the same: an unlinked child entering the trampoline
        handle = runtime.process(child_id)
        assert handle is not None and handle.info()["links"] == {}
        proc = handle._proc
        assert isinstance(proc, WasmProcess)
        assert (proc.entry, list(proc.params)) == (TRAMPOLINE, [(I32, f), (I32, a)])
        ctx.send(child_id, b"done")
        assert (await handle.wait()).normal
        assert (await parent.wait()).normal

    await run_python(runtime, peer)


async def test_b2_a_tuple_is_three_writes_of_bincode_and_decodes_back(
    runtime: supervisor.Runtime, guests: dict[str, pathlib.Path]
) -> None:
    module = runtime.load_module(guests["payloads"])
    hi = b"\x07\x00\x00\x00" + b"\x02" + b"\x00" * 7 + b"hi"

    async def peer(ctx: Context) -> None:
        await ctx.spawn(module, "b2_send", [ctx.id])
        m = await ctx.receive()
        assert isinstance(m, DataMessage)
        assert (m.tag, m.data) == (0, hi)
        echo = await ctx.spawn(module, "b2_echo", [ctx.id])
        text = "héllo".encode()
        ctx.send(echo.id, le(-5, 4) + le(len(text)) + text)
        assert data(await ctx.receive(1)) == le(-10, 4) + le(len(text)) + text

    await run_python(runtime, peer)


async def test_b4_requests_are_tagged_h_shl_56_or_u_and_wait_only_for_u(
    runtime: supervisor.Runtime,
    guests: dict[str, pathlib.Path],
    autojump_clock: trio.testing.MockClock,
) -> None:
    module = runtime.load_module(guests["payloads"])

    async def server(ctx: Context) -> None:
        client = await ctx.spawn(module, "b4_client", [ctx.id, ctx.id])
        return_address = le(0) + le(client.id)  # RequestMessage(Count (0 bytes), (node, id))

        # Tag::new() of a fresh process: 129, 130, 131
        request = await ctx.receive()
        assert isinstance(request, DataMessage)
        assert (request.tag, request.data) == ((2 << 56) | 129, return_address)
        assert request.tag == 0x0200_0000_0000_0081
        ctx.send(client.id, le(42, 4), tag=129)
        assert data(await ctx.receive(1)) == le(0, 4) + le(42, 4)

        request = await ctx.receive()
        assert isinstance(request, DataMessage)
        assert (request.tag, request.data) == ((2 << 56) | 130, return_address)
        assert data(await ctx.receive(1)) == le(9027, 4) + le(0, 4)  # after 50 ms
        ctx.send(client.id, le(7, 4), tag=130)  # the late reply is never taken

        request = await ctx.receive()
        assert isinstance(request, DataMessage)
        assert (request.tag, request.data) == ((2 << 56) | 131, return_address)
        ctx.send(client.id, le(99, 4), tag=131)
        assert data(await ctx.receive(1)) == le(0, 4) + le(99, 4)
        assert (await client.wait()).normal

    await run_python(runtime, server)


async def test_b4_an_abstract_process_replies_with_the_low_7_bytes_and_ignores_h0(
    runtime: supervisor.Runtime, guests: dict[str, pathlib.Path]
) -> None:
    module = runtime.load_module(guests["payloads"])

    async def client(ctx: Context) -> None:
        host = await ctx.spawn(module, "b4_counter", [ctx.id])
        counter_id = int.from_bytes(data(await ctx.receive(1)), "little")
        counter = runtime.process(counter_id)
        assert counter is not None
        me = le(0) + le(ctx.id)
        ctx.send(counter_id, b"junk")  # untagged: h == 0
        ctx.send(counter_id, le(7, 4), tag=4242)  # a late reply: h == 0
        ctx.send(counter_id, b"", tag=(1 << 56) | 900)  # Message<Inc>
        ctx.send(counter_id, me, tag=(2 << 56) | 901)  # Request<Count>
        reply = await ctx.receive(901)
        assert isinstance(reply, DataMessage)
        assert reply.data == le(6, 4)
        ctx.send(counter_id, me, tag=(32 << 56) | 902)  # shutdown
        assert data(await ctx.receive(902)) == b""  # `()`
        assert (await counter.wait()).normal
        ctx.send(host.id, b"stop")
        assert (await host.wait()).normal

    await run_python(runtime, client)


@pytest.mark.parametrize(
    ("linked", "arg", "init_tag", "reply"),
    [
        # T::link().start(5): the link tag is 129, the init tag 130; Ok(())
        (1, 5, 130, b"\x00\x00\x00\x00"),
        # T::start(13), whose init panics: Err(InitPanicked)
        (0, 13, 129, b"\x01\x00\x00\x00\x00\x00\x00\x00"),
    ],
)
async def test_b5_a_start_captures_parent_and_init_tag_and_the_reply_uses_that_tag(
    runtime: supervisor.Runtime,
    guests: dict[str, pathlib.Path],
    linked: int,
    arg: int,
    init_tag: int,
    reply: bytes,
) -> None:
    module = runtime.load_module(guests["payloads"])

    async def peer(ctx: Context) -> None:
        parent = await ctx.spawn(module, "b5_start", [ctx.id, linked, arg])
        capture = data(await ctx.receive(2))
        report = data(await ctx.receive(1))
        # the capture message is untagged: (parent node, parent id, init tag, arg), 28 bytes
        assert capture[:8] == le(0)
        assert capture[8:] == le(0) + le(parent.id) + le(init_tag) + le(arg, 4)
        assert report == le(init_tag) + le(init_tag) + reply
        assert (await parent.wait()).normal

    await run_python(runtime, peer)
