"""`make demo`: publish a few realistic mutations to a running `make run`, show what followed.

Usage: `python -m atlas_devstack.demo`. Prints the dossiers, their cases and milestones, the
requests in the destination queues and the notifications, as plain tables.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

import httpx

from atlas_devstack.hrsim import HR_TOPIC, PlanGenerator, PlannedEvent, load_garrisons, planned
from atlas_events.schemas import hr

SERVICES = {"catalog": 8101, "requests": 8102, "mobility": 8103, "notify": 8104, "vault": 8105}


@dataclass(frozen=True)
class Scenario:
    """The events to publish, and what each mutation's last revision is."""

    events: list[PlannedEvent]
    stories: dict[str, str]  # mutation_id -> what the demo shows with it

    @property
    def last_revisions(self) -> dict[str, int]:
        last: dict[str, int] = {}
        for event in self.events:
            last[event.mutation_id] = max(event.revision, last.get(event.mutation_id, 0))
        return last


def build_scenario(seed: int) -> Scenario:
    """Seven mutations: families, an overseas posting, a first posting, an amendment, a cancel."""
    generator = PlanGenerator(load_garrisons(), seed=seed, unresolved_ratio=0.0)
    events: list[PlannedEvent] = []
    later: list[PlannedEvent] = []
    stories: dict[str, str] = {}
    cast: Sequence[tuple[str, dict[str, Any]]] = (
        ("famille, 2 enfants", {"household": "couple+2", "overseas": False}),
        ("outre-mer, 1 enfant", {"household": "couple+1", "overseas": True}),
        ("premiere affectation", {"household": "single", "first_posting": True}),
        ("couple", {"household": "couple", "overseas": False}),
        ("famille, 3 enfants", {"household": "couple+3", "overseas": False}),
        ("date decalee (amended)", {"household": "couple+1", "overseas": False}),
        ("annulee (cancelled)", {"household": "couple", "overseas": False}),
    )
    for index, (story, options) in enumerate(cast):
        mutation = generator.announce(**options)
        # Every demo agent can be e-mailed and needs both kinds of help, so every path shows.
        agent = mutation.snapshot["agent"]
        agent.setdefault("email", f"{agent['given_name'].lower()}.{index}@example.fr")
        mutation.snapshot["needs"] = {"housing": True, "move": True}
        events.append(planned(mutation, hr.MUTATION_ANNOUNCED, mutation.snapshot))
        stories[mutation.snapshot["mutation_id"]] = story
        if index == 5:
            data = generator.amend(mutation, "report_date")
            later.append(planned(mutation, hr.MUTATION_AMENDED, data))
        if index == 6:
            later.append(planned(mutation, hr.MUTATION_CANCELLED, generator.cancel(mutation)))
    return Scenario(events + later, stories)


class PlatformDown(RuntimeError):
    """The platform does not answer on its usual ports."""


class Platform:
    """HTTP access to the running services with an ops token."""

    def __init__(self, host: str, token: str, timeout: float = 5.0) -> None:
        self.host = host
        self.client = httpx.Client(
            headers={"Authorization": f"Bearer {token}"}, timeout=timeout, trust_env=False
        )

    def url(self, service: str, path: str) -> str:
        return f"http://{self.host}:{SERVICES[service]}{path}"

    def check(self) -> None:
        down = []
        for service in SERVICES:
            try:
                ok = self.client.get(self.url(service, "/readyz")).status_code == 200
            except httpx.HTTPError:
                ok = False
            if not ok:
                down.append(f"{service} ({self.url(service, '/readyz')})")
        if down:
            raise PlatformDown(f"not ready: {', '.join(down)}")
        try:
            status = self.client.get(self.url("mobility", "/v1/whoami")).status_code
        except httpx.HTTPError as exc:
            raise PlatformDown(f"mobility does not answer: {exc!r}") from exc
        if status == 401:
            raise PlatformDown(
                "the services refuse the demo's token: run `make demo` with the same "
                "ATLAS_HOME (hence the same local signing key) as `make run`"
            )

    def get(self, service: str, path: str, **params: Any) -> Any:
        response = self.client.get(self.url(service, path), params=params)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()


