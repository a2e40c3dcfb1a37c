"""The consumers: other services' events through the rules, and the notify command topic."""

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.consumer import ConsumerRunner, Delivery, Handler
from atlas_events.registry import prefixed_registry
from atlas_events.schemas import notify
from atlas_events.service import Runtime
from atlas_notify.config import NotifySettings
from atlas_notify.db import event_tables
from atlas_notify.notifications.service import NotifyPolicy
from atlas_notify.rules.rules import Rule, apply_command, apply_rule, rules
from atlas_notify.topics import COMMAND_TOPIC, EVENT_TOPICS


def _handler(policy: Callable[[], NotifyPolicy], rule: Rule) -> Handler:
    async def handle(session: AsyncSession, delivery: Delivery) -> None:
        await apply_rule(session, policy(), rule, delivery)

    return handle


def build_consumers(runtime: Runtime, policy: Callable[[], NotifyPolicy]) -> list[ConsumerRunner]:
    settings = runtime.settings
    assert isinstance(settings, NotifySettings)
    prefix = settings.topic_prefix
    registry = prefixed_registry(prefix)
    table = rules(timedelta(hours=settings.stale_crisis_hours))

    async def handle_command(session: AsyncSession, delivery: Delivery) -> None:
        await apply_command(session, policy(), delivery)

    return [
        ConsumerRunner(
            name=f"{prefix}notify.events",
            topics=[prefix + t for t in EVENT_TOPICS],
            handlers={ce_type: _handler(policy, rule) for ce_type, rule in table.items()},
            db=runtime.db,
            tables=event_tables,
            bootstrap=settings.kafka_bootstrap,
            kafka_options=runtime.kafka_options,
            registry=registry,
        ),
        ConsumerRunner(
            name=f"{prefix}notify.commands",
            topics=[prefix + COMMAND_TOPIC],
            handlers={notify.SEND_NOTIFICATION: handle_command},
            db=runtime.db,
            tables=event_tables,
            bootstrap=settings.kafka_bootstrap,
            kafka_options=runtime.kafka_options,
            registry=registry,
        ),
    ]
