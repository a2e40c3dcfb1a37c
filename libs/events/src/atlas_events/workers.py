"""What the service kit supervises beside the API: consumers, periodic tasks, other loops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


class Worker(Protocol):
    """A long-running loop: `run()` until `stop()` asks it to finish what it holds and return."""

    name: str

    async def run(self) -> None: ...

    async def stop(self) -> None: ...


class PeriodicTask:
    """Runs `job` every `interval` seconds until stopped; a failing run is logged, not fatal."""

    def __init__(
        self,
        name: str,
        interval: float,
        job: Callable[[], Awaitable[object]],
        *,
        run_at_start: bool = True,
    ) -> None:
        self.name = name
        self.interval = interval
        self.job = job
        self.run_at_start = run_at_start
        self.runs = 0
        self.started = asyncio.Event()
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        self.started.set()
        if not self.run_at_start and await self._sleep():
            return
        while not self._stopping.is_set():
            try:
                await self.job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or broker may be away; try next time
                log.warning("periodic_task_failed", task=self.name, error=repr(exc))
            self.runs += 1
            if await self._sleep():
                return

    async def stop(self) -> None:
        self._stopping.set()

    async def _sleep(self) -> bool:
        """Wait one interval; True when asked to stop meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)
            return True
        return False
