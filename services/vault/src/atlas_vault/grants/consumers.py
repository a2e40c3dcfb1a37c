"""Consumer of the requests service's status events: a closed request revokes its grants."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from atlas_events.consumer import ConsumerRunner, Delivery, Handler
from atlas_events.errors import PermanentError
from atlas_events.outbox import Outbox
from atlas_events.schemas.requests import REQUEST_STATUS_CHANGED, RequestStatusChanged
from atlas_events.service import Runtime
from atlas_vault.config import VaultSettings
from atlas_vault.grants.service import apply_request_status


def make_handler(outbox: Outbox) -> Handler:
    """The handler of status changes, publishing through `outbox`."""

    async def on_status_changed(session: AsyncSession, delivery: Delivery) -> None:
        if not isinstance(delivery.data, RequestStatusChanged):
            raise PermanentError("status_changed event without its validated data")
        await apply_request_status(session, outbox, delivery.data)

    return on_status_changed


def request_status_consumer(runtime: Runtime, settings: VaultSettings) -> ConsumerRunner:
    """Reads `requests.requests.v1`; only status changes matter to the vault."""
    return ConsumerRunner(
        name=settings.consumer_group,
        topics=[settings.requests_topic],
        handlers={REQUEST_STATUS_CHANGED: make_handler(runtime.outbox)},
        db=runtime.db,
        tables=runtime.service.tables,
        bootstrap=settings.kafka_bootstrap,
        registry=runtime.registry,
        kafka_options=runtime.kafka_options,
    )
