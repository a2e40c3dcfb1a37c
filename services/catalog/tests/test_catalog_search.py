"""French search over the real reference data on PostgreSQL: accents, case, typos, synonyms."""

from __future__ import annotations

import pytest
from catalog_factories import CatalogClient

from atlas_catalog.search.index import SearchIndex
from atlas_catalog.search.service import PageCache
from atlas_catalog.search.text import distance_at_most, fold, stem, terms

MOVING = {"MOB-002", "MOB-003", "MOB-004", "MOB-005", "MOB-006", "MOB-020", "MOB-021", "MOB-016"}

# (query, a prestation expected among the first `top` results)
QUERIES: list[tuple[str, str, int]] = [
    ("demenagement", "MOB-002", 3),
    ("Déménagement", "MOB-002", 3),
    ("DÉMÉNAGEMENT", "MOB-002", 3),
    ("demenagment", "MOB-002", 3),  # a letter missing
    ("déménagemnet", "MOB-002", 3),  # two letters swapped
    ("crèche", "FAM-001", 1),
    ("CRECHE", "FAM-001", 1),
    ("crehce", "FAM-001", 1),  # swapped
    ("garde d'enfants", "FAM-001", 3),  # synonym of crèche
    ("garde d'enfants", "FAM-003", 6),
    ("nounou", "FAM-004", 2),
    ("mutation", "MOB-002", 3),  # keyword and synonym (déménagement)
    ("logment", "LOG-001", 5),
    ("carte du combattant", "ANC-001", 1),
    ("impots", "FIS-001", 1),
    ("Impôts", "FIS-001", 1),
    ("colonie de vacances", "FAM-013", 1),
    ("pupille de la nation", "ANC-004", 1),
    ("soutien scolaire", "FAM-019", 2),
    ("soutien scolaire", "CRI-010", 2),
    ("sachets repas", "CRI-008", 1),
    ("masques", "CRI-009", 1),
    ("hebergement temporaire", "HEB-001", 2),
    ("allocations familiales", "FAM-015", 1),
    ("caf", "FAM-015", 3),
    ("uniforme", "HAB-001", 1),  # synonym of paquetage, habillement
    ("psychologue", "SAN-002", 3),
    ("vétéran", "ANC-001", 3),  # synonym of ancien combattant
    ("carte grise", "MOB-008", 1),
    ("frais de déménagement", "MOB-004", 1),
    ("chomage", "REC-011", 1),
    ("medecin", "SAN-006", 2),
    ("lunettes", "SAN-017", 1),
    ("inscription ecole", "FAM-005", 1),
]


@pytest.mark.parametrize(("query", "expected", "top"), QUERIES)
async def test_french_query_finds_expected_prestation(
    catalog: CatalogClient, query: str, expected: str, top: int
) -> None:
    codes = await catalog.search(query, limit=top)
    assert expected in codes, f"{query!r} → {codes}"


async def test_moving_queries_rank_moving_prestations_first(catalog: CatalogClient) -> None:
    for query in ("demenagement", "Déménagement", "demenagment"):
        codes = await catalog.search(query, limit=3)
        assert set(codes) <= MOVING, (query, codes)


async def test_results_are_ranked_and_paginated(catalog: CatalogClient) -> None:
    first = await catalog.get("/v1/prestations", q="logement", limit=5)
    second = await catalog.get("/v1/prestations", q="logement", limit=5, offset=5)
    scores = [i["score"] for i in first["items"] + second["items"]]
    assert scores == sorted(scores, reverse=True)
    assert first["total"] == second["total"] > 10
    assert not {i["code"] for i in first["items"]} & {i["code"] for i in second["items"]}


async def test_no_query_lists_every_active_prestation_by_code(catalog: CatalogClient) -> None:
    page = await catalog.get("/v1/prestations", limit=100)
    assert page["total"] >= 250
    codes = [i["code"] for i in page["items"]]
    assert codes == sorted(codes)
    assert all(i["score"] is None for i in page["items"])


async def test_unknown_words_find_nothing(catalog: CatalogClient) -> None:
    page = await catalog.get("/v1/prestations", q="zzqxw kkjjv")
    assert page["total"] == 0
    assert page["items"] == []


