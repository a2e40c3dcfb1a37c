"""One trace follows an HR event over HTTP and Kafka through mobility, requests and notify.

The three services run in this process (API and workers, as in local mode) so that one tracer
provider, tapped by `atlas_events.tracing.capture_spans`, sees every span; each service keeps its
own PostgreSQL database and the topics sit behind a prefix of this run.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan

from atlas_events.auth import LocalSigningKey, Role
from atlas_events.cloudevents import CloudEvent, to_structured
from atlas_events.kafka import ensure_topics
from atlas_events.registry import REGISTRY, TopicRegistry
from atlas_events.schemas import hr
from atlas_events.service import Runtime
from atlas_events.testing import wait_until
from atlas_events.tracing import capture_spans

pytestmark = pytest.mark.kafka

HR_SOURCE = "urn:atlas:rh:sirh-terre"


def _mutation(mutation_id: str, agent_id: str) -> CloudEvent:
    report = date.today() + timedelta(days=200)
    example = hr.CONTRACT_EXAMPLE
    data: dict[str, Any] = {
        **example,
        "mutation_id": mutation_id,
        "agent": {**example["agent"], "agent_id": agent_id},
        "report_date": report.isoformat(),
        "household": {"partner": True, "children": []},
        "needs": {"housing": True, "move": True},
    }
    return CloudEvent.create(hr.MUTATION_ANNOUNCED, HR_SOURCE, data)


@asynccontextmanager
async def _serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def _consumers_started(runtime: Runtime) -> bool:
    return bool(runtime.consumers) and all(
        c.started.is_set() for c in runtime.consumers if hasattr(c, "started")
    )


@pytest.fixture
def log_lines() -> AsyncIterator[io.StringIO]:  # type: ignore[misc]
    """Every log record rendered as the services render it (structlog JSON), kept in memory."""
    buffer = io.StringIO()
    root = logging.getLogger()
    handler = logging.StreamHandler(buffer)
    added = False

    def attach() -> None:
        nonlocal added
        # The services' renderer is the formatter of the handler configure_logging installed.
        (rendering,) = [
            h.formatter
            for h in root.handlers
            if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)
        ]
        handler.setFormatter(rendering)
        root.addHandler(handler)
        added = True

    buffer.attach = attach  # type: ignore[attr-defined]
    yield buffer  # type: ignore[misc]
    if added:
        root.removeHandler(handler)


async def test_one_trace_from_the_hr_post_to_the_notification(
    tmp_path: Path,
    kafka_bootstrap: str,
    database_url: Callable[[], str],
    log_lines: io.StringIO,
) -> None:
    from atlas_mobility.app import create as create_mobility
    from atlas_mobility.config import MobilitySettings
    from atlas_notify.app import create as create_notify
    from atlas_notify.config import NotifySettings
    from atlas_requests.app import create as create_requests
    from atlas_requests.config import RequestsSettings

    prefix = f"tr{uuid.uuid4().hex[:8]}."
    await ensure_topics(
        kafka_bootstrap,
        TopicRegistry(
            [type(t)(**{**t.__dict__, "name": prefix + t.name}) for t in REGISTRY.topics()]
        ),
    )
    key_path = tmp_path / "jwt.pem"
    key = LocalSigningKey.load_or_create(key_path)
    common: dict[str, Any] = {
        "kafka_bootstrap": kafka_bootstrap,
        "auth_local_key_path": key_path,
        "run_workers": True,
        "relay_poll_seconds": 0.2,
        "log_json": True,
        "log_level": "INFO",
    }
    mobility = create_mobility(
        MobilitySettings(
            database_url=database_url(),
            topic_prefix=prefix,
            stream_data_dir=tmp_path / "stream",
            stream_batch_within=0.02,
            stream_session_timeout=6.0,
            stream_commit_interval=0.5,
            reminder_interval_seconds=5.0,
            **common,
        )
    )
    requests_app = create_requests(
        RequestsSettings(
            database_url=database_url(),
            prestations_topic=f"{prefix}catalog.prestations.v1",
            spaces_topic=f"{prefix}catalog.spaces.v1",
            commands_topic=f"{prefix}requests.commands.v1",
            consumer_group_suffix=f".{prefix}",
            **common,
        )
    )
    notify = create_notify(
        NotifySettings(
            database_url=database_url(),
            topic_prefix=prefix,
            simulated_recipients=True,
            quiet_hours_start="00:00",
            quiet_hours_end="00:00",
            digest_auto=False,
            **common,
        )
    )
    log_lines.attach()  # type: ignore[attr-defined]
    tracer = trace.get_tracer("tests.e2e.tracing")

    with capture_spans() as exporter:
        async with AsyncExitStack() as stack:
            mobility_http = await stack.enter_async_context(_serve(mobility))
            for app in (requests_app, notify):
                await stack.enter_async_context(_serve(app))
            for app in (mobility, requests_app, notify):
                runtime: Runtime = app.state.runtime
                await wait_until(lambda r=runtime: _consumers_started(r), timeout=60)

            mutation_id = f"TRACE-{secrets.token_hex(4).upper()}"
            agent_id = f"{secrets.randbelow(10**9):09d}1"
            token = key.issue("sirh-terre", [Role.HR_SYSTEM])
            # The HR system's span travels only in the header, as from another process: it is
            # not current here, so mobility's server span must take it from `traceparent`.
            root = tracer.start_span("hr-system publish", kind=trace.SpanKind.PRODUCER)
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/cloudevents+json",
            }
            propagate.inject(headers, context=trace.set_span_in_context(root))
            assert trace.get_current_span() is trace.INVALID_SPAN
            response = await mobility_http.post(
                "/v1/hr/mutation-events",
                content=to_structured(_mutation(mutation_id, agent_id)),
                headers=headers,
            )
            root.end()
            assert response.status_code == 202, response.text
            trace_id = root.get_span_context().trace_id

            def consumed(group_part: str, topic: str) -> list[ReadableSpan]:
                return [
                    s
                    for s in exporter.get_finished_spans()
                    if s.context.trace_id == trace_id
                    and s.kind == trace.SpanKind.CONSUMER
                    and group_part in str(s.attributes.get("messaging.consumer.group.name"))
                    and s.name == f"{prefix}{topic} process"
                ]

            async def every_hop() -> bool:
                return bool(
                    consumed("mobility", "hr.mutations.v1")
                    and consumed("requests.commands", "requests.commands.v1")
                    and consumed("notify.events", "mobility.dossiers.v1")
                )

            try:
                await wait_until(every_hop, timeout=45, interval=0.2)
            except AssertionError as missing:
                seen = sorted(
                    {
                        (s.name, str(s.attributes.get("messaging.consumer.group.name")),
                         s.context.trace_id == trace_id)
                        for s in exporter.get_finished_spans()
                        if s.kind == trace.SpanKind.CONSUMER
                    }
                )  # fmt: skip
                raise AssertionError(f"consumer spans (name, group, in trace): {seen}") from missing

        spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]

    # The parent chain is sound: every span but the root hangs off a span of the same trace
    # that this process ended, so the trace is one tree rooted at the HR system's span.
    by_id = {s.context.span_id: s for s in spans}
    root_span = by_id[root.get_span_context().span_id]
    assert root_span.parent is None
    for span in spans:
        if span is root_span:
            continue
        assert span.parent is not None, span.name
        assert span.parent.trace_id == trace_id
        assert span.parent.span_id in by_id, f"{span.name}: parent not in the trace"

    def ancestors(span: ReadableSpan) -> list[str]:
        names = []
        while span.parent is not None:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names

    server = [s for s in spans if s.kind == trace.SpanKind.SERVER]
    assert any("/v1/hr/mutation-events" in s.name for s in server), [
        (s.name, s.kind, s.instrumentation_scope.name if s.instrumentation_scope else None)
        for s in spans
    ]
    hr_consumed = consumed("mobility", "hr.mutations.v1")[0]
    # HTTP → mobility's stream (Kafka) → requests' consumer and notify's consumer (Kafka).
    assert any("/v1/hr/mutation-events" in name for name in ancestors(hr_consumed))
    for span in (
        consumed("requests.commands", "requests.commands.v1")[0],
        consumed("notify.events", "mobility.dossiers.v1")[0],
    ):
        assert hr_consumed.name in ancestors(span), (span.name, ancestors(span))

    # Logs written while handling carry the trace id (structlog JSON).
    hex_id = format(trace_id, "032x")
    records = [
        json.loads(line) for line in log_lines.getvalue().splitlines() if line.startswith("{")
    ]
    traced = [r for r in records if r.get("trace_id") == hex_id]
    assert traced, f"no log line with trace_id {hex_id} among {len(records)}"
    assert all("span_id" in r for r in traced)
