"""The catalog's fixed lists (domains, providers, audiences, channels, documents), and checks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atlas_catalog.errors import UnknownValues

VOCABULARIES_FILE = "vocabularies.json"

# The event contract names channels in English; the catalog speaks the users' words.
CHANNEL_TO_EVENT = {"guichet": "counter", "telephone": "phone", "en_ligne": "online"}


@dataclass(frozen=True)
class Vocabulary:
    """Slug → label of each list; what a prestation or a filter may name."""

    domains: Mapping[str, str]
    providers: Mapping[str, str]
    audiences: Mapping[str, str]
    channels: Mapping[str, str]
    documents: Mapping[str, str]
    zones: Mapping[str, str]
    space_statuses: Mapping[str, str]

    @classmethod
    def read(cls, refdata_dir: Path) -> Vocabulary:
        """Read `vocabularies.json` from the reference data."""
        raw: dict[str, list[dict[str, Any]]] = json.loads(
            (refdata_dir / VOCABULARIES_FILE).read_text(encoding="utf-8")
        )

        def labels(key: str) -> dict[str, str]:
            return {item["slug"]: item["label"] for item in raw[key]}

        return cls(
            domains=labels("domains"),
            providers=labels("providers"),
            audiences=labels("audiences"),
            channels=labels("channels"),
            documents=labels("documents"),
            zones=labels("zones"),
            space_statuses=labels("space_statuses"),
        )

    def unknown(self, field: str, values: Iterable[str]) -> list[dict[str, Any]]:
        """The problems (one per value) for values of `field` that the vocabulary lacks."""
        allowed = self.allowed(field)
        return [
            {"field": field, "value": value, "allowed": sorted(allowed)}
            for value in values
            if value not in allowed
        ]

    def allowed(self, field: str) -> Mapping[str, str]:
        return {
            "domain": self.domains,
            "provider": self.providers,
            "audience": self.audiences,
            "audiences": self.audiences,
            "channel": self.channels,
            "channels": self.channels,
            "documents": self.documents,
            "zone": self.zones,
            "status": self.space_statuses,
        }[field]

    def check(self, values: Mapping[str, Iterable[str]]) -> None:
        """Raise UnknownValues (422) naming every value outside its list."""
        problems = [p for field, vals in values.items() for p in self.unknown(field, vals)]
        if problems:
            raise UnknownValues(problems)
