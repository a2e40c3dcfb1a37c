"""Pytest fixtures for a real Kafka broker and real PostgreSQL databases, started only on demand.

Loaded for the whole repository with `-p atlas_devstack.pytest_plugin`. Importing it starts
nothing and imports no client library; each fixture chooses, in order: an address given in the
environment, a testcontainers container when a Docker engine answers, else a local server
(the jar broker, Debian's PostgreSQL) under `<repo>/.atlas/test`.

Several pytest sessions may run at once in one tree (xdist workers, people, agents): they share
the local servers through file locks; the first one in sets a server up, the last one out stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import itertools
import os
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

import pytest

KAFKA_ENV = "ATLAS_TEST_KAFKA_BOOTSTRAP"
POSTGRES_ENV = "ATLAS_TEST_POSTGRES_URL"
TEST_KAFKA_PORT = 19092
TEST_KAFKA_CONTROLLER_PORT = 19093
TEST_POSTGRES_PORT = 15432
DATABASE_PREFIX = "atlas_test_"

_KAFKA_FIXTURES = {"kafka_bootstrap", "unique_topic"}
_POSTGRES_FIXTURES = {"postgres_server", "database_url"}


class DatabaseServer(Protocol):
    """What the `postgres_server` fixture gives: a server where tests may create databases."""

    def create_database(self, name: str) -> None: ...

    def drop_database(self, name: str) -> None: ...

    def url(self, dbname: str, driver: str | None = "asyncpg") -> str: ...


def _test_dir() -> Path:
    from atlas_devstack.paths import atlas_dir

    path = atlas_dir() / "test"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def docker_available() -> bool:
    """Return True when a Docker engine answers a ping (checked once per session)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no permission: all mean "no Docker here"
        return False


class SharedServer:
    """Reference-counts users of one local server across processes with two flock files."""

    def __init__(self, lock_path: Path) -> None:
        self.lock_path = lock_path
        self.mutex_path = lock_path.with_name(lock_path.name + ".mutex")
        self._usage: IO[str] | None = None

    @contextlib.contextmanager
    def _mutex(self) -> Iterator[None]:
        # Serialises set-up and tear-down so no session joins a server another is stopping.
        with self.mutex_path.open("a") as mutex:
            fcntl.flock(mutex, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(mutex, fcntl.LOCK_UN)

    def enter(self, first: Callable[[], None], joining: Callable[[], None]) -> None:
        """Run `first` if no other session uses the server, else `joining`; then hold a share."""
        with self._mutex():
            usage = self.lock_path.open("a")
            try:
                fcntl.flock(usage, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alone = True
            except BlockingIOError:
                alone = False
            try:
                if alone:
                    first()
                fcntl.flock(usage, fcntl.LOCK_SH)
                if not alone:
                    joining()
            except BaseException:
                usage.close()
                raise
            self._usage = usage

    def leave(self, last: Callable[[], None]) -> None:
        """Drop this session's share and run `last` if no other session still holds one."""
        usage = self._usage
        if usage is None:
            return
        self._usage = None
        with self._mutex():
            try:
                try:
                    fcntl.flock(usage, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # another session still uses the server
                last()
            finally:
                usage.close()


# ---- Kafka ------------------------------------------------------------------------------------


def _start_container_kafka() -> tuple[str, Callable[[], None]]:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers < 4.10 kept the module at the top level
        from testcontainers.kafka import KafkaContainer

    container = (
        KafkaContainer()
        .with_kraft()
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
        .with_env("KAFKA_NUM_PARTITIONS", "3")
    )
    container.start()
    return str(container.get_bootstrap_server()), container.stop


def _start_jar_kafka() -> tuple[str, Callable[[], None]]:
    from atlas_devstack.kafka import KafkaBroker

    home = _test_dir() / "kafka"
    shared = SharedServer(_test_dir() / "kafka.lock")
    broker = KafkaBroker(home, port=TEST_KAFKA_PORT, controller_port=TEST_KAFKA_CONTROLLER_PORT)

    def first() -> None:
        broker.stop()  # a broker left over by a killed session
        shutil.rmtree(broker.home, ignore_errors=True)
        broker.start()
        broker.wait_ready(120)

    shared.enter(first, joining=lambda: broker.wait_ready(120))
    return broker.bootstrap, lambda: shared.leave(broker.stop)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker for this session (auto topic creation off)."""
    given = os.environ.get(KAFKA_ENV)
    if given:
        yield given
        return
    bootstrap, stop = _start_container_kafka() if docker_available() else _start_jar_kafka()
    try:
        yield bootstrap
    finally:
        stop()


async def create_topic(
    bootstrap: str,
    name: str,
    partitions: int = 3,
    wait_s: float = 30.0,
    configs: dict[str, str] | None = None,
) -> None:
    """Create a topic and wait until every partition has a leader, so clients can use it at once."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(wait_s * 1000))
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    name=name,
                    num_partitions=partitions,
                    replication_factor=1,
                    topic_configs=configs or {},
                )
            ]
        )
        for topic, code, *message in response.topic_errors:
            if code != 0:
                raise RuntimeError(f"creating topic {topic} failed: error {code} {message}")
        deadline = time.monotonic() + wait_s
        while True:
            (described,) = await admin.describe_topics([name])
            leaders = [p["leader"] for p in described["partitions"]]
            if described["error_code"] == 0 and len(leaders) == partitions and min(leaders) >= 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {name} has no leader after {wait_s:.0f} s: {described}")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


