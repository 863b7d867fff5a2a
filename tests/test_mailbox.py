"""The mailbox's matching rules (HOSTAPI.md 4.5), without a runtime."""

from __future__ import annotations

import pytest
import trio

from hostapi.data import DataMessage, LinkDied, ProcessDied
from supervisor._mailbox import Mailbox


def test_unfiltered_take_returns_the_oldest_message_of_any_kind() -> None:
    box = Mailbox()
    box.push(ProcessDied(3))
    box.push(DataMessage(5))
    assert isinstance(box.take(()), ProcessDied)
    assert isinstance(box.take(()), DataMessage)
    assert box.take(()) is None


def test_filters_match_only_tagged_messages() -> None:
    box = Mailbox()
    box.push(DataMessage(0))
    box.push(ProcessDied(1))
    box.push(LinkDied(0))
    assert box.take((0,)) is None
    box.push(LinkDied(7))
    m = box.take((0, 7))
    assert isinstance(m, LinkDied) and m.tag == 7
    assert len(box) == 3


async def test_a_waiting_receive_gets_matching_arrivals_directly() -> None:
    box = Mailbox()
    got = []

    async def waiter() -> None:
        got.append(await box.wait((4,), None))

    async with trio.open_nursery() as n:
        n.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        box.push(DataMessage(3))
        box.push(DataMessage(4, b"x"))
    assert len(got) == 1 and got[0].tag == 4  # type: ignore[union-attr]
    assert len(box) == 1


async def test_a_timed_out_wait_leaves_no_waiter(autojump_clock: trio.testing.MockClock) -> None:
    box = Mailbox()
    assert await box.wait((1,), 0.5) is None
    box.push(DataMessage(1))
    assert len(box) == 1  # queued, not handed to a stale waiter
    assert await box.wait((), 0) is None


async def test_only_one_receive_waits_at_a_time() -> None:
    box = Mailbox()
    async with trio.open_nursery() as n:
        n.start_soon(box.wait, (), None)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="already waiting"):
            await box.wait((), None)
        n.cancel_scope.cancel()
