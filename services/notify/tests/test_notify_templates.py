"""Templates: versions, validation at save (422), previews, the sandbox, SMS length."""

from typing import Any

from notify_factories import NotifyHarness

from atlas_events.auth import Role


def template(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": "general",
        "variables": {"prenom": "Camille", "date": "30/08/2027"},
        "email_subject": "Rendez-vous le {{ date }}",
        "email_body": "Bonjour {{ prenom }}, rendez-vous le {{ date }}.",
        "sms_body": "ATLAS : rendez-vous le {{ date }}",
        "in_app_title": "Rendez-vous",
        "in_app_body": "Le {{ date }}",
    }
    body.update(overrides)
    return body


async def save(n: NotifyHarness, code: str, body: dict[str, Any]) -> Any:
    return await n.client.post(f"/v1/templates/{code}/versions", json=body, headers=n.admin)


async def test_versions_are_numbered_and_the_latest_is_used(notify: NotifyHarness) -> None:
    first = await save(notify, "rdv.confirme", template())
    assert first.status_code == 201, first.text
    assert (first.json()["version"], first.json()["sms_encoding"]) == (1, "GSM-7")
    second = await save(notify, "rdv.confirme", template(in_app_title="Rendez-vous confirmé"))
    assert second.json()["version"] == 2
    versions = await notify.client.get("/v1/templates/rdv.confirme/versions", headers=notify.admin)
    assert [v["version"] for v in versions.json()] == [1, 2]
    sent = await notify.send(
        "v", recipient={"kind": "agent", "id": "2019123456"}, template="rdv.confirme",
        params={"prenom": "Camille", "date": "01/09/2027"}, channels=["in_app"],
    )  # fmt: skip
    assert sent.json()["template_version"] == 2
    staff_try = await notify.client.post(
        "/v1/templates/rdv.confirme/versions", json=template(), headers=notify.staff()
    )
    assert staff_try.status_code == 403


async def test_undeclared_variables_and_syntax_errors_are_422_at_save(
    notify: NotifyHarness,
) -> None:
    undeclared = await save(
        notify, "bad.one", template(email_body="Bonjour {{ nom }} {{ prenom }}")
    )
    assert undeclared.status_code == 422
    assert undeclared.json()["error"] == "TemplateInvalid"
    assert undeclared.json()["detail"]["missing_variables"] == ["nom"]
    broken = await save(notify, "bad.one", template(sms_body="{{ date "))
    assert broken.status_code == 422
    assert broken.json()["detail"]["field"] == "sms_body"
    missing = await notify.client.get("/v1/templates/bad.one", headers=notify.admin)
    assert missing.status_code == 404  # nothing was written


async def test_the_sandbox_refuses_reaching_python_internals(notify: NotifyHarness) -> None:
    sneaky = template(
        variables={"prenom": "x", "date": "y"},
        in_app_body="{{ prenom.__class__.__mro__[1].__subclasses__() }}",
    )
    response = await save(notify, "bad.sandbox", sneaky)
    assert response.status_code == 422
    assert "not allowed" in response.json()["detail"]


async def test_sms_longer_than_allowed_is_refused_with_its_segments(notify: NotifyHarness) -> None:
    long_gsm = template(sms_body="ATLAS : " + "x" * 470 + " {{ date }}")
    response = await save(notify, "bad.sms", long_gsm)
    assert response.status_code == 422
    assert response.json()["detail"] == {
        "encoding": "GSM-7",
        "units": 489,
        "segments": 4,
        "max_segments": 3,
    }
    ucs2 = await save(notify, "ok.sms", template(sms_body="Fête le {{ date }} " + "ê" * 100))
    assert ucs2.status_code == 201, ucs2.text
    assert (ucs2.json()["sms_encoding"], ucs2.json()["sms_segments"]) == ("UCS-2", 2)


async def test_preview_renders_or_names_the_missing_variables(notify: NotifyHarness) -> None:
    ok = await notify.client.post(
        "/v1/templates/mobility.dossier_opened/preview",
        json={
            "params": {
                "destination": "ATLAS de Toulon",
                "report_date": "30/08/2027",
                "mutation_id": "TERRE-2027-004211",
                "cases": "logement",
            }
        },
        headers=notify.staff(),
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["in_app_title"] == "Votre dossier de mobilité est ouvert"
    assert "ATLAS de Toulon" in ok.json()["email_body"]
    assert ok.json()["sms_segments"] == 1
    missing = await notify.client.post(
        "/v1/templates/mobility.dossier_opened/preview",
        json={"params": {"destination": "Toulon"}},
        headers=notify.staff(),
    )
    assert missing.status_code == 422
    assert missing.json()["detail"]["missing_variables"] == ["cases", "mutation_id", "report_date"]
    agent = notify.token("2019123456", Role.AGENT)
    refused = await notify.client.get("/v1/templates", headers=agent)
    assert refused.status_code == 403


async def test_every_default_template_is_french_and_renders_its_examples(
    notify: NotifyHarness,
) -> None:
    listed = await notify.client.get("/v1/templates", headers=notify.admin)
    assert len(listed.json()) >= 15
    for item in listed.json():
        preview = await notify.client.post(
            f"/v1/templates/{item['code']}/preview",
            json={"params": item["variables"]},
            headers=notify.admin,
        )
        assert preview.status_code == 200, (item["code"], preview.text)
        assert item["sms_segments"] in (None, 1, 2, 3)
