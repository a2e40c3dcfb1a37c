"""The catalog's OpenAPI names the values its filters and prestation bodies accept.

The vocabularies (domains, providers, audiences, channels, documents, zones, space statuses), the
spaces, and the départements and régions are reference data read at start-up, so the document
lists them as enums when it is first built: a client generated from it, or a fuzzer, knows what
"unknown value" (422 `UnknownValues`) means before it sends one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from atlas_catalog.config import CatalogSettings
from atlas_catalog.reference.loader import COMMUNES_FILE, SPACES_FILE
from atlas_catalog.vocabulary import Vocabulary
from atlas_events.openapi import restrict_values
from atlas_events.service import Runtime

_BODIES = ("PrestationCreate", "PrestationUpdate")


def allowed_values(settings: CatalogSettings) -> dict[str, Sequence[str]]:
    """Field name → the values the catalog accepts for it, from the reference data."""
    vocabulary = Vocabulary.read(settings.refdata_dir)
    communes = json.loads((settings.refdata_dir / COMMUNES_FILE).read_text(encoding="utf-8"))
    departements: Mapping[str, Mapping[str, str]] = communes["departements"]
    regions: Mapping[str, str] = communes["regions"]
    values: dict[str, Sequence[str]] = {
        name: list(vocabulary.allowed(name))
        for name in ("domain", "provider", "audience", "channel", "documents", "zone", "status")
    }
    values["audiences"], values["channels"] = values["audience"], values["channel"]
    spaces = json.loads((settings.refdata_dir / SPACES_FILE).read_text(encoding="utf-8"))
    values["space"] = [space["atlas_id"] for space in spaces]
    values["departement"] = list(departements)
    values["region"] = sorted(
        {regions.get(d["region"], d["region"]) for d in departements.values()}
    )
    return values


def refine_openapi(document: dict[str, Any], runtime: Runtime) -> None:
    """Restrict the query parameters of the reads and the prestation bodies to `allowed_values`."""
    settings = runtime.settings
    if not isinstance(settings, CatalogSettings):
        settings = CatalogSettings.model_validate(settings.model_dump())
    values = allowed_values(settings)
    for item in document["paths"].values():
        for parameter in item.get("get", {}).get("parameters", []):
            if parameter["in"] == "query" and parameter["name"] in values:
                restrict_values(parameter["schema"], values[parameter["name"]])
    schemas = document["components"]["schemas"]
    for name in _BODIES:
        for field, schema in schemas[name].get("properties", {}).items():
            if field in values and field not in ("status", "zone"):
                restrict_values(schema, values[field])
