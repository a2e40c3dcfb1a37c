"""Kafka helpers: client security, the idempotent producer, topics from the registry, a probe."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import DefaultPartitioner, murmur2

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

    from atlas_events.registry import TopicRegistry
    from atlas_events.settings import ServiceSettings

log = structlog.get_logger(__name__)

KafkaOptions = Mapping[str, Any]
"""Keyword arguments every aiokafka client of a service gets: see `client_options`."""


def client_options(settings: ServiceSettings) -> dict[str, Any]:
    """The aiokafka keyword arguments (protocol, SASL user, TLS context) the settings ask for.

    Empty for PLAINTEXT, so local brokers need nothing; pass the result as `kafka_options` to the
    kit's producers, consumers, admin clients and probe, or `**` it into a plain aiokafka client.
    """
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        cafile = settings.kafka_ssl_cafile
        options["ssl_context"] = create_ssl_context(cafile=str(cafile) if cafile else None)
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def faust_credentials(settings: ServiceSettings) -> CredentialsT | None:
    """The same security for a faust app: its `broker_credentials` (None for PLAINTEXT)."""
    from faust.auth import SASLCredentials, SSLCredentials

    options = client_options(settings)
    protocol = options.get("security_protocol")
    if protocol is None:
        return None
    if protocol == "SSL":
        return SSLCredentials(options["ssl_context"])
    return SASLCredentials(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        ssl_context=options.get("ssl_context"),
        mechanism=options["sasl_mechanism"],
    )


class KeyPartitioner:
    """Kafka's default partitioner (murmur2 of the key, as the Java client), remembered per key.

    aiokafka computes murmur2 in pure Python for every record; a relay sends several events
    under the same key in a row (a dossier's events, a case's commands), so the last keys'
    partitions are kept. Records without a key go to a random available partition, as before.
    """

    def __init__(self, size: int = 65536) -> None:
        self._default = DefaultPartitioner()
        self._size = size
        self._known: dict[tuple[bytes, int], int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(self._default(key, all_partitions, available))
        slot = (key, len(all_partitions))
        index = self._known.get(slot)
        if index is None:
            if len(self._known) >= self._size:
                self._known.clear()
            index = (murmur2(key) & 0x7FFFFFFF) % len(all_partitions)
            self._known[slot] = index
        return all_partitions[index]


async def send_in_batches(
    producer: AIOKafkaProducer,
    records: Sequence[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]],
    partitioner: KeyPartitioner,
) -> list[asyncio.Future[Any]]:
    """Queue (topic, key, value, headers) records as record batches built here, one run per
    partition, and return the futures of their acknowledgements.

    The records of one partition keep their order (the batches of a partition are queued one
    after the other), as they would through `send`, which costs several times more per record:
    a coroutine, two partition lists, a future and a lookup each. A key goes to the partition
    the Java client would choose (murmur2, `KeyPartitioner`); no key, any partition.
    """
    runs: dict[tuple[str, int], list[int]] = {}
    partitions: dict[str, list[int]] = {}
    for i, (topic, key, _, _) in enumerate(records):
        known = partitions.get(topic)
        if known is None:
            known = partitions[topic] = sorted(await producer.partitions_for(topic))
        runs.setdefault((topic, partitioner(key, known, known)), []).append(i)
    acks: list[asyncio.Future[Any]] = []
    for (topic, partition), indexes in runs.items():
        batch = producer.create_batch()
        for i in indexes:
            _, key, value, headers = records[i]
            if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
                batch.close()  # full: it leaves now, the record starts the next one
                acks.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
                    raise ValueError(f"a record for {topic} is larger than a producer batch")
        batch.close()
        acks.append(await producer.send_batch(batch, topic, partition=partition))
    return acks


def make_producer(
    bootstrap: str,
    *,
    client_id: str,
    linger_ms: int = 5,
    max_batch_size: int = 16384,
    max_request_size: int = 1048576,
    kafka_options: KafkaOptions | None = None,
) -> AIOKafkaProducer:
    """An idempotent producer acked by all in-sync replicas (aiokafka defaults to neither).

    `max_request_size` bounds one message too: aiokafka refuses a larger one before sending.
    """
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=max_batch_size,
        max_request_size=max_request_size,
        request_timeout_ms=15000,
        partitioner=KeyPartitioner(),
        **(kafka_options or {}),
    )


async def started(producer: AIOKafkaProducer) -> AIOKafkaProducer:
    """The producer, started; one that cannot start (no broker yet) is released, and the error
    raised for the caller to retry."""
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer


async def ensure_topics(
    bootstrap: str,
    registry: TopicRegistry | None = None,
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
    kafka_options: KafkaOptions | None = None,
) -> list[str]:
    """Create every registry topic (and its DLQ) that does not exist yet; return those created."""
    if registry is None:
        from atlas_events.registry import REGISTRY

        registry = REGISTRY
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout * 1000),
        **(kafka_options or {}),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=name,
                num_partitions=partitions,
                replication_factor=replication_factor,
                topic_configs=configs,
            )
            for name, partitions, configs in registry.kafka_topics()
            if name not in existing
        ]
        if wanted:
            # Another process may have created them first; that is the state we wanted.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
        created = [t.name for t in wanted]
        if created:
            await _wait_until_served(admin, created, timeout)
            log.info("kafka_topics_created", topics=created)
        return created
    finally:
        await admin.close()


async def _wait_until_served(admin: AIOKafkaAdminClient, topics: list[str], timeout: float) -> None:
    """Wait until the metadata shows each new topic with a leader for every partition.

    A consumer group formed before that ignores the topics it cannot see yet ("Ignoring missing
    topic") and leaves their partitions unassigned until its next metadata refresh (minutes).
    """
    deadline = time.monotonic() + timeout
    while True:
        described = await admin.describe_topics(topics)
        served = len(described) == len(topics) and all(
            t["error_code"] == 0
            and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        )
        if served:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not served by the brokers after {timeout} s: {topics}")
        await asyncio.sleep(0.05)


class KafkaProbe:
    """A long-lived admin client answering `/readyz` with a real metadata request."""

    def __init__(
        self, bootstrap: str, *, timeout: float = 2.0, kafka_options: KafkaOptions | None = None
    ) -> None:
        self._bootstrap = bootstrap
        self._timeout = timeout
        self._options = dict(kafka_options or {})
        self._admin: AIOKafkaAdminClient | None = None

    async def check(self) -> None:
        """Raise if the cluster does not answer a metadata request within the timeout."""
        async with asyncio.timeout(self._timeout):
            if self._admin is None:
                admin = AIOKafkaAdminClient(
                    bootstrap_servers=self._bootstrap,
                    request_timeout_ms=int(self._timeout * 1000),
                    **self._options,
                )
                try:
                    await admin.start()
                except BaseException:
                    await admin.close()
                    raise
                self._admin = admin
            await self._admin.describe_cluster()

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
