"""Regressions of what the API fuzzing (tests/fuzz, issue #22) found in notify."""

from __future__ import annotations

from notify_factories import NotifyHarness

from atlas_events.schemas._base import INT32_MAX


async def test_a_bare_number_is_not_a_date_time(notify: NotifyHarness) -> None:
    # `before=0` was read as 1970-01-01 (pydantic's seconds since the epoch) and answered 200.
    refused = await notify.client.get(
        "/v1/notifications", params={"before": "0"}, headers=notify.ops
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "query.before"
    accepted = await notify.client.get(
        "/v1/notifications",
        params={"before": "2030-01-01T00:00:00Z", "recipient": "2019123456"},
        headers=notify.ops,
    )
    assert accepted.status_code == 200


async def test_a_staff_flag_is_a_json_boolean(notify: NotifyHarness) -> None:
    # `"active": 0` was taken as false; nothing may be written for it.
    body = {"staff_id": "fuzz-1", "display_name": "Fuzz", "active": 0}
    refused = await notify.client.put(
        "/v1/spaces/toulon/staff/fuzz-1", json=body, headers=notify.admin
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "active"
    listing = await notify.client.get("/v1/spaces/toulon/staff", headers=notify.ops)
    assert "fuzz-1" not in listing.text
    body["active"] = False
    stored = await notify.client.put(
        "/v1/spaces/toulon/staff/fuzz-1", json=body, headers=notify.admin
    )
    assert stored.status_code == 200
    assert stored.json()["active"] is False


async def test_a_preview_version_beyond_the_column_is_refused_not_a_server_error(
    notify: NotifyHarness,
) -> None:
    # version 124488804328 reached the integer column's query and answered 500.
    refused = await notify.client.post(
        "/v1/templates/catalog.crisis_mode/preview",
        json={"version": INT32_MAX + 1, "params": {}},
        headers=notify.staff(),
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "version"
    missing = await notify.client.post(
        "/v1/templates/catalog.crisis_mode/preview",
        json={"version": INT32_MAX, "params": {}},
        headers=notify.staff(),
    )
    assert missing.status_code == 404


async def test_the_openapi_requires_the_idempotency_key(notify: NotifyHarness) -> None:
    document = (await notify.client.get("/openapi.json")).json()
    [header] = [
        p
        for p in document["paths"]["/v1/notifications"]["post"]["parameters"]
        if p["name"] == "Idempotency-Key"
    ]
    assert header["required"] is True
    assert header["schema"]["minLength"] == 1
