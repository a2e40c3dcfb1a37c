"""Trace context travels from the outbox through Kafka into the consumer's span and logs."""

from __future__ import annotations

import asyncio
import json
import logging

import counter_domain as cd
import pytest
import structlog
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_outbox_consumer import incremented, run_in_background

from atlas_events.logging import configure_logging
from atlas_events.outbox import Outbox, OutboxRelay
from atlas_events.testing import wait_until
from atlas_events.tracing import (
    consume_span,
    current_traceparent,
    inject_headers,
    setup_telemetry,
    tracer_provider,
)


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


def _span_context(flags: int, state: trace.TraceState | None = None) -> trace.SpanContext:
    return trace.SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=trace.TraceFlags(flags),
        trace_state=state,
    )


@pytest.mark.parametrize(
    "state", [None, trace.TraceState([("vendor", "x1"), ("other", "y2")])], ids=["plain", "state"]
)
@pytest.mark.parametrize("flags", [0, 1])
def test_headers_written_directly_are_what_the_propagator_writes(flags, state):
    """The fast path (no propagator call) writes the W3C headers exactly as OpenTelemetry does."""
    context = trace.set_span_in_context(trace.NonRecordingSpan(_span_context(flags, state)))
    expected: dict[str, str] = {}
    propagate.inject(expected, context=context)
    assert "traceparent" in expected
    written = dict(inject_headers([("ce_id", b"1"), ("traceparent", b"old")], context=context))
    assert written.pop("ce_id") == b"1"
    assert {k: v.decode() for k, v in written.items()} == expected
    token = otel_context.attach(context)
    try:
        assert current_traceparent() == expected["traceparent"]
    finally:
        otel_context.detach(token)


def test_baggage_and_an_invalid_span_go_as_the_propagator_says():
    context = trace.set_span_in_context(trace.NonRecordingSpan(_span_context(1)))
    with_baggage = baggage.set_baggage("espace", "toulon", context=context)
    written = dict(inject_headers(context=with_baggage))
    assert written["baggage"] == b"espace=toulon"
    assert written["traceparent"].startswith(b"00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert inject_headers(context=otel_context.Context()) == []
