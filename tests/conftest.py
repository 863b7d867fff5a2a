"""Shared fixtures: a runtime per test, and the mock clock."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

import supervisor


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """Virtual time that jumps ahead whenever every task is blocked."""
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
async def runtime() -> AsyncIterator[supervisor.Runtime]:
    """A fresh runtime; every process is shut down when the test ends."""
    async with supervisor.open_runtime() as rt:
        yield rt


WATCHDOG_SECONDS = 120


def _with_watchdog(fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    @functools.wraps(fn)
    async def test(*args: Any, **kwargs: Any) -> None:
        # Under the mock clock a deadlocked test reaches the deadline at once.
        with trio.fail_after(WATCHDOG_SECONDS):
            await fn(*args, **kwargs)

    return test


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fail a test that hangs instead of hanging the suite."""
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            item.obj = _with_watchdog(item.obj)
