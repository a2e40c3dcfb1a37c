"""The jar broker: start, readiness, a real produce/consume round trip, clean stop."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from atlas_devstack.kafka import BrokerError, KafkaBroker, _pid_cmdline

pytestmark = pytest.mark.kafka


def _java_processes_for(config: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and str(config) in _pid_cmdline(int(proc.name)):
            pids.append(int(proc.name))
    return pids


async def test_broker_round_trip_and_clean_stop(
    tmp_path: Path,
    free_port: Callable[[], int],
    wait_until_dead: Callable[..., list[int]],
) -> None:
    broker = KafkaBroker(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    started = time.monotonic()
    broker.start()
    try:
        broker.wait_ready(120)
        print(f"broker cold start (format + start + ready): {time.monotonic() - started:.1f} s")
        assert broker.is_running()
        assert (broker.data_dir / "meta.properties").exists()
        assert broker.format() is False  # already formatted: never twice
        assert "Kafka Server started" in broker.log_path.read_text()

        topic = f"roundtrip.{uuid.uuid4().hex[:8]}"
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()

        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all"
        )
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"bonjour", key=b"k1")
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=f"g.{topic}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            message = await consumer.getone()
        finally:
            await consumer.stop()
        assert (message.key, message.value) == (b"k1", b"bonjour")
    finally:
        pid = broker.pid()
        broker.stop()
    assert pid is not None
    assert wait_until_dead([pid], 5) == []
    assert _java_processes_for(broker.config_path) == []
    assert not broker.is_running()
    assert not broker.pid_path.exists()


def test_broker_auto_topic_creation_is_off(tmp_path: Path) -> None:
    config = KafkaBroker(tmp_path).server_properties()
    assert "auto.create.topics.enable=false" in config
    assert "controller.quorum.bootstrap.servers=" in config
    assert "controller.quorum.voters" not in config


def test_wait_ready_reports_a_broker_that_dies(
    tmp_path: Path, free_port: Callable[[], int]
) -> None:
    # A heap too small for the JVM makes the process exit at once.
    broker = KafkaBroker(tmp_path, port=free_port(), controller_port=free_port(), heap="1k")
    broker.start()
    try:
        with pytest.raises(BrokerError, match="exited during start-up") as error:
            broker.wait_ready(60)
        assert "heap" in str(error.value).lower()  # the log tail explains why
    finally:
        broker.stop()


def test_start_refuses_a_busy_port(tmp_path: Path, free_port: Callable[[], int]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        broker = KafkaBroker(tmp_path, port=port, controller_port=free_port())
        with pytest.raises(BrokerError, match="already in use"):
            broker.start()
    assert not broker.is_running()
