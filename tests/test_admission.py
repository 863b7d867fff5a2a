"""Admission control: a spawn past the runtime's capacity fails cleanly."""

from __future__ import annotations

import pytest
import trio

import supervisor
from supervisor import Context, ExitReason
from supervisor._admission import (
    MAPS_PER_PROCESS,
    MappingBudget,
    default_capacity,
    maps_in_use,
    max_map_count,
)

from .guests import data_string, guest, run_python, value_of


def test_default_capacity_comes_from_max_map_count_and_mappings_in_use() -> None:
    limit = max_map_count()
    capacity = default_capacity()
    assert 0 < capacity < limit // MAPS_PER_PROCESS
    # the budget leaves a margin of the limit to everything else
    assert maps_in_use() + capacity * MAPS_PER_PROCESS <= limit - limit // 32


def test_the_budget_caps_processes_and_never_credits_back_before_a_recount() -> None:
    b = MappingBudget(max_processes=2)
    assert b.acquire() and b.acquire() and not b.acquire()
    b.release()
    assert b.acquire()
    assert b.peak == 2
    with pytest.raises(ValueError, match="negative"):
        MappingBudget(-1)


def test_the_budget_recounts_real_mappings_near_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Pretend each admitted process really holds 2 mappings, and that 500 are
    # in use besides: the budget admits more than its 3-per-process estimate
    # alone would, but never lets the real count cross its limit.
    from supervisor import _admission

    budget: list[MappingBudget] = []
    monkeypatch.setattr(
        _admission, "maps_in_use", lambda: 500 + 2 * (budget[0].live if budget else 0)
    )
    limit = 2000
    b = MappingBudget(map_limit=limit)
    budget.append(b)
    usable = limit - (1024 + limit // 32)
    admitted = 0
    while b.acquire():
        admitted += 1
        assert 500 + 2 * b.live <= usable
    assert b.recounts >= 1
    assert admitted > (usable - 500) // MAPS_PER_PROCESS
    assert admitted == (usable - 500 - MAPS_PER_PROCESS) // 2 + 1
    assert "vm.max_map_count allows (2000)" in b.refusal()


SPAWNER = guest(
    data_string(0, b"child")
    + """
  ;; spawn children until a spawn fails; report each code, then the error text
  (func (export "main") (param $to i64)
    (local $code i32) (local $n i32)
    (block $full
      (loop $more
        (local.set $code (call $spawn (i64.const 0) (i64.const -1) (i64.const -1)
                                      (i32.const 0) (i32.const 5) (i32.const 0) (i32.const 0)
                                      (i32.const 1040)))
        (call $report (local.get $to) (i64.const 1) (i64.extend_i32_u (local.get $code)))
        (br_if $full (local.get $code))
        (br $more)))
    (local.set $n (call $error_string_size (i64.load (i32.const 1040))))
    (call $error_to_string (i64.load (i32.const 1040)) (i32.const 100))
    (call $create_data (i64.const 2) (i64.const 0))
    (drop (call $write_data (i32.const 100) (local.get $n)))
    (drop (call $send (local.get $to)))
    (call $sleep_ms (i64.const -1)))
  (func (export "child") (drop (call $recv)))
"""
)


async def test_spawn_past_capacity_returns_an_error_and_everything_carries_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with supervisor.open_runtime(max_processes=5) as rt:
        module = rt.compile_module(SPAWNER)

        async def test(ctx: Context) -> tuple[list[int], bytes]:
            parent = await ctx.spawn(module, "main", [ctx.id])
            codes: list[int] = []
            while not codes or codes[-1] == 0:
                codes.append(value_of(await ctx.receive(1)))
            text = await ctx.receive(2)
            assert parent.alive
            return codes, text.data  # type: ignore[union-attr]

        codes, text = await run_python(rt, test)
        # the parent takes one place, its children the other four
        assert codes == [0, 0, 0, 0, 1]
        assert b"capacity of 5 Wasm processes" in text
        assert rt.budget.live == 5
        # the Python API refuses too, and every process is still alive
        with pytest.raises(supervisor.SpawnError, match="capacity"):
            await rt.spawn(module, "child")
        assert len(rt.processes()) == 5  # 4 children and the parent (the test ended)
        # when a child ends, its place is free again
        child = rt.process(3)
        assert child is not None
        rt.send(child, b"go")
        await child.wait()
        assert rt.budget.live == 4
        h = await rt.spawn(module, "child")
        rt.send(h, b"go")
        assert (await h.wait()).reason is ExitReason.NORMAL
