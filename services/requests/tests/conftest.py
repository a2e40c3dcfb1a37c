"""Fixtures of the requests tests: the app on PostgreSQL and the real broker, per test module."""

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the requests_factories helper module

from requests_factories import RequestsApp, started


@pytest.fixture(scope="module")
async def rq(
    postgres_server,  # type: ignore[no-untyped-def]
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RequestsApp]:
    """The requests app for one test module, with its own database and consumed topics."""
    import os
    import secrets

    from atlas_devstack.pytest_plugin import create_topic

    tag = f"{os.getpid()}.{secrets.token_hex(3)}"
    topics = {}
    for name, partitions in (("prestations", 1), ("spaces", 1), ("commands", 3)):
        topic = f"test.requests.{name}.{tag}"
        await create_topic(kafka_bootstrap, topic, partitions)
        await create_topic(kafka_bootstrap, f"{topic}.dlq", partitions)
        topics[name] = topic
    db_name = f"atlas_test_requests_{os.getpid()}_{secrets.token_hex(4)}"
    postgres_server.create_database(db_name)
    key = tmp_path_factory.mktemp("requests-keys") / "jwt.pem"
    try:
        async with started(postgres_server.url(db_name), key, kafka_bootstrap, topics) as app:
            yield app
    finally:
        postgres_server.drop_database(db_name)


Factory = Callable[..., Awaitable[object]]
