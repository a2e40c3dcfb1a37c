"""`make demo`: its scenario covers every path, and it says so clearly when ATLAS is not running."""

from __future__ import annotations

import io
import socket
from datetime import date

import pytest

from atlas_devstack import demo
from atlas_events.schemas import hr


def test_the_scenario_has_an_overseas_family_an_amendment_and_a_cancellation() -> None:
    scenario = demo.build_scenario(seed=42)
    announced = [e for e in scenario.events if e.type == hr.MUTATION_ANNOUNCED]
    assert 6 <= len(announced) <= 8
    assert any(e.data["destination"]["commune_insee"][:2] in {"97", "98"} for e in announced)
    assert any(
        any(
            2 * 365
            < (date.fromisoformat(e.data["report_date"]) - date.fromisoformat(c["birth_date"])).days
            < 17 * 365
            for c in e.data["household"]["children"]
        )
        for e in announced
    ), "a family with a school-age child"
    later = [e for e in scenario.events if e.type != hr.MUTATION_ANNOUNCED]
    assert {e.type for e in later} == {hr.MUTATION_AMENDED, hr.MUTATION_CANCELLED}
    first = {e.mutation_id: i for i, e in reversed(list(enumerate(scenario.events)))}
    assert all(scenario.events.index(e) > first[e.mutation_id] for e in later)
    assert all("email" in e.data["agent"] for e in announced)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the socket is


def test_demo_says_the_platform_is_not_running(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _closed_port()
    monkeypatch.setattr(demo, "SERVICES", dict.fromkeys(demo.SERVICES, port))
    out = io.StringIO()
    code = demo.run_demo("127.0.0.1", f"127.0.0.1:{port}", "token", 1, timeout=1, out=out)
    assert code == 2
    assert "ATLAS is not running here" in capsys.readouterr().err
    assert out.getvalue() == "", "nothing is published when the platform is down"


def test_the_demo_missions_are_a_departure_and_a_return_by_the_contract() -> None:
    from datetime import date

    from atlas_devstack.demo import mission_events
    from atlas_events.registry import REGISTRY
    from atlas_events.schemas import missions as ms

    events, ids = mission_events(42, today=date(2027, 3, 1))
    assert [e.type for e in events] == [
        ms.MISSION_ANNOUNCED,
        ms.MISSION_ANNOUNCED,
        ms.MISSION_RETURNED,
    ]
    for event in events:
        REGISTRY.validate(event.type, event.data)
    assert events[0].data["departure_date"] > "2027-03-01"  # leaves later: a departure
    assert events[2].data["mission_id"] == ids[1]  # the one under way comes back today
    assert events[2].data["return_date"] == "2027-03-01"
