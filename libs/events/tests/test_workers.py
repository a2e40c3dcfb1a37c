"""Periodic tasks: run on schedule, survive a failing run, stop promptly."""

from __future__ import annotations

import asyncio

from atlas_events.testing import wait_until
from atlas_events.workers import PeriodicTask


async def test_periodic_task_runs_again_after_a_failure_and_stops_promptly() -> None:
    calls: list[int] = []

    async def job() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("database away for a moment")

    task = PeriodicTask("t", interval=0.01, job=job)
    running = asyncio.create_task(task.run())
    await wait_until(lambda: _at_least(calls, 3))
    await task.stop()
    await asyncio.wait_for(running, timeout=1)
    assert task.runs >= 3


async def test_periodic_task_can_wait_one_interval_before_its_first_run() -> None:
    calls: list[int] = []

    async def job() -> None:
        calls.append(1)

    task = PeriodicTask("t", interval=60, job=job, run_at_start=False)
    running = asyncio.create_task(task.run())
    await asyncio.wait_for(task.started.wait(), timeout=1)
    await task.stop()  # long before the first interval ends
    await asyncio.wait_for(running, timeout=1)
    assert calls == []


async def _at_least(items: list[int], n: int) -> bool:
    return len(items) >= n