def wait_for(what: str, probe: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Poll `probe` until true or `timeout` seconds pass; say so on stderr."""
    deadline = time.monotonic() + timeout
    while True:
        if probe():
            return True
        if time.monotonic() > deadline:
            print(f"warning: still waiting for {what} after {timeout:.0f} s", file=sys.stderr)
            return False
        time.sleep(interval)


def table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], out: TextIO
) -> None:
    """Print a plain-text table with a title and aligned columns."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    rule = "-+-".join("-" * w for w in widths)
    print(f"\n{title}", file=out)
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), file=out)
    print(rule, file=out)
    for row in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)), file=out)
    if not cells:
        print("(none)", file=out)


def _dossiers_settled(platform: Platform, scenario: Scenario, found: dict[str, Any]) -> bool:
    for mutation_id, revision in scenario.last_revisions.items():
        dossier = platform.get("mobility", f"/v1/dossiers/{mutation_id}")
        if dossier is None or dossier["revision"] < revision:
            return False
        found[mutation_id] = dossier
    return True


def _requests_opened(found: dict[str, Any], platform: Platform, scenario: Scenario) -> bool:
    _dossiers_settled(platform, scenario, found)
    cases = [c for d in found.values() for c in d["cases"] if d["status"] == "ouvert"]
    return all(c.get("request_status") for c in cases)


def run_demo(host: str, bootstrap: str, token: str, seed: int, timeout: float, out: TextIO) -> int:
    """Publish the scenario, wait for the platform to settle, print the tables."""
    from atlas_devstack.hrsim import publish

    platform = Platform(host, token)
    try:
        platform.check()
    except PlatformDown as exc:
        print(f"ATLAS is not running here ({exc}).", file=sys.stderr)
        print(
            "Start it with `make run` in another terminal, wait for 'ATLAS is running', "
            "then run `make demo` again.",
            file=sys.stderr,
        )
        return 2
    scenario = build_scenario(seed)
    try:
        asyncio.run(publish(scenario.events, bootstrap, topic=HR_TOPIC))
    except Exception as exc:  # the broker is part of the platform the check above saw
        print(f"error: publishing to {HR_TOPIC} at {bootstrap} failed: {exc!r}", file=sys.stderr)
        return 1
    print(f"published {len(scenario.events)} HR events (seed {seed}) to {HR_TOPIC}", file=out)

    found: dict[str, Any] = {}
    wait_for("the dossiers", lambda: _dossiers_settled(platform, scenario, found), timeout)
    wait_for(
        "the requests of the cases",
        lambda: _requests_opened(found, platform, scenario),
        timeout / 2,
    )
    agents = sorted({d["agent_id"] for d in found.values()})

    def notified() -> bool:
        return all(platform.get("notify", "/v1/notifications", recipient=agent) for agent in agents)

    wait_for("the agents' notifications", notified, timeout / 2)
    print_report(platform, scenario, found, out)
    return run_mission_demo(platform, bootstrap, seed, timeout, out)


