"""How a prestation is shown: its fields, labels and what is offered now."""

from __future__ import annotations

from atlas_catalog.events import aware
from atlas_catalog.prestations.availability import availability
from atlas_catalog.prestations.models import Prestation, PrestationPublic
from atlas_catalog.vocabulary import Vocabulary


def render_prestation(
    prestation: Prestation, vocabulary: Vocabulary, *, crisis: bool
) -> PrestationPublic:
    """The API shape of a prestation where crisis mode is `crisis`."""
    return PrestationPublic(
        code=prestation.code,
        version=prestation.version,
        status="withdrawn" if prestation.status == "withdrawn" else "active",
        withdrawn_reason=prestation.withdrawn_reason,
        title=prestation.title,
        summary=prestation.summary,
        keywords=list(prestation.keywords),
        domain=prestation.domain,
        domain_label=vocabulary.domains.get(prestation.domain, prestation.domain),
        provider=prestation.provider,
        provider_label=vocabulary.providers.get(prestation.provider, prestation.provider),
        audiences=list(prestation.audiences),
        channels=list(prestation.channels),
        documents=list(prestation.documents),
        sla_days=prestation.sla_days,
        essential=prestation.essential,
        crisis_only=prestation.crisis_only,
        updated_at=aware(prestation.updated_at),
        availability=availability(
            prestation.channels,
            essential=prestation.essential,
            crisis_only=prestation.crisis_only,
            crisis=crisis,
        ),
    )
