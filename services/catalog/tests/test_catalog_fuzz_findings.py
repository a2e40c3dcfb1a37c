"""Regressions of what the API fuzzing (tests/fuzz, issue #22) found in the catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from catalog_factories import CatalogClient

from atlas_events.schemas._base import INT32_MAX

REFDATA = Path(__file__).resolve().parents[1] / "refdata"


def _parameter(document: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    [found] = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name]
    return found


async def test_the_openapi_lists_the_reference_values_it_accepts(catalog: CatalogClient) -> None:
    # `domain=a` or `departement=000` were valid by the document and refused with 422.
    document = (await catalog.http.get("/openapi.json")).json()
    vocabularies = json.loads((REFDATA / "vocabularies.json").read_text(encoding="utf-8"))
    domains = sorted(item["slug"] for item in vocabularies["domains"])
    assert _parameter(document, "/v1/prestations", "domain")["schema"]["items"]["enum"] == domains
    spaces = _parameter(document, "/v1/prestations/{code}", "space")["schema"]["enum"]
    assert len(spaces) == len(json.loads((REFDATA / "spaces.json").read_text(encoding="utf-8")))
    departements = _parameter(document, "/v1/spaces", "departement")["schema"]["enum"]
    assert {"01", "2A", "976"} <= set(departements)
    assert "000" not in departements
    body = document["components"]["schemas"]["PrestationCreate"]["properties"]
    assert body["channels"]["items"]["enum"] == sorted(
        item["slug"] for item in vocabularies["channels"]
    )
    # Every value the document lists is accepted.
    for domain in domains:
        listing = await catalog.http.get(
            "/v1/prestations", params={"domain": domain}, headers=catalog.agent
        )
        assert listing.status_code == 200, (domain, listing.text)


async def test_a_malformed_commune_is_refused_as_the_document_says(catalog: CatalogClient) -> None:
    document = (await catalog.http.get("/openapi.json")).json()
    pattern = _parameter(document, "/v1/spaces/resolve", "commune_insee")["schema"]["pattern"]
    assert pattern
    refused = await catalog.http.get(
        "/v1/spaces/resolve", params={"commune_insee": "0000000000"}, headers=catalog.agent
    )
    assert refused.status_code == 422
    assert refused.json()["error"] == "ValidationError"
    lenient = await catalog.http.get(
        "/v1/spaces/resolve", params={"commune_insee": " 2a004 "}, headers=catalog.agent
    )
    assert lenient.status_code in (200, 404), lenient.text


async def test_a_version_beyond_the_column_is_refused_not_a_server_error(
    catalog: CatalogClient,
) -> None:
    refused = await catalog.http.get(
        f"/v1/prestations/ADM-001/versions/{INT32_MAX + 1}", headers=catalog.agent
    )
    assert refused.status_code == 422
    missing = await catalog.http.get(
        f"/v1/prestations/ADM-001/versions/{INT32_MAX}", headers=catalog.agent
    )
    assert missing.status_code == 404