def mission_events(seed: int, today: date | None = None) -> tuple[list[Any], list[str]]:
    """A departure (announced, leaves in six weeks) and a return (under way, back today)."""
    from atlas_devstack.hrsim import PlannedEvent
    from atlas_events.schemas import missions as ms

    day = today or datetime.now(UTC).date()
    source = "urn:atlas:rh:sirh-terre"
    events: list[PlannedEvent] = []
    ids = []
    for n, (leave, back) in enumerate(((40, 160), (-120, 0))):
        agent_id = f"{(seed * 7919 + n) % 10**10:010d}"
        mission_id = f"OPEX-DEMO-{seed % 10**6:06d}-{n + 1}"
        ids.append(mission_id)
        data = {
            "mission_id": mission_id,
            "revision": 1,
            "agent": {
                "agent_id": agent_id,
                "rank": "Sergent-chef",
                "given_name": ("Camille", "Yanis")[n],
                "family_name": ("Martin", "Benali")[n],
                "email": f"agent.{agent_id}@example.fr",
                "population": "militaire",
            },
            "home_commune_insee": "83137",
            "kind": "opex",
            "theatre": ("Opération Lynx (Estonie)", "FFDj (Djibouti)")[n],
            "departure_date": (day + timedelta(days=leave)).isoformat(),
            "planned_return_date": (day + timedelta(days=back)).isoformat(),
            "household": {
                "partner": True,
                "children": [{"child_ref": "c1", "birth_date": "2019-05-02"}],
            },
            "options": {"family_contact": True, "documents_to_deposit": n == 0},
        }
        events.append(PlannedEvent(ms.MISSION_ANNOUNCED, source, agent_id, data))
        if back == 0:
            returned = {
                "mission_id": mission_id,
                "revision": 2,
                "agent": {"agent_id": agent_id},
                "return_date": day.isoformat(),
            }
            events.append(PlannedEvent(ms.MISSION_RETURNED, source, agent_id, returned))
    return events, ids


def run_mission_demo(
    platform: Platform, bootstrap: str, seed: int, timeout: float, out: TextIO
) -> int:
    """Publish a departure and a return to hr.missions.v1, print the missions and their cases."""
    from atlas_devstack.hrsim import publish

    events, ids = mission_events(seed)
    try:
        asyncio.run(publish(events, bootstrap, topic=MISSIONS_TOPIC))
    except Exception as exc:
        print(f"error: publishing to {MISSIONS_TOPIC} failed: {exc!r}", file=sys.stderr)
        return 1
    print(f"\npublished {len(events)} mission events to {MISSIONS_TOPIC}", file=out)
    found: dict[str, Any] = {}

    def settled() -> bool:
        for mission_id in ids:
            found[mission_id] = platform.get("mobility", f"/v1/missions/{mission_id}")
        return all(found.values()) and found[ids[1]]["status"] == "en_retour"

    wait_for("the missions", settled, timeout / 2)
    missions = [m for m in found.values() if m]
    table(
        "Missions: departures and returns (mobility)",
        ("mission", "agent", "space", "departure", "return", "status"),
        [
            (
                m["mission_id"],
                m["agent_id"],
                m["atlas_id"] or "(national cell)",
                m["departure_date"],
                m["return_date"] or f"{m['planned_return_date']} (planned)",
                m["status"],
            )
            for m in missions
        ],
        out,
    )
    table(
        "Mission cases, milestones and requests (mobility → requests)",
        ("mission", "case", "status", "milestone", "due", "requests (prestations)"),
        [
            (
                m["mission_id"] if i == 0 else "",
                c["kind"] if i == 0 else "",
                c["status"] if i == 0 else "",
                step["code"],
                step["due_date"],
                ", ".join(c["prestation_codes"]) if i == 0 else "",
            )
            for m in missions
            for c in m["cases"]
            for i, step in enumerate(c["milestones"])
        ],
        out,
    )
    return 0


MISSIONS_TOPIC = "hr.missions.v1"


