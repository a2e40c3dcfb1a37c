"""Periodic tasks: run on schedule, survive a failing run, stop promptly; a worker process's
garbage collector settings."""

from __future__ import annotations

import asyncio
import gc

from atlas_events.service import BATCH_GC_THRESHOLDS, settle_heap
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


def test_a_process_running_workers_collects_less_often_an_api_keeps_the_defaults() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        settle_heap()  # an API process, or a long-lived structure replaced
        assert gc.get_threshold() == (700, 10, 10)
        assert gc.get_freeze_count() > 0  # what lived through start-up is out of the passes
        settle_heap(batch=True)
        assert gc.get_threshold() == BATCH_GC_THRESHOLDS
        assert BATCH_GC_THRESHOLDS[0] > 700
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
