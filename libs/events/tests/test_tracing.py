"""Trace context travels from the outbox through Kafka into the consumer's span and logs."""

from __future__ import annotations

import asyncio
import json
import logging

import counter_domain as cd
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_outbox_consumer import incremented, run_in_background

from atlas_events.logging import configure_logging
from atlas_events.outbox import Outbox, OutboxRelay
from atlas_events.testing import wait_until
from atlas_events.tracing import consume_span, inject_headers, setup_telemetry, tracer_provider


async def test_one_trace_from_producer_span_to_consumer_span(
    pg_counter_db, kafka_bootstrap, unique_topic
):
    exporter = InMemorySpanExporter()
    setup_telemetry("test", processors=[SimpleSpanProcessor(exporter)])
    tracer = trace.get_tracer("test")
    topic = await unique_topic(partitions=1)
    outbox = Outbox(cd.tables, registry=cd.make_registry(topic))
    relay = OutboxRelay(pg_counter_db, outbox, bootstrap=kafka_bootstrap, client_id="t")
    relay_task = asyncio.create_task(relay.run())
    runner = cd.make_runner(pg_counter_db, kafka_bootstrap, topic, group=f"{topic}-g")
    task = await run_in_background(runner)
    try:
        with tracer.start_as_current_span("http POST /mutation") as span:
            origin = span.get_span_context().trace_id
            async with pg_counter_db.transaction() as session:
                await outbox.add(session, incremented("traced"), key="traced")
        await wait_until(lambda: cd.counter_value(pg_counter_db, "traced"))
    finally:
        await runner.stop()
        await relay.stop()
        await asyncio.gather(task, relay_task)
    consumer_spans = [s for s in exporter.get_finished_spans() if s.name == f"{topic} process"]
    assert consumer_spans, [s.name for s in exporter.get_finished_spans()]
    assert consumer_spans[0].context.trace_id == origin
    assert consumer_spans[0].kind == trace.SpanKind.CONSUMER


def test_json_logs_carry_trace_and_span_ids(capsys):  # type: ignore[no-untyped-def]
    setup_telemetry("test")
    configure_logging("test", json=True)
    try:
        with trace.get_tracer("test").start_as_current_span("work") as span:
            structlog.get_logger("t").info("something_happened", dossier="D1")
            context = span.get_span_context()
        line = next(ln for ln in capsys.readouterr().out.splitlines() if "something_happened" in ln)
        record = json.loads(line)
        assert record["trace_id"] == format(context.trace_id, "032x")
        assert record["span_id"] == format(context.span_id, "016x")
        assert record["service"] == "test"
        assert record["dossier"] == "D1"
    finally:
        structlog.contextvars.clear_contextvars()
        logging.getLogger().handlers.clear()


def test_sampling_follows_the_standard_otel_variables(monkeypatch):  # type: ignore[no-untyped-def]
    """A trace sampled out where it starts is not recorded downstream, but its ids travel on."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    exporter = InMemorySpanExporter()
    provider = tracer_provider("test")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    with consume_span(tracer, "hr process", []) as root:  # no parent: the ratio decides
        assert not root.is_recording()
        headers = inject_headers()
    origin = root.get_span_context()
    assert origin.is_valid  # the logs and the headers still name the trace
    flags = dict(headers)["traceparent"].decode().rsplit("-", 1)[1]
    assert int(flags, 16) & 1 == 0  # the sampled bit is off: the next hops do not record it

    with consume_span(tracer, "handler process", headers) as next_hop:
        assert not next_hop.is_recording()  # the decision made upstream is followed
        assert next_hop.get_span_context().trace_id == origin.trace_id
    assert exporter.get_finished_spans() == ()

    sampled = [("traceparent", f"00-{origin.trace_id:032x}-{origin.span_id:016x}-01".encode())]
    with consume_span(tracer, "handler process", sampled) as kept:
        assert kept.is_recording()  # recorded upstream: recorded here too, whatever the ratio
    assert [s.name for s in exporter.get_finished_spans()] == ["handler process"]
