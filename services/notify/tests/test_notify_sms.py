"""SMS through two HTTP providers: failover, a circuit breaker per provider, permanent refusals."""

from notify_factories import FakeSmsProvider, NotifyHarness, current_deliveries

AGENT = "2019123456"


def providers(primary: FakeSmsProvider, backup: FakeSmsProvider) -> list[dict[str, str]]:
    return [{"name": p.name, "url": p.url} for p in (primary, backup)]


async def with_phone(n: NotifyHarness, agent_id: str = AGENT) -> None:
    response = await n.client.put(
        f"/v1/contacts/{agent_id}", json={"phone": "+33612345678"}, headers=n.ops
    )
    assert response.status_code == 200


async def sms(n: NotifyHarness, key: str) -> dict[str, object]:
    sent = await n.send(key, recipient={"kind": "agent", "id": AGENT}, channels=["sms"])
    assert sent.status_code == 201, sent.text
    return {"id": sent.json()["id"]}


async def test_failover_to_the_backup_then_the_breaker_keeps_the_primary_out(
    notify_factory,
    sms_pair: tuple[FakeSmsProvider, FakeSmsProvider],  # type: ignore[no-untyped-def]
) -> None:
    primary, backup = sms_pair
    primary.mode = "error"
    settings = {
        "sms_providers": providers(primary, backup),
        "sms_breaker_failures": 2,
        "sms_breaker_reset_seconds": 60,
    }
    async with notify_factory(**settings) as n:
        await with_phone(n)
        for i in range(4):
            found = await n.wait_statuses(str((await sms(n, f"f{i}"))["id"]), {"sms": "delivered"})
            (delivery,) = current_deliveries(found)
            assert (delivery["provider"], delivery["attempts"]) == ("backup", 1)
        assert len(primary.calls) == 2  # then the circuit opened: no more calls
        assert len(backup.calls) == 4
        assert backup.calls[0]["to"] == "+33612345678"
        assert backup.calls[0]["body"].startswith("ATLAS : ")
        states = await n.client.get("/v1/ops/sms-providers", headers=n.ops)
        assert states.json() == {"primary": "open", "backup": "closed"}


async def test_half_open_breaker_lets_a_recovered_provider_back(
    notify_factory,
    sms_pair: tuple[FakeSmsProvider, FakeSmsProvider],  # type: ignore[no-untyped-def]
) -> None:
    primary, backup = sms_pair
    primary.mode = "error"
    settings = {
        "sms_providers": providers(primary, backup),
        "sms_breaker_failures": 1,
        "sms_breaker_reset_seconds": 0.3,
    }
    async with notify_factory(**settings) as n:
        await with_phone(n)
        await n.wait_statuses(str((await sms(n, "h1"))["id"]), {"sms": "delivered"})
        primary.mode = "ok"
        from atlas_events.testing import wait_until

        async def half_open() -> bool:
            states = await n.client.get("/v1/ops/sms-providers", headers=n.ops)
            return bool(states.json()["primary"] == "half_open")

        await wait_until(half_open, timeout=5)
        found = await n.wait_statuses(str((await sms(n, "h2"))["id"]), {"sms": "delivered"})
        assert current_deliveries(found)[0]["provider"] == "primary"
        states = await n.client.get("/v1/ops/sms-providers", headers=n.ops)
        assert states.json()["primary"] == "closed"


async def test_a_refused_number_fails_permanently_without_failover(
    notify_factory,
    sms_pair: tuple[FakeSmsProvider, FakeSmsProvider],  # type: ignore[no-untyped-def]
) -> None:
    primary, backup = sms_pair
    primary.mode = "reject"
    async with notify_factory(sms_providers=providers(primary, backup)) as n:
        await with_phone(n)
        found = await n.wait_statuses(str((await sms(n, "p1"))["id"]), {"sms": "permanent_failure"})
        assert current_deliveries(found)[0]["reason"] == "sms_rejected"
        assert backup.calls == []


async def test_both_providers_down_retry_then_technical_failure(
    notify_factory,
    sms_pair: tuple[FakeSmsProvider, FakeSmsProvider],  # type: ignore[no-untyped-def]
) -> None:
    primary, backup = sms_pair
    primary.mode = backup.mode = "error"
    async with notify_factory(
        sms_providers=providers(primary, backup), sms_breaker_failures=10
    ) as n:
        await with_phone(n)
        found = await n.wait_statuses(str((await sms(n, "d1"))["id"]), {"sms": "technical_failure"})
        (delivery,) = current_deliveries(found)
        assert delivery["attempts"] == 3
        assert delivery["dead_lettered"] is True
        assert "sms_providers_unavailable" in delivery["detail"]
        assert len(primary.calls) == len(backup.calls) == 3


def test_sms_segments_for_gsm7_and_ucs2() -> None:
    from atlas_notify.templates.sms import sms_length

    assert sms_length("a" * 160) == sms_length("a" * 160)
    assert (sms_length("a" * 160).segments, sms_length("a" * 161).segments) == (1, 2)
    assert sms_length("a" * 306).segments == 2
    assert sms_length("a" * 307).segments == 3
    assert sms_length("é" * 160).encoding == "GSM-7"  # é is in the GSM 03.38 alphabet
    assert sms_length("€" * 80).units == 160  # extension characters take two septets
    assert sms_length("€" * 81).segments == 2
    ucs2 = sms_length("Prise de poste à Brest : fête")  # ê is not GSM-7
    assert (ucs2.encoding, ucs2.segments) == ("UCS-2", 1)
    assert sms_length("ê" * 70).segments == 1
    assert sms_length("ê" * 71).segments == 2
    assert sms_length("ê" * 134).segments == 2
    assert sms_length("ê" * 135).segments == 3
    assert sms_length("😀" * 35).units == 70  # outside the BMP: two UTF-16 units each
