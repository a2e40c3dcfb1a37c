"""Notify: e-mails per second to a local SMTP server through the service, against raw smtplib.

The service runs in-process on PostgreSQL with its workers (dispatcher, outbox relay), e-mails
going through its pool of stdlib smtplib connections (one thread per pooled connection) to an
aiosmtpd server on loopback. Two service figures: end to end (POST /v1/notifications → rendered,
stored, state events in the outbox → dispatched → accepted by SMTP), and dispatch alone
(notifications created ahead with a common `send_at`, timed from that instant). The baselines
send the very same messages with raw smtplib in the same run: one connection sequentially, and
as many threads and connections as the service's pool.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import smtplib
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from bench.common import Result

POOL_SIZE = 8
BENCH_PG_PORT = 25433


class CountingHandler:
    """An SMTP server that only counts what it accepts (its own cost is in every figure)."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh database on ATLAS_TEST_POSTGRES_URL's server, else on a local bench server."""
    from atlas_devstack.postgres import PostgresEndpoint, PostgresServer

    given = os.environ.get("ATLAS_TEST_POSTGRES_URL")
    server: PostgresServer | None = None
    started = False
    if given:
        endpoint = PostgresEndpoint.from_url(given)
    else:
        from atlas_devstack.paths import atlas_dir

        server = PostgresServer(atlas_dir() / "bench" / "pg-notify", port=BENCH_PG_PORT)
        server.ensure_installed()
        server.init()
        started = not server.is_running()
        if started:
            server.start()
        server.wait_ready()
        endpoint = server.endpoint
    name = f"atlas_bench_notify_{secrets.token_hex(4)}"
    endpoint.create_database(name)
    try:
        yield endpoint.url(name)
    finally:
        endpoint.drop_database(name)
        if server is not None and started:
            server.stop()


async def wait_count(handler: CountingHandler, target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while handler.count < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"SMTP server got {handler.count} of {target} messages")
        await asyncio.sleep(0.005)


def raw_messages(n: int, offset: int) -> list[EmailMessage]:
    """What the service sends: the generic template's text, one address per agent."""
    from atlas_notify.channels.email import build_message

    return [
        build_message(
            sender="ATLAS <ne-pas-repondre@atlas.defense.gouv.fr>",
            to=f"agent{offset + i}@bench.example.fr",
            subject="Information",
            body=f"Bonjour,\n\nMessage {i}.\n\n-- \nVotre espace ATLAS",
            delivery_id=f"raw-{offset + i}",
        )
        for i in range(n)
    ]


def raw_sequential(port: int, messages: list[EmailMessage]) -> float:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as conn:
        for message in messages:
            conn.send_message(message)
    return len(messages) / (time.perf_counter() - started)


def raw_parallel(port: int, messages: list[EmailMessage], threads: int) -> float:
    chunks = [messages[i::threads] for i in range(threads)]

    def send(chunk: list[EmailMessage]) -> None:
        with smtplib.SMTP("127.0.0.1", port) as conn:
            for message in chunk:
                conn.send_message(message)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, chunks))
    return len(messages) / (time.perf_counter() - started)


async def run(quick: bool) -> list[Result]:
    from atlas_events.auth import LocalSigningKey, Role
    from atlas_notify.app import create
    from atlas_notify.config import NotifySettings

    n = 300 if quick else 3000
    handler = CountingHandler()
    smtp_port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    kafka = os.environ.get("ATLAS_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    try:
        async with postgres_database() as url:
            settings = NotifySettings(
                database_url=url,
                kafka_bootstrap=kafka,  # the relay is off the e-mail path; it catches up later
                auth_local_key_path=tmp / "jwt.pem",
                smtp_port=smtp_port,
                smtp_pool_size=POOL_SIZE,
                dispatch_poll_seconds=0.05,
                digest_auto=False,
                staff_directory_path=None,
                quiet_hours_start="00:00",
                quiet_hours_end="00:00",
                log_level="ERROR",
                log_json=False,
                topic_prefix=f"bench{secrets.token_hex(3)}.",
            )
            app = create(settings)
            token = LocalSigningKey.load_or_create(tmp / "jwt.pem").issue("ops-bench", [Role.OPS])
            headers = {"Authorization": f"Bearer {token}"}
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://notify", headers=headers
                ) as client:
                    for i in range(2 * n):  # the directory: one e-mail address per agent
                        agent = f"{3000000000 + i}"
                        await client.put(
                            f"/v1/contacts/{agent}", json={"email": f"agent{i}@bench.example.fr"}
                        )

                    async def post(i: int, send_at: str | None = None) -> None:
                        body: dict[str, Any] = {
                            "recipient": {"kind": "agent", "id": f"{3000000000 + i}"},
                            "template": "generic.message",
                            "params": {"titre": "Information", "message": f"Message {i}."},
                            "channels": ["email"],
                        }
                        if send_at:
                            body["send_at"] = send_at
                        r = await client.post(
                            "/v1/notifications", json=body, headers={"Idempotency-Key": f"b{i}"}
                        )
                        r.raise_for_status()

                    async def post_all(indexes: range, send_at: str | None = None) -> None:
                        queue = iter(indexes)

                        async def worker() -> None:
                            for i in queue:
                                await post(i, send_at)

                        await asyncio.gather(*(worker() for _ in range(16)))

                    # End to end: accepted by the API, then dispatched, until SMTP has them all.
                    started = time.perf_counter()
                    await post_all(range(n))
                    accepted = n / (time.perf_counter() - started)
                    await wait_count(handler, n, timeout=600)
                    end_to_end = n / (time.perf_counter() - started)

                    # Dispatch alone: created ahead, all due at one instant.
                    lead = 2.0 + 2 * n / accepted
                    due = datetime.now(UTC) + timedelta(seconds=lead)
                    await post_all(range(n, 2 * n), due.isoformat())
                    if datetime.now(UTC) >= due:
                        raise RuntimeError("creating the scheduled batch took longer than its lead")
                    await wait_count(handler, 2 * n, timeout=600)
                    dispatch = n / (datetime.now(UTC) - due).total_seconds()

            messages = raw_messages(n, 0)
            before = handler.count
            sequential = await asyncio.to_thread(raw_sequential, smtp_port, messages)
            parallel = await asyncio.to_thread(raw_parallel, smtp_port, messages, POOL_SIZE)
            assert handler.count == before + 2 * n
    finally:
        controller.stop()

    print(
        f"notify: {n} e-mails; API accepted {accepted:,.0f}/s; service end-to-end"
        f" {end_to_end:,.0f}/s, dispatch {dispatch:,.0f}/s;"
        f" raw smtplib 1 connection {sequential:,.0f}/s, {POOL_SIZE} connections"
        f" {parallel:,.0f}/s; ratio dispatch/raw-pool {dispatch / parallel:.2f},"
        f" end-to-end/raw-sequential {end_to_end / sequential:.2f}"
    )
    return [
        Result(
            "notify", "emails/s end to end (API → SMTP)", end_to_end, "emails/s",
            "raw smtplib, 1 connection", sequential,
        ),
        Result("notify", "notifications/s accepted by the API", accepted, "req/s"),
        Result(
            "notify", "emails/s dispatch (due → SMTP)", dispatch, "emails/s",
            f"raw smtplib, {POOL_SIZE} connections", parallel,
        ),
    ]  # fmt: skip
