"""Kafka client security from the settings: SCRAM on a real SASL listener, TLS contexts, faust."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from atlas_devstack.kafka import KafkaBroker
from atlas_events.kafka import (
    KafkaProbe,
    client_options,
    ensure_topics,
    faust_credentials,
    make_producer,
)
from atlas_events.registry import REGISTRY, TopicRegistry
from atlas_events.settings import ServiceSettings

pytestmark = pytest.mark.kafka

USER, PASSWORD = "notify", "s3cret-scram-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _sasl_settings(bootstrap: str, password: str = PASSWORD) -> ServiceSettings:
    return ServiceSettings(
        kafka_bootstrap=bootstrap,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=USER,
        kafka_sasl_password=password,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
async def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[KafkaBroker]:
    """A private broker with a SCRAM-SHA-512 listener and one user (the shared one has none)."""
    broker = KafkaBroker(
        tmp_path_factory.mktemp("sasl-kafka"),
        port=_free_port(),
        controller_port=_free_port(),
        sasl_port=_free_port(),
        scram_users={USER: PASSWORD},
        heap="384m",
    )
    await asyncio.to_thread(broker.start)
    try:
        await asyncio.to_thread(broker.wait_ready, 120)
        yield broker
    finally:
        await asyncio.to_thread(broker.stop)


async def test_round_trip_with_the_right_scram_password(sasl_broker: KafkaBroker) -> None:
    settings = _sasl_settings(sasl_broker.sasl_bootstrap)
    options = client_options(settings)
    topic = next(t for t in REGISTRY.topics() if t.name == "notify.commands.v1")
    registry = TopicRegistry([topic])
    created = await ensure_topics(settings.kafka_bootstrap, registry, kafka_options=options)
    assert set(created) == {topic.name, topic.dlq}

    probe = KafkaProbe(settings.kafka_bootstrap, timeout=10, kafka_options=options)
    try:
        await probe.check()
    finally:
        await probe.close()

    value = uuid.uuid4().hex.encode()
    producer = make_producer(
        settings.kafka_bootstrap, client_id="scram-test", kafka_options=options
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic.name, value, key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic.name,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"scram-test-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **options,
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=20)
    finally:
        await consumer.stop()
    assert record.value == value


async def test_a_wrong_password_is_refused(
    sasl_broker: KafkaBroker, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _sasl_settings(sasl_broker.sasl_bootstrap, password="not-the-password")
    options = client_options(settings)
    producer = make_producer(settings.kafka_bootstrap, client_id="scram-bad", kafka_options=options)
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaError):
        await asyncio.wait_for(producer.start(), timeout=30)
    await producer.stop()
    # aiokafka raises a generic "unable to bootstrap"; the broker's reason is in its log.
    assert "SaslAuthenticationFailed" in caplog.text
    assert "invalid credentials" in caplog.text

    probe = KafkaProbe(settings.kafka_bootstrap, timeout=5, kafka_options=options)
    try:
        with pytest.raises((KafkaError, TimeoutError)):
            await probe.check()
    finally:
        await probe.close()


async def test_the_sasl_listener_refuses_a_plaintext_client(sasl_broker: KafkaBroker) -> None:
    """Without the settings a client cannot talk to the SASL listener at all."""
    probe = KafkaProbe(sasl_broker.sasl_bootstrap, timeout=3)
    try:
        with pytest.raises((KafkaError, TimeoutError)):
            await probe.check()
    finally:
        await probe.close()


# ---- the options built from the settings (no broker) --------------------------------------------


def test_plaintext_needs_no_option() -> None:
    assert client_options(ServiceSettings()) == {}
    assert faust_credentials(ServiceSettings()) is None


def test_sasl_without_its_user_refuses_to_start() -> None:
    with pytest.raises(ValidationError, match="kafka_sasl_username and kafka_sasl_password"):
        ServiceSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="notify")


def test_the_password_never_shows_in_the_settings() -> None:
    settings = _sasl_settings("127.0.0.1:1")
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in settings.model_dump_json()


def test_environment_names_match_the_configmaps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables deploy/k8s sets reach the settings (prefix of the service's subclass)."""
    from atlas_notify.config import NotifySettings

    for name, value in {
        "ATLAS_NOTIFY_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "ATLAS_NOTIFY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "ATLAS_NOTIFY_KAFKA_SASL_USERNAME": "notify",
        "ATLAS_NOTIFY_KAFKA_SASL_PASSWORD": PASSWORD,
        "ATLAS_NOTIFY_METRICS_PORT": "9104",
    }.items():
        monkeypatch.setenv(name, value)
    settings = NotifySettings()
    assert client_options(settings) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "notify",
        "sasl_plain_password": PASSWORD,
    }
    assert settings.metrics_port == 9104


def _self_signed_ca(path: Path) -> Path:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cluster-ca test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_sasl_ssl_trusts_the_cluster_ca(tmp_path: Path) -> None:
    cafile = _self_signed_ca(tmp_path / "ca.crt")
    settings = ServiceSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="notify",
        kafka_sasl_password=PASSWORD,  # type: ignore[arg-type]
        kafka_ssl_cafile=cafile,
    )
    options = client_options(settings)
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "cluster-ca test"),),)
    ]
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "notify",
        "sasl_plain_password": PASSWORD,
    }
    credentials = faust_credentials(settings)
    from faust.auth import SASLCredentials
    from faust.types.auth import AuthProtocol, SASLMechanism

    assert isinstance(credentials, SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_SSL
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_512
    assert (credentials.username, credentials.password) == ("notify", PASSWORD)
    assert credentials.ssl_context is not None


def test_ssl_alone_and_a_missing_ca_file(tmp_path: Path) -> None:
    cafile = _self_signed_ca(tmp_path / "ca.crt")
    options = client_options(
        ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=cafile)
    )
    assert set(options) == {"security_protocol", "ssl_context"}
    from faust.auth import SSLCredentials

    ssl_settings = ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=cafile)
    assert isinstance(faust_credentials(ssl_settings), SSLCredentials)
    missing = ServiceSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "none.crt")
    with pytest.raises(FileNotFoundError):
        client_options(missing)
