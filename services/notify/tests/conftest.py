"""Fixtures of the notify tests: a real SMTP server, fake SMS providers over HTTP, the app."""

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the notify_factories helper module

from notify_factories import (
    FakeSmsProvider,
    NotifyHarness,
    SmtpSink,
    start_notify,
)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """An aiosmtpd SMTP server on loopback that keeps what it receives."""
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
async def sms_pair() -> AsyncIterator[tuple[FakeSmsProvider, FakeSmsProvider]]:
    """Two fake SMS providers, real HTTP servers on loopback."""
    primary, backup = FakeSmsProvider("primary"), FakeSmsProvider("backup")
    await primary.start()
    await backup.start()
    try:
        yield primary, backup
    finally:
        await primary.stop()
        await backup.stop()


@pytest.fixture
def notify_factory(
    tmp_path: Path,
    database_url: Callable[[], str],
    kafka_bootstrap: str,
    smtp_sink: SmtpSink,
) -> Callable[..., "start_notify"]:  # type: ignore[valid-type]
    """`async with notify_factory(**settings) as n:` the app on a fresh PostgreSQL database."""

    def factory(**overrides: object) -> "start_notify":  # type: ignore[valid-type]
        values: dict[str, object] = {"smtp_port": smtp_sink.port, **overrides}
        return start_notify(
            tmp_path=tmp_path,
            database_url=database_url(),
            kafka_bootstrap=kafka_bootstrap,
            **values,
        )

    return factory


@pytest.fixture
async def notify(notify_factory: Callable[..., "start_notify"]) -> AsyncIterator[NotifyHarness]:  # type: ignore[valid-type]
    """The app with default test settings (fast retries, no automatic digest)."""
    async with notify_factory() as harness:
        yield harness
