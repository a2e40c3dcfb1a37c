"""Periodic jobs run as workers beside the consumers (the kit stops them the same way)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from atlas_events.consumer import ConsumerRunner
from atlas_events.service import Runtime

log = structlog.get_logger(__name__)


class PeriodicJob(ConsumerRunner):
    """Runs `job` every `interval` seconds until stopped; reuses the runner's start/stop shape.

    The service kit supervises consumers only, so a job takes a consumer's place in the list.
    """

    def __init__(
        self,
        runtime: Runtime,
        name: str,
        interval: float,
        job: Callable[[], Awaitable[object]],
        *,
        run_at_start: bool = True,
    ) -> None:
        super().__init__(
            name=name,
            topics=[],
            handlers={},
            db=runtime.db,
            tables=runtime.service.tables,
            bootstrap=runtime.settings.kafka_bootstrap,
        )
        self.interval = interval
        self.job = job
        self.run_at_start = run_at_start
        self.runs = 0

    async def run(self) -> None:
        self.started.set()
        if not self.run_at_start and await self._sleep():
            return
        while not self._stopping.is_set():
            try:
                await self.job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("periodic_job_failed", job=self.name, error=repr(exc))
            self.runs += 1
            if await self._sleep():
                return

    async def _sleep(self) -> bool:
        """Wait one interval; True when asked to stop meanwhile."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        self._stopping.set()