_topic_counter = itertools.count(1)


@pytest.fixture
def unique_topic(kafka_bootstrap: str) -> Callable[..., Awaitable[str]]:
    """Factory: `await unique_topic(3)` makes a topic and its `.dlq` (configured as the registry
    configures DLQs), returns its name."""
    from atlas_events.registry import dlq_kafka_config

    async def create(partitions: int = 3, prefix: str = "test") -> str:
        name = f"{prefix}.{os.getpid()}.{next(_topic_counter)}.{secrets.token_hex(3)}"
        await create_topic(kafka_bootstrap, name, partitions)
        await create_topic(kafka_bootstrap, f"{name}.dlq", partitions, configs=dlq_kafka_config())
        return name

    return create


# ---- PostgreSQL -------------------------------------------------------------------------------


def _start_container_postgres() -> tuple[DatabaseServer, Callable[[], None]]:
    from atlas_devstack.postgres import PostgresEndpoint

    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:16-alpine", driver=None)
    container.start()
    endpoint = PostgresEndpoint.from_url(container.get_connection_url())
    return endpoint, container.stop


def _start_local_postgres() -> tuple[DatabaseServer, Callable[[], None]]:
    from atlas_devstack.postgres import PostgresServer

    server = PostgresServer(_test_dir() / "pg", port=TEST_POSTGRES_PORT)
    shared = SharedServer(_test_dir() / "pg.lock")
    # Marks a server the tests started (not one a developer started by hand), so it is stopped.
    started_marker = _test_dir() / "pg.started-by-tests"

    def first() -> None:
        server.ensure_installed()
        server.init()
        if not server.is_running():
            server.start()
            started_marker.touch()
        server.wait_ready()
        # Nobody else uses the server: databases left by killed sessions can go.
        for name in server.endpoint.list_databases(DATABASE_PREFIX):
            server.drop_database(name)

    def last() -> None:
        if started_marker.exists():
            server.stop()
            started_marker.unlink(missing_ok=True)

    shared.enter(first, joining=server.wait_ready)
    return server, lambda: shared.leave(last)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[DatabaseServer]:
    """A PostgreSQL server on which tests create their own databases (see `database_url`)."""
    given = os.environ.get(POSTGRES_ENV)
    if given:
        from atlas_devstack.postgres import PostgresEndpoint

        yield PostgresEndpoint.from_url(given)
        return
    server, stop = _start_container_postgres() if docker_available() else _start_local_postgres()
    try:
        yield server
    finally:
        stop()


@pytest.fixture(scope="session")
def _atlas_test_databases(postgres_server: DatabaseServer) -> Iterator[list[str]]:
    """Names of the databases this session created, dropped when it ends."""
    created: list[str] = []
    yield created
    for name in created:
        with contextlib.suppress(Exception):  # one undroppable database must not hide the others
            postgres_server.drop_database(name)


_database_counter = itertools.count(1)


@pytest.fixture
def database_url(
    postgres_server: DatabaseServer, _atlas_test_databases: list[str]
) -> Callable[[], str]:
    """Factory: `database_url()` creates a fresh empty database, returns its asyncpg URL."""

    def create() -> str:
        name = f"{DATABASE_PREFIX}{os.getpid()}_{next(_database_counter)}_{secrets.token_hex(3)}"
        postgres_server.create_database(name)
        _atlas_test_databases.append(name)
        return postgres_server.url(name)

    return create


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers this plugin applies, for projects that do not declare them."""
    config.addinivalue_line("markers", "kafka: needs the real Kafka broker")
    config.addinivalue_line("markers", "postgres: needs the real PostgreSQL server")
    _route_structlog_through_logging()


def _route_structlog_through_logging() -> None:
    """Send structlog's events through the standard library in test processes.

    Unconfigured, structlog prints to the `sys.stdout` of the moment it was imported, and a test
    process may have closed that file since (an xdist worker's capture): every log call then
    raised `ValueError: I/O operation on closed file` in whatever test came next. Through the
    standard library, pytest captures the records of each test like any other logger's. A test
    that configures logging itself (`configure_logging`) still does.
    """
    try:
        import structlog
    except ImportError:  # a project without structlog
        return
    if not structlog.is_configured():
        structlog.configure(logger_factory=structlog.stdlib.LoggerFactory())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests using the broker or the database so `-m "not kafka"` can deselect them."""
    for item in items:
        names: Any = getattr(item, "fixturenames", ())
        if _KAFKA_FIXTURES.intersection(names):
            item.add_marker(pytest.mark.kafka)
        if _POSTGRES_FIXTURES.intersection(names):
            item.add_marker(pytest.mark.postgres)
