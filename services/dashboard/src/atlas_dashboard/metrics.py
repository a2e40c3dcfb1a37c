"""The dashboard's figures as Prometheus metrics, for the Grafana dashboard and the alerts."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from atlas_dashboard.overview import KafkaHealth, Overview

EVENTS = Counter(
    "atlas_dashboard_events_total",
    "Records read by the dashboard projection, by outcome",
    ["outcome"],
)
ARRIVALS = Gauge(
    "atlas_dashboard_arrivals",
    "Expected arrivals (dossiers not cancelled) by destination space and report month",
    ["atlas_id", "month"],
)
CASES = Gauge(
    "atlas_dashboard_arrival_cases",
    "Handler cases of the arrivals in the horizon, by space, kind and state",
    ["atlas_id", "kind", "state"],
)
BACKLOG = Gauge("atlas_dashboard_requests_backlog", "Open requests by space", ["atlas_id"])
OVERDUE = Gauge(
    "atlas_dashboard_requests_overdue", "Open requests past their SLA deadline", ["atlas_id"]
)
SLA = Gauge(
    "atlas_dashboard_sla_compliance_ratio",
    "Requests handled within their SLA over those with an SLA outcome, by space",
    ["atlas_id"],
)
NOTIFICATIONS = Gauge(
    "atlas_dashboard_notifications_recent",
    "Notification delivery status changes in the recent window, by channel and status",
    ["channel", "status"],
)
CRISIS = Gauge(
    "atlas_dashboard_crisis_mode", "1 while a space is in crisis mode", ["atlas_id", "scope"]
)
NATIONAL_CRISIS = Gauge("atlas_dashboard_national_crisis", "1 while national crisis mode is on")
LAG = Gauge(
    "atlas_dashboard_consumer_lag",
    "Messages a consumer group has not committed yet, by topic",
    ["group", "topic"],
)
DLQ = Gauge("atlas_dashboard_dlq_messages", "Messages held in a dead-letter topic", ["topic"])


def publish_overview(overview: Overview) -> None:
    """Set the gauges from the projection's figures (series that vanished are dropped)."""
    for gauge in (ARRIVALS, CASES, BACKLOG, OVERDUE, SLA, NOTIFICATIONS, CRISIS):
        gauge.clear()
    for space in overview.arrivals:
        atlas_id = space.atlas_id or "a_orienter"
        for month in space.months:
            ARRIVALS.labels(atlas_id, month.month).set(month.arrivals)
        for kind, states in space.cases.items():
            for state, count in states.items():
                CASES.labels(atlas_id, kind, state).set(count)
    for queue in overview.requests:
        BACKLOG.labels(queue.atlas_id).set(queue.backlog)
        OVERDUE.labels(queue.atlas_id).set(queue.overdue)
        if queue.sla_compliance is not None:
            SLA.labels(queue.atlas_id).set(queue.sla_compliance)
    for channel in overview.notifications.channels:
        for status, count in channel.statuses.items():
            NOTIFICATIONS.labels(channel.channel, status).set(count)
    for crisis in overview.crisis.spaces:
        CRISIS.labels(crisis.atlas_id, crisis.scope or "space").set(1)
    NATIONAL_CRISIS.set(1 if overview.crisis.national else 0)


def publish_kafka(health: KafkaHealth) -> None:
    """Set the lag and DLQ gauges from the last admin read."""
    LAG.clear()
    DLQ.clear()
    for row in health.lag:
        LAG.labels(row.group, row.topic).set(row.lag)
    for dlq in health.dlq:
        DLQ.labels(dlq.topic).set(dlq.messages)
