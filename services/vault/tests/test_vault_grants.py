"""Grants: named staff, a request, an expiry; checked on every read; revoked when requests close."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer
from vault_factories import (
    DOCUMENTS_TOPIC,
    OTHER_STAFF,
    OWNER,
    REQUESTS_TOPIC,
    STAFF,
    VaultApp,
    start_vault,
    wait_for_event,
)

from atlas_events.cloudevents import CloudEvent, to_kafka
from atlas_events.consumer import dlq_reason
from atlas_events.schemas.requests import REQUEST_STATUS_CHANGED
from atlas_events.testing import read_topic, topic_size, wait_until


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def _grant(
    vault: VaultApp, doc_id: str, request_id: str, *, expires_in: float = 3600, **extra: str
) -> dict[str, object]:
    response = await vault.client.post(
        f"/v1/documents/{doc_id}/grants",
        json={
            "grantee": STAFF,
            "request_id": request_id,
            "expires_at": _in(expires_in),
            **extra,
        },
        headers=vault.owner(),
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def _status(vault: VaultApp, doc_id: str, **params: str) -> int:
    response = await vault.client.get(
        f"/v1/documents/{doc_id}/content", params=params, headers=vault.staff()
    )
    return response.status_code


async def _publish(bootstrap: str, event: CloudEvent, key: str) -> None:
    message = to_kafka(event, key=key)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            REQUESTS_TOPIC, key=message.key, value=message.value, headers=message.headers
        )
    finally:
        await producer.stop()


def status_changed(request_id: str, status: str, previous: str = "en_instruction") -> CloudEvent:
    return CloudEvent.create(
        REQUEST_STATUS_CHANGED,
        "urn:atlas:requests",
        {
            "request_id": request_id,
            "atlas_id": "toulon",
            "agent_id": OWNER,
            "previous_status": previous,
            "status": status,
            "changed_at": datetime.now(UTC).isoformat(),
        },
    )


async def test_grant_lets_the_named_staff_read_and_is_journaled(
    tmp_path: Path, database_url: Callable[[], str], clamd
) -> None:
    data = b"certificat de scolarite" * 40
    async with start_vault(tmp_path, database_url(), clamd_address=clamd.address) as vault:
        doc_id = await vault.deposited(data, document_type="certificat_scolarite")
        request_id = str(uuid.uuid4())
        grant = await _grant(vault, doc_id, request_id, atlas_id="toulon")
        assert grant["live"] is True
        read = await vault.client.get(f"/v1/documents/{doc_id}/content", headers=vault.staff())
        assert read.status_code == 200
        assert read.content == data
        assert await _status(vault, doc_id, request_id=request_id) == 200
        assert await _status(vault, doc_id, request_id="another-request") == 403
        # Another staff member, or the same name in another space, gets nothing.
        other = await vault.client.get(
            f"/v1/documents/{doc_id}/content", headers=vault.staff(OTHER_STAFF)
        )
        assert other.status_code == 403
        elsewhere = await vault.client.get(
            f"/v1/documents/{doc_id}/content", headers=vault.staff(atlas_id="brest")
        )
        assert elsewhere.status_code == 403
        listed = await vault.client.get("/v1/documents", headers=vault.staff())
        assert [d["id"] for d in listed.json()["documents"]] == [doc_id]
        # The owner sees who consulted, for which request.
        journal = (await vault.client.get("/v1/journal", headers=vault.owner())).json()
        reads = [e for e in journal["entries"] if e["action"] == "read"]
        assert [(e["actor"], e["request_id"]) for e in reads] == [
            (STAFF, request_id),
            (STAFF, request_id),
        ]
        assert (
            await vault.client.delete(f"/v1/grants/{grant['id']}", headers=vault.owner())
        ).status_code == 204
        assert await _status(vault, doc_id) == 403
        grants = await vault.client.get(f"/v1/documents/{doc_id}/grants", headers=vault.owner())
        assert [(g["live"], g["revoke_reason"]) for g in grants.json()] == [(False, "owner")]


async def test_grant_expiry_is_checked_on_every_read(
    tmp_path: Path, database_url: Callable[[], str], clamd
) -> None:
    async with start_vault(tmp_path, database_url(), clamd_address=clamd.address) as vault:
        doc_id = await vault.deposited(b"avis d'imposition" * 10, document_type="avis_imposition")
        await _grant(vault, doc_id, str(uuid.uuid4()), expires_in=1.5)
        assert await _status(vault, doc_id) == 200

        async def expired() -> bool:
            return await _status(vault, doc_id) == 403

        await wait_until(expired, timeout=10, interval=0.2)
        listed = await vault.client.get("/v1/documents", headers=vault.staff())
        assert listed.json()["documents"] == []


async def test_grant_bad_inputs(tmp_path: Path, database_url: Callable[[], str], clamd) -> None:
    async with start_vault(
        tmp_path, database_url(), clamd_address=clamd.address, max_grant_days=30
    ) as vault:
        doc_id = await vault.deposited(b"bail" * 10)
        url = f"/v1/documents/{doc_id}/grants"
        base = {"grantee": STAFF, "request_id": "req-1", "expires_at": _in(3600)}
        cases = [
            ({k: v for k, v in base.items() if k != "expires_at"}, 422, "ValidationError"),
            ({**base, "expires_at": "2027-01-01T00:00:00"}, 422, "ValidationError"),  # naive
            ({**base, "expires_at": _in(-60)}, 422, "InvalidGrant"),
            ({**base, "expires_at": _in(31 * 86400)}, 422, "InvalidGrant"),
            ({**base, "grantee": OWNER}, 422, "InvalidGrant"),
            ({**base, "request_id": "bad id with spaces"}, 422, "ValidationError"),
        ]
        for body, status, error in cases:
            response = await vault.client.post(url, json=body, headers=vault.owner())
            assert (response.status_code, response.json()["error"]) == (status, error), body
        by_staff = await vault.client.post(url, json=base, headers=vault.staff())
        assert by_staff.status_code == 403
        unknown = await vault.client.post(
            "/v1/documents/nope/grants", json=base, headers=vault.owner()
        )
        assert unknown.status_code == 404
        not_mine = await vault.client.delete("/v1/grants/nope", headers=vault.owner())
        assert not_mine.status_code == 404
        assert not_mine.json()["error"] == "GrantNotFound"


async def test_unscanned_document_cannot_be_shared(
    tmp_path: Path, database_url: Callable[[], str]
) -> None:
    async with start_vault(tmp_path, database_url()) as vault:  # no clamd: stays quarantined
        doc_id = await vault.deposited(b"livret de famille" * 10, document_type="livret_famille")
        response = await vault.client.post(
            f"/v1/documents/{doc_id}/grants",
            json={"grantee": STAFF, "request_id": "req-1", "expires_at": _in(3600)},
            headers=vault.owner(),
        )
        assert response.status_code == 409
        assert response.json()["error"] == "DocumentNotScanned"


async def test_closing_the_request_revokes_its_grants(
    tmp_path: Path, database_url: Callable[[], str], vault_topics: str, clamd
) -> None:
    async with start_vault(
        tmp_path,
        database_url(),
        kafka_bootstrap=vault_topics,
        workers=True,
        clamd_address=clamd.address,
    ) as vault:
        first = await vault.deposited(b"bail" * 100)
        second = await vault.deposited(b"attestation" * 100, document_type="attestation")
        closing, staying = str(uuid.uuid4()), str(uuid.uuid4())
        await _grant(vault, first, closing)
        await _grant(vault, second, staying)
        assert await _status(vault, first) == 200

        await _publish(vault_topics, status_changed(closing, "en_instruction", "soumise"), closing)
        await _publish(vault_topics, status_changed(closing, "terminee"), closing)

        async def revoked() -> bool:
            return await _status(vault, first) == 403

        await wait_until(revoked, timeout=30, interval=0.2)
        assert await _status(vault, second) == 200  # another request's grant is untouched
        _, event = await wait_for_event(
            vault_topics,
            DOCUMENTS_TOPIC,
            lambda t, d: t.endswith("grant.revoked.v1") and d.get("request_id") == closing,
        )
        assert event["reason"] == "request_closed"
        assert event["document_id"] == first
        # A closed request cannot get new grants.
        late = await vault.client.post(
            f"/v1/documents/{first}/grants",
            json={"grantee": STAFF, "request_id": closing, "expires_at": _in(3600)},
            headers=vault.owner(),
        )
        assert late.status_code == 422
        assert "closed" in late.json()["detail"]
        journal = (await vault.client.get("/v1/journal", headers=vault.owner())).json()
        revocations = [e for e in journal["entries"] if e["action"] == "grant_revoked"]
        assert [(e["request_id"], e["detail"]["reason"]) for e in revocations] == [
            (closing, "request_closed")
        ]


async def test_invalid_status_event_goes_to_the_dlq_with_its_reason(
    tmp_path: Path, database_url: Callable[[], str], vault_topics: str
) -> None:
    async with start_vault(
        tmp_path, database_url(), kafka_bootstrap=vault_topics, workers=True
    ) as vault:
        marker = f"bad-{uuid.uuid4().hex[:8]}"
        bad = CloudEvent.create(
            REQUEST_STATUS_CHANGED,
            "urn:atlas:requests",
            {"request_id": marker, "status": "terminee"},  # atlas_id, agent_id... missing
        )
        await _publish(vault_topics, bad, marker)
        consumer = vault.runtime.consumers[0]
        assert consumer.name == vault.settings.consumer_group

        # The DLQ is shared; read it whole until our message shows up.
        async def ours() -> list[str]:
            size = await topic_size(vault_topics, f"{REQUESTS_TOPIC}.dlq")
            records = await read_topic(vault_topics, f"{REQUESTS_TOPIC}.dlq", count=max(size, 1))
            return [
                dlq_reason(r.headers) or ""
                for r in records
                if marker.encode() in (r.value or b"")
                and (dict(r.headers).get("atlas_dlq_consumer") or b"").decode() == consumer.name
            ]

        reasons = await wait_until(ours, timeout=30, interval=0.5)
        assert "invalid data" in reasons[0]
        assert "agent_id" in reasons[0]