def print_requests(platform: Platform, dossiers: Sequence[dict[str, Any]], out: TextIO) -> None:
    """The requests the cases opened, as the requests service sees them."""
    requests: list[dict[str, Any]] = []
    try:
        for d in dossiers:
            page = platform.get("requests", "/v1/requests", agent_id=d["agent_id"])
            requests += (page or {"items": []})["items"]
    except httpx.HTTPStatusError as exc:
        problem = f"{exc.response.status_code} on GET {exc.request.url.path}"
    except httpx.HTTPError as exc:
        problem = repr(exc)
    else:
        problem = ""
    if problem is not None:
        # Still show the queue, from the request ids and statuses mobility mirrors.
        print(
            f"\nwarning: the requests service failed ({problem}); showing mobility's view", file=out
        )
        requests = [
            {
                "request_id": c["request_id"],
                "atlas_id": c["atlas_id"],
                "prestation_code": "?",
                "case_kind": c["kind"],
                "channel": "anticipation",
                "status": c.get("request_status"),
                "mutation_id": d["mutation_id"],
            }
            for d in dossiers
            for c in d["cases"]
            if c.get("request_id")
        ]
    table(
        "Requests in the destination queues (requests)",
        ("request", "space", "prestation", "case", "channel", "status", "mutation"),
        [
            (
                r["request_id"],
                r["atlas_id"],
                r["prestation_code"],
                r["case_kind"],
                r["channel"],
                r["status"],
                r["mutation_id"],
            )
            for r in sorted(requests, key=lambda r: (r["mutation_id"] or "", r["case_kind"] or ""))
        ],
        out,
    )


def print_report(
    platform: Platform, scenario: Scenario, found: dict[str, Any], out: TextIO
) -> None:
    """The four tables: dossiers, cases and milestones, requests, notifications."""
    dossiers = [found[m] for m in scenario.stories if m in found]
    table(
        "Dossiers (mobility)",
        ("mutation", "rev", "agent", "story", "destination space", "report", "status"),
        [
            (
                d["mutation_id"],
                d["revision"],
                d["agent_id"],
                scenario.stories[d["mutation_id"]],
                d["destination_atlas_id"] or "(national cell)",
                d["report_date"],
                d["status"],
            )
            for d in dossiers
        ],
        out,
    )
    rows: list[tuple[object, ...]] = []
    for d in dossiers:
        for case in d["cases"]:
            first = (d["mutation_id"], case["kind"], case["status"])
            for i, m in enumerate(case["milestones"] or [{}]):
                child = f" ({m['child_ref']})" if m.get("child_ref") else ""
                milestone = (f"{m.get('code', '')}{child}", m.get("due_date"), m.get("status"))
                rows.append((first if i == 0 else ("", "", "")) + milestone)
    table(
        "Cases and milestones (mobility)",
        ("mutation", "case", "status", "milestone", "due", "milestone status"),
        rows,
        out,
    )
    print_requests(platform, dossiers, out)
    notifications = []
    for d in dossiers:
        for n in platform.get("notify", "/v1/notifications", recipient=d["agent_id"]) or []:
            notifications.append((d["agent_id"], n))
    spaces = sorted({d["destination_atlas_id"] for d in dossiers if d["destination_atlas_id"]})
    for atlas_id in spaces:
        for n in (
            platform.get("notify", "/v1/notifications", recipient=atlas_id, kind="space_staff")
            or []
        ):
            notifications.append((atlas_id, n))
    table(
        "Notifications (notify)",
        ("recipient", "template", "reference", "channels", "status"),
        [
            (
                who,
                n["template"],
                n["reference"],
                ",".join(sorted({dl["channel"] for dl in n["deliveries"]})),
                n["status"],
            )
            for who, n in notifications
        ],
        out,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of `make demo`."""
    parser = argparse.ArgumentParser(prog="python -m atlas_devstack.demo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--seed", type=int, help="default: a new one each run (fresh mutations)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait at most")
    args = parser.parse_args(argv)

    from atlas_events.auth import LocalSigningKey, Role, default_local_key_path

    key_path = default_local_key_path()
    if not key_path.exists():
        print(
            f"ATLAS is not running here: no local key at {key_path}. Start it with `make run`.",
            file=sys.stderr,
        )
        return 2
    token = LocalSigningKey.load_or_create(key_path).issue("demo", [Role.OPS])
    seed = args.seed if args.seed is not None else uuid.uuid4().int % 10**9
    return run_demo(args.host, args.bootstrap, token, seed, args.timeout, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
