"""The flagship: an HR event travels through every service, each its own process, to a shared file.

HR event → dossier and cases (mobility) → requests in the destination queue (requests) → the
agent's e-mail received by a real SMTP server (notify) → a vault document deposited by the agent
and shared with the staff member assigned to the request → the grant revoked when the request
closes. Real broker, PostgreSQL per service, clamd for the vault's scan; no blind sleeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from e2e_platform import Mailbox, Platform, free_port, poll, start_platform

from atlas_devstack.hrsim import PlanGenerator, load_garrisons, planned, publish
from atlas_events.auth import Role
from atlas_events.schemas import hr


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Mailbox]]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, mailbox
    finally:
        controller.stop()


@pytest.fixture
def clamd_address() -> Iterator[str]:
    from atlas_vault.devinfra import ClamdServer  # EICAR-only signatures: starts in seconds

    with ClamdServer() as server:
        yield server.address


@pytest.fixture
def platform(
    tmp_path: Path,
    kafka_bootstrap: str,
    database_url: Callable[[], str],
    smtp_server: tuple[int, Mailbox],
    clamd_address: str,
) -> Iterator[Platform]:
    home = tmp_path / "atlas"
    extra: dict[str, dict[str, str]] = {
        "notify": {
            "ATLAS_NOTIFY_SMTP_HOST": "127.0.0.1",
            "ATLAS_NOTIFY_SMTP_PORT": str(smtp_server[0]),
            # Equal ends mean no quiet hours: the e-mail must leave now, whatever the hour.
            "ATLAS_NOTIFY_QUIET_HOURS_START": "00:00",
            "ATLAS_NOTIFY_QUIET_HOURS_END": "00:00",
        },
        "vault": {
            "ATLAS_VAULT_CLAMD_ADDRESS": clamd_address,
            "ATLAS_VAULT_DATA_DIR": str(home / "vault"),
        },
    }
    with start_platform(
        home, kafka_bootstrap, lambda _service: database_url(), extra_env=extra
    ) as started:
        yield started


def _mutation(seed: int) -> tuple[hr.MutationAnnounced, Any]:
    """A family of four moving to a mainland garrison: housing, schooling and moving cases."""
    generator = PlanGenerator(load_garrisons(), seed=seed, unresolved_ratio=0.0)
    mutation = generator.announce(household="couple+2", overseas=False)
    snapshot = mutation.snapshot
    report = date.fromisoformat(snapshot["report_date"])
    agent_id = snapshot["agent"]["agent_id"]
    snapshot["agent"]["email"] = f"agent.{agent_id}@example.fr"
    snapshot["needs"] = {"housing": True, "move": True}
    snapshot["household"]["children"] = [
        {"child_ref": "c1", "birth_date": (report - timedelta(days=9 * 365)).isoformat()},
        {"child_ref": "c2", "birth_date": (report - timedelta(days=15 * 365)).isoformat()},
    ]
    event = planned(mutation, hr.MUTATION_ANNOUNCED, snapshot)
    return hr.MutationAnnounced.model_validate(event.data), event


@pytest.mark.timeout(180)
def test_hr_event_to_email_to_shared_document_revoked_on_close(
    platform: Platform, kafka_bootstrap: str, smtp_server: tuple[int, Mailbox]
) -> None:
    _, mailbox = smtp_server
    mutation, event = _mutation(secrets.randbelow(10**9))
    agent_id, mutation_id = mutation.agent.agent_id, mutation.mutation_id
    ops = platform.client("e2e-ops", Role.OPS)

    # 1. HR publishes the mutation on hr.mutations.v1, as the contract says.
    asyncio.run(publish([event], kafka_bootstrap))

    # 2. Mobility opens the dossier and its three cases, each with a request at the destination.
    def dossier_with_requests() -> dict[str, Any] | None:
        response = ops.get(platform.url("mobility", f"/v1/dossiers/{mutation_id}"))
        if response.status_code != 200:
            return None
        dossier: dict[str, Any] = response.json()
        cases = dossier["cases"]
        # A case holds its request's id from the start; the status comes once the requests
        # service has it.
        ready = len(cases) == 3 and all(c.get("request_status") for c in cases)
        return dossier if ready else None

    dossier = poll("the dossier and its requests", dossier_with_requests, timeout=45)
    destination = dossier["destination_atlas_id"]
    assert dossier["status"] == "ouvert"
    assert destination is not None
    cases = {c["kind"]: c for c in dossier["cases"]}
    assert set(cases) == {"logement", "scolarite", "demenagement"}
    assert {c["atlas_id"] for c in cases.values()} == {destination}

    # 3. The requests sit in the destination space's queue, channel anticipation.
    for kind, case in cases.items():
        response = ops.get(platform.url("requests", f"/v1/requests/{case['request_id']}"))
        assert response.status_code == 200, response.text
        request = response.json()
        assert request["atlas_id"] == destination
        assert request["channel"] == "anticipation"
        assert request["status"] == "soumise"
        assert (request["mutation_id"], request["case_kind"]) == (mutation_id, kind)

    # 4. The agent's e-mail (HR gave its address) reaches the SMTP server.
    address = mutation.agent.email
    assert address is not None
    emails = poll(f"an e-mail to {address}", lambda: mailbox.to(address), timeout=30)
    assert address in str(emails[0]["To"])
    assert emails[0]["Subject"]

    # 5. The logement request is assigned to a staff member of the destination space.
    request_id = cases["logement"]["request_id"]
    staff_id = f"staff-e2e-{secrets.token_hex(3)}"
    manager = platform.client("manager-e2e", Role.MANAGER, atlas_id=destination)
    added = manager.put(platform.url("requests", f"/v1/spaces/{destination}/staff/{staff_id}"))
    assert added.status_code == 200, added.text
    staff = platform.client(staff_id, Role.STAFF, atlas_id=destination)
    assigned = manager.post(
        platform.url("requests", f"/v1/requests/{request_id}/assignment"),
        json={"assignee": staff_id},
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assignee"] == staff_id

    # 6. The agent deposits a document in the vault; once scanned, shares it with that staff member.
    agent = platform.client(agent_id, Role.AGENT)
    content = f"Ordre de mutation {mutation_id}\n".encode() * 50
    deposited = agent.post(
        platform.url("vault", "/v1/documents"),
        params={
            "document_type": "ordre_mutation",
            "sha256": hashlib.sha256(content).hexdigest(),
            "filename": "ordre-mutation.txt",
        },
        content=content,
        headers={"Content-Type": "text/plain"},
    )
    assert deposited.status_code == 201, deposited.text
    document_id = deposited.json()["document"]["id"]

    def scanned() -> bool:
        response = agent.get(platform.url("vault", f"/v1/documents/{document_id}"))
        return response.status_code == 200 and response.json()["status"] == "available"

    poll("the document's malware scan", scanned, timeout=30)
    granted = agent.post(
        platform.url("vault", f"/v1/documents/{document_id}/grants"),
        json={
            "grantee": staff_id,
            "request_id": request_id,
            "atlas_id": destination,
            "expires_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
        },
    )
    assert granted.status_code == 201, granted.text
    grant_id = granted.json()["id"]
    read_url = platform.url("vault", f"/v1/documents/{document_id}/content")
    read = staff.get(read_url, params={"request_id": request_id})
    assert read.status_code == 200, read.text
    assert read.content == content
    outsider = platform.client("staff-e2e-other", Role.STAFF, atlas_id=destination)
    assert outsider.get(read_url, params={"request_id": request_id}).status_code in {403, 404}

    # 7. The staff member handles and closes the request: the vault revokes the grant by itself.
    for target in ("en_instruction", "terminee"):
        moved = staff.post(
            platform.url("requests", f"/v1/requests/{request_id}/transitions"),
            json={"to": target, "reason": "Logement attribué (test de bout en bout)"},
        )
        assert moved.status_code == 200, moved.text

    def revoked() -> dict[str, Any] | None:
        response = agent.get(platform.url("vault", f"/v1/documents/{document_id}/grants"))
        assert response.status_code == 200, response.text
        grant = next(g for g in response.json() if g["id"] == grant_id)
        return grant if grant["revoked_at"] is not None else None

    grant = poll("the grant's revocation after the request closed", revoked, timeout=30)
    assert grant["live"] is False
    assert staff.get(read_url, params={"request_id": request_id}).status_code in {403, 404}