async def test_filters_restrict_results(catalog: CatalogClient) -> None:
    page = await catalog.get("/v1/prestations", domain="logement", limit=100)
    assert page["total"] >= 10
    assert {i["domain"] for i in page["items"]} == {"logement"}

    two = await catalog.get("/v1/prestations", domain=["logement", "fiscalite"], limit=100)
    assert {i["domain"] for i in two["items"]} == {"logement", "fiscalite"}

    igesa = await catalog.get("/v1/prestations", q="vacances", provider="igesa")
    assert igesa["total"] > 0
    assert {i["provider"] for i in igesa["items"]} == {"igesa"}

    children = await catalog.get("/v1/prestations", audience="enfant", limit=100)
    assert all("enfant" in i["audiences"] for i in children["items"])

    online = await catalog.get("/v1/prestations", channel="en_ligne", essential="true", limit=100)
    assert online["total"] > 0
    assert all("en_ligne" in i["availability"]["channels"] for i in online["items"])
    assert all(i["essential"] for i in online["items"])

    space = await catalog.get("/v1/prestations", q="logement", space="ATLAS-83137-TOULON")
    assert space["crisis"]["active"] is False
    assert space["total"] > 0


async def test_unknown_filter_values_are_named(catalog: CatalogClient) -> None:
    response = await catalog.http.get(
        "/v1/prestations",
        params={
            "q": "logement",
            "domain": ["logement", "astrologie"],
            "provider": "nasa",
            "audience": "martien",
            "channel": "pigeon",
            "space": "ATLAS-00000-NULLE-PART",
        },
        headers=catalog.agent,
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "UnknownValues"
    named = {(p["field"], p["value"]) for p in body["detail"]}
    assert named == {
        ("domain", "astrologie"),
        ("provider", "nasa"),
        ("audience", "martien"),
        ("channel", "pigeon"),
        ("space", "ATLAS-00000-NULLE-PART"),
    }


async def test_bad_search_parameters_are_refused(catalog: CatalogClient) -> None:
    too_long = await catalog.http.get(
        "/v1/prestations", params={"q": "a" * 201}, headers=catalog.agent
    )
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["field"] == "query.q"
    bad_limit = await catalog.http.get("/v1/prestations", params={"limit": 0}, headers=catalog.ops)
    assert bad_limit.status_code == 422
    anonymous = await catalog.http.get("/v1/prestations", params={"q": "logement"})
    assert anonymous.status_code == 401


async def test_detail_and_unknown_code(catalog: CatalogClient) -> None:
    detail = await catalog.get("/v1/prestations/LOG-001", headers=catalog.agent)
    assert detail["title"]
    assert detail["domain_label"] == "Logement"
    assert detail["availability"]["state"] == "offered"
    missing = await catalog.http.get("/v1/prestations/LOG-999", headers=catalog.agent)
    assert missing.status_code == 404
    assert missing.json()["error"] == "PrestationNotFound"
    assert "LOG-999" in missing.json()["detail"]


# ---- the text analysis alone (no database) -------------------------------------------------


def test_folding_and_stemming_merge_forms_of_a_word() -> None:
    assert fold("Crèche ŒUVRE") == "creche oeuvre"
    forms = {"déménagement", "déménagements", "déménager", "Déménagement"}
    assert {stem(fold(f)) for f in forms} == {"demenag"}
    assert terms("La garde d'enfants") == ["gard", "enfant"]


def test_edit_distance_is_bounded() -> None:
    assert distance_at_most("crehce", "creche", 1) == 1
    assert distance_at_most("demenagment", "demenagement", 2) == 1
    assert distance_at_most("maison", "voiture", 2) is None


def test_index_prefers_title_matches_and_all_words() -> None:
    index = SearchIndex(
        [
            ("A", {"title": "Aide au logement", "summary": "Pour se loger."}),
            ("B", {"title": "Vacances", "summary": "Un logement de vacances."}),
            ("C", {"title": "Garde d'enfants", "keywords": "crèche"}),
        ]
    )
    assert [index.ids[p] for p, _ in index.search("logement")] == ["A", "B"]
    assert index.ids[index.search("logement vacances")[0][0]] == "B"
    assert [index.ids[p] for p, _ in index.search("creche")] == ["C"]
    assert index.search("") == []


def test_page_cache_keeps_pages_within_its_byte_budget_oldest_out_first() -> None:
    cache = PageCache(budget=10)
    first, second, third = b"q=a", b"q=b", b"q=c"
    cache.put(first, b"1234")
    cache.put(second, b"5678")
    assert cache.get(first) == b"1234"
    cache.put(third, b"90ab")  # 12 bytes: the oldest page goes
    assert cache.get(first) is None
    assert (cache.get(second), cache.get(third), cache.size) == (b"5678", b"90ab", 8)
    cache.put(second, b"56")  # replaced, not counted twice
    assert cache.size == 6
    cache.put(b"q=huge", b"x" * 11)  # larger than the budget: not kept
    assert len(cache) == 2
