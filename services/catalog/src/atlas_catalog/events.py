"""The catalog's events: full snapshots of prestations and spaces, written through the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from atlas_catalog.prestations.models import Prestation
from atlas_catalog.spaces.models import AtlasSpace
from atlas_catalog.vocabulary import CHANNEL_TO_EVENT, Vocabulary
from atlas_events.cloudevents import CloudEvent
from atlas_events.outbox import Outbox
from atlas_events.schemas import catalog as schema

SOURCE = "urn:atlas:catalog"
HOURS_PER_DAY = 24


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without their zone; every stored one is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def prestation_snapshot(
    prestation: Prestation, vocabulary: Vocabulary
) -> schema.PrestationSnapshot:
    """The compacted-topic record of a prestation's current version."""
    return schema.PrestationSnapshot(
        code=prestation.code,
        version=prestation.version,
        title=prestation.title,
        summary=prestation.summary,
        category=prestation.domain,
        provider=vocabulary.providers.get(prestation.provider, prestation.provider),
        channels=[CHANNEL_TO_EVENT[c] for c in prestation.channels if c in CHANNEL_TO_EVENT],
        essential=prestation.essential,
        crisis_only=prestation.crisis_only,
        # Business days are what the catalog promises; hours are what the contract carries.
        sla_hours=prestation.sla_days * HOURS_PER_DAY,
        updated_at=aware(prestation.updated_at),
        provider_code=prestation.provider,
        keywords=list(prestation.keywords),
        audiences=list(prestation.audiences),
        documents=list(prestation.documents),
        sla_days=prestation.sla_days,
    )


async def publish_prestation(
    session: AsyncSession, outbox: Outbox, prestation: Prestation, vocabulary: Vocabulary
) -> None:
    """Queue the prestation's snapshot, or its withdrawal, keyed by its code."""
    if prestation.status == "withdrawn":
        data = schema.PrestationWithdrawn(
            code=prestation.code,
            version=prestation.version,
            reason=prestation.withdrawn_reason,
            withdrawn_at=aware(prestation.updated_at),
        )
        event = CloudEvent.create(schema.PRESTATION_WITHDRAWN, SOURCE, data)
    else:
        snapshot = prestation_snapshot(prestation, vocabulary)
        event = CloudEvent.create(schema.PRESTATION_SNAPSHOT, SOURCE, snapshot)
    await outbox.add(session, event, key=prestation.code)


def space_snapshot(
    space: AtlasSpace,
    *,
    covers: Sequence[str],
    default_for: Sequence[str],
    national_crisis: bool,
) -> schema.SpaceSnapshot:
    """The compacted-topic record of a space: where it is, what it covers, crisis mode."""
    crisis = space.crisis_active or national_crisis
    phone = space.contact.get("phone")
    return schema.SpaceSnapshot(
        atlas_id=space.atlas_id,
        name=space.name,
        commune_insee=space.commune_insee,
        region=space.region,
        overseas=space.zone != "metro",
        communes_covered=[space.commune_insee, *sorted(covers)],
        phone=phone if isinstance(phone, str) else None,
        crisis_mode=crisis,
        version=space.version,
        updated_at=aware(space.updated_at),
        commune_name=space.commune_name,
        departement=space.departement,
        zone=space.zone,
        status="crisis" if crisis else space.base_status,
        email=space.contact.get("email"),
        default_for_departements=sorted(default_for),
        crisis_scope=("space" if space.crisis_active else "national") if crisis else None,
    )


async def publish_space(
    session: AsyncSession,
    outbox: Outbox,
    snapshot: schema.SpaceSnapshot,
    *,
    crisis_changed_by: str | None = None,
    crisis_reason: str | None = None,
) -> None:
    """Queue a space snapshot; a crisis switch goes out as crisis_mode_changed (also a snapshot)."""
    if crisis_changed_by is None:
        event = CloudEvent.create(schema.SPACE_SNAPSHOT, SOURCE, snapshot)
    else:
        data = schema.SpaceCrisisModeChanged(
            **snapshot.model_dump(), changed_by=crisis_changed_by, crisis_reason=crisis_reason
        )
        event = CloudEvent.create(schema.SPACE_CRISIS_MODE_CHANGED, SOURCE, data)
    await outbox.add(session, event, key=snapshot.atlas_id)


def utcnow() -> datetime:
    return datetime.now(UTC)
