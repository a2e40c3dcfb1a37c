"""OpenTelemetry setup and W3C trace context carried in Kafka headers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACE_HEADERS = ("traceparent", "tracestate")

_configured = False


def setup_telemetry(
    service: str, *, otlp_endpoint: str | None = None, processors: Sequence[SpanProcessor] = ()
) -> TracerProvider:
    """Install a tracer provider; spans are exported over OTLP only when an endpoint is given."""
    global _configured
    provider = trace.get_tracer_provider()
    if _configured and isinstance(provider, TracerProvider):
        for processor in processors:
            provider.add_span_processor(processor)
        return provider
    provider = tracer_provider(service, otlp_endpoint=otlp_endpoint)
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _configured = True
    return provider


def tracer_provider(service: str, *, otlp_endpoint: str | None = None) -> TracerProvider:
    """A tracer provider for `service`, exporting over OTLP when an endpoint is given.

    Sampling is the OpenTelemetry SDK's, set by its standard variables: by default every trace
    is recorded (`parentbased_always_on`); `OTEL_TRACES_SAMPLER=parentbased_traceidratio` with
    `OTEL_TRACES_SAMPLER_ARG=0.1` records one trace in ten, decided where the trace starts and
    followed by every service after it. A trace not recorded still carries its ids in the Kafka
    headers and in the logs.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": f"atlas-{service}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint}/v1/traces"))
        )
    return provider


def _w3c_only(textmap: object) -> bool:
    """Whether the global propagator is OpenTelemetry's default: W3C trace context + baggage."""
    if not isinstance(textmap, CompositePropagator):
        return False
    kinds = {type(p) for p in getattr(textmap, "_propagators", ())}
    return kinds == {TraceContextTextMapPropagator, W3CBaggagePropagator}


def _carrier(context: otel_context.Context | None) -> dict[str, str]:
    """The propagation headers of a context, as `propagate.inject` writes them.

    With the default propagators and no baggage, the `traceparent` (and `tracestate`) are
    written here directly: through the propagator API they cost 40 µs an event, and a burst
    writes several events per mutation. Any other set-up goes through `propagate.inject`.
    """
    textmap = propagate.get_global_textmap()
    if not _w3c_only(textmap) or baggage.get_all(context):
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=context)
        return carrier
    span = trace.get_current_span(context).get_span_context()
    if not span.is_valid:
        return {}
    carrier = {"traceparent": f"00-{span.trace_id:032x}-{span.span_id:016x}-{span.trace_flags:02x}"}
    if span.trace_state:
        carrier["tracestate"] = span.trace_state.to_header()
    return carrier


def inject_headers(
    headers: list[tuple[str, bytes]] | None = None, *, context: otel_context.Context | None = None
) -> list[tuple[str, bytes]]:
    """Add the trace context (the current one unless given) to Kafka headers (a new list)."""
    carrier = _carrier(context)
    kept = [(k, v) for k, v in headers or [] if k not in carrier]
    return kept + [(k, v.encode()) for k, v in carrier.items()]


def trace_headers(context: otel_context.Context | None = None) -> list[tuple[str, bytes]]:
    """The Kafka headers that carry a context (the current one unless given), encoded."""
    return [(k, v.encode()) for k, v in _carrier(context).items()]


def extract_context(headers: Sequence[tuple[str, bytes]]) -> otel_context.Context:
    """The trace context a message carries (empty when it carries none)."""
    carrier = {k: v.decode("latin-1") for k, v in headers if k in TRACE_HEADERS and v is not None}
    return propagate.extract(carrier)


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span, to carry inside a batched item."""
    return _carrier(None).get("traceparent")


@contextmanager
def consume_span(
    tracer: trace.Tracer,
    name: str,
    headers: Sequence[tuple[str, bytes]],
    attributes: Mapping[str, str | int] | None = None,
    *,
    links: Sequence[trace.Link] = (),
) -> Iterator[trace.Span]:
    """A consumer span whose parent is the producer's context, made current for the handler.

    `links` ties it to the span of the batch it was applied in (a batch spans many traces).
    """
    parent = extract_context(headers)
    with tracer.start_as_current_span(
        name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes, links=links
    ) as span:
        yield span


def batch_links() -> list[trace.Link]:
    """A link to the current span (the batch's), for the spans of the items applied in it."""
    context = trace.get_current_span().get_span_context()
    return [trace.Link(context)] if context.is_valid else []


class _Tap(SpanProcessor):
    """Hands every ended span to the exporters of the open `capture_spans` blocks."""

    def __init__(self) -> None:
        self.exporters: list[SpanExporter] = []

    def on_end(self, span: ReadableSpan) -> None:
        for exporter in list(self.exporters):
            exporter.export((span,))


_tap: _Tap | None = None


@contextmanager
def capture_spans() -> Iterator[InMemorySpanExporter]:
    """Collect the spans every service of this process ends inside the block (test hook)."""
    global _tap
    if _tap is None:
        _tap = _Tap()
        setup_telemetry("tests", processors=[_tap])
    exporter = InMemorySpanExporter()
    _tap.exporters.append(exporter)
    try:
        yield exporter
    finally:
        _tap.exporters.remove(exporter)
