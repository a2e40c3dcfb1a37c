"""Kept search pages: a repeated query is answered before routing, with the route's exact answer,
still authenticated and measured; errors and other revisions are never served from the cache."""

from __future__ import annotations

import re

from catalog_factories import CatalogClient

from atlas_catalog.context import context_of
from atlas_catalog.search.service import PageCache

QUERY = {"q": "déménagement outre-mer", "limit": 7}


def _search_count(metrics: str) -> float:
    """How many GET /v1/prestations the kit's request histogram has seen (status 200)."""
    pattern = re.compile(
        r'^atlas_http_request_duration_seconds_count\{(?=[^}]*method="GET")'
        r'(?=[^}]*route="/v1/prestations")(?=[^}]*status="200")[^}]*\} (\S+)$',
        re.M,
    )
    return sum(float(value) for value in pattern.findall(metrics))


async def _kept(catalog: CatalogClient) -> PageCache:
    return (await context_of(catalog.runtime).views.current()).pages


async def test_a_repeated_search_gets_the_same_answer_from_the_kept_page(
    catalog: CatalogClient,
) -> None:
    metrics_before = _search_count((await catalog.http.get("/metrics")).text)
    first = await catalog.http.get("/v1/prestations", params=QUERY, headers=catalog.agent)
    assert first.status_code == 200, first.text
    kept = await _kept(catalog)
    query_string = first.request.url.query  # raw bytes, as ASGI's scope carries them
    assert kept.get(query_string) == first.content  # the route kept what it answered

    again = await catalog.http.get("/v1/prestations", params=QUERY, headers=catalog.ops)
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert again.headers["content-length"] == str(len(first.content))
    assert again.json()["items"][0]["code"].startswith("MOB-")
    # Both answers are measured under the route's name.
    metrics_after = _search_count((await catalog.http.get("/metrics")).text)
    assert metrics_after - metrics_before == 2

    # The second answer came from the kept page, not from the route: a page put there by hand
    # is what the same query string gets.
    kept.put(query_string, b'{"kept":true}')
    marked = await catalog.http.get("/v1/prestations", params=QUERY, headers=catalog.agent)
    assert marked.json() == {"kept": True}
    kept.put(query_string, first.content)


async def test_a_kept_page_still_needs_a_valid_token(catalog: CatalogClient) -> None:
    warm = await catalog.http.get("/v1/prestations", params=QUERY, headers=catalog.agent)
    assert warm.status_code == 200
    assert (await _kept(catalog)).get(warm.request.url.query) is not None

    anonymous = await catalog.http.get("/v1/prestations", params=QUERY)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "NotAuthenticated"
    assert anonymous.headers["www-authenticate"].lower().startswith("bearer")

    forged = await catalog.http.get(
        "/v1/prestations", params=QUERY, headers={"Authorization": "Bearer not.a.token"}
    )
    assert forged.status_code == 401
    basic = await catalog.http.get(
        "/v1/prestations", params=QUERY, headers={"Authorization": "Basic dXNlcjpwdw=="}
    )
    assert basic.status_code == 401
    assert "Bearer" in str(basic.json()["detail"])


async def test_refused_searches_are_not_kept(catalog: CatalogClient) -> None:
    params = {"q": "logement", "domain": "astronautique"}
    for _ in range(2):
        refused = await catalog.http.get("/v1/prestations", params=params, headers=catalog.agent)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["value"] == "astronautique"
    assert (await _kept(catalog)).get(refused.request.url.query) is None
