"""HR simulator: a realistic annual transfer plan published to `hr.mutations.v1` (CONTRACTS.md §1).

`generate_plan()` is pure and deterministic for a seed; `publish()` sends the events with the
idempotent producer, in binary CloudEvents mode, keyed by agent_id. `atlas hr publish` calls both.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TextIO

from pydantic import BaseModel

from atlas_devstack.paths import repo_root
from atlas_events.cloudevents import CloudEvent, to_kafka
from atlas_events.schemas import hr
from atlas_events.schemas.missions import (
    MISSION_AMENDED,
    MISSION_ANNOUNCED,
    MISSION_CANCELLED,
    MISSION_RETURNED,
    MissionAmended,
    MissionAnnounced,
)

HR_TOPIC: Final = "hr.mutations.v1"

# Approximate defence workforce of the main garrisons, in thousands (orders of magnitude from the
# ministry's public figures). communes.json carries no population, so these stand in for size;
# every other open space weighs DEFAULT_WEIGHT (a regiment or a base), overseas OVERSEAS_DEFAULT.
GARRISON_WEIGHTS: Final[dict[str, float]] = {
    "83137": 20.0, "29019": 12.0, "75056": 15.0, "50129": 4.0, "56121": 4.0, "57463": 5.0,
    "69123": 5.0, "33063": 4.0, "33281": 3.0, "13055": 4.0, "35238": 4.0, "67482": 4.0,
    "31555": 4.0, "13047": 3.0, "13103": 2.5, "40192": 3.5, "27229": 3.0, "45234": 2.0,
    "45055": 2.0, "52448": 2.5, "54395": 2.5, "78646": 4.0, "78551": 2.5, "94080": 3.0,
    "78640": 3.0, "83050": 3.0, "30189": 2.0, "34172": 2.0, "26362": 2.0, "64445": 2.5,
    "65440": 2.0, "11069": 1.5, "81065": 1.5, "38185": 2.0, "38524": 1.5, "63113": 2.0,
    "18033": 2.0, "18018": 2.0, "37261": 2.0, "86194": 1.5, "16015": 1.5, "16102": 1.5,
    "17299": 1.5, "83069": 2.0, "29105": 2.0, "29120": 1.5, "51388": 2.0, "25056": 1.5,
    "59350": 2.0, "49328": 1.5, "56075": 2.0, "83061": 1.5, "21231": 2.0, "84087": 1.5,
    "70311": 1.5, "60175": 1.5, "06088": 1.5,
    # overseas
    "98735": 3.0, "98715": 1.5, "98818": 3.0, "97411": 2.5, "97407": 1.0, "97209": 2.0,
    "97302": 2.0, "97304": 1.5, "97101": 1.5, "97611": 1.0, "97608": 1.0, "97502": 0.3,
}  # fmt: skip
DEFAULT_WEIGHT: Final = 1.0
OVERSEAS_DEFAULT: Final = 0.6
REDUCED_FACTOR: Final = 0.5  # a space working at reduced capacity sits in a smaller garrison
OWN_COMMUNE_SHARE: Final = 0.85  # else the unit is in a commune the space covers

# Communes no ATLAS space covers (Saint-Martin, Saint-Barthélemy, Wallis): dossiers `a_orienter`.
UNCOVERED_COMMUNES: Final = ("97801", "97701", "98613")

# Household mix of transferred personnel (orders of magnitude of the ministry's social surveys).
HOUSEHOLD_MIX: Final[tuple[tuple[str, int, int, float], ...]] = (
    # (name, partner, children, share)
    ("single", 0, 0, 0.38),
    ("couple", 1, 0, 0.20),
    ("couple+1", 1, 1, 0.16),
    ("couple+2", 1, 2, 0.16),
    ("couple+3", 1, 3, 0.10),
)
FIRST_POSTING_SHARE: Final = 0.12  # no origin: leaving school or training
NEEDS_HOUSING_SHARE: Final = 0.82
NEEDS_MOVE_SHARE: Final = 0.93
EMAIL_SHARE: Final = 0.9
PHONE_SHARE: Final = 0.8
OFF_SEASON_SHARE: Final = 0.1  # transfers outside the summer plan (replacements, promotions)


@dataclass(frozen=True)
class Branch:
    """An HR system issuing mutations: its source URI, id prefix, share and ranks by career."""

    name: str
    source: str
    share: float
    population: str
    ranks: tuple[tuple[str, ...], ...]  # junior, mid-career, senior
    unit_patterns: tuple[str, ...]
    favourite_communes: tuple[str, ...] = ()  # weighted up for this branch


BRANCHES: Final[tuple[Branch, ...]] = (
    Branch(
        "TERRE",
        "urn:atlas:rh:sirh-terre",
        0.50,
        "militaire",
        (
            ("Soldat de 1re classe", "Caporal", "Caporal-chef", "Sergent"),
            ("Sergent-chef", "Adjudant", "Lieutenant", "Capitaine"),
            ("Adjudant-chef", "Major", "Commandant", "Lieutenant-colonel", "Colonel"),
        ),
        ("Régiment de {commune}", "État-major de {commune}", "GSBdD de {commune}"),
    ),
    Branch(
        "MARINE",
        "urn:atlas:rh:sirh-marine",
        0.17,
        "militaire",
        (
            ("Matelot", "Quartier-maître de 1re classe", "Second maître"),
            ("Maître", "Premier maître", "Enseigne de vaisseau", "Lieutenant de vaisseau"),
            ("Maître principal", "Capitaine de corvette", "Capitaine de frégate"),
        ),
        ("Base navale de {commune}", "Base d'aéronautique navale de {commune}"),
        ("83137", "29019", "50129", "56121", "29105", "29120", "83069", "98735", "98818", "97209"),
    ),
    Branch(
        "AIR",
        "urn:atlas:rh:sirh-air",
        0.16,
        "militaire",
        (
            ("Aviateur de 1re classe", "Caporal-chef", "Sergent"),
            ("Sergent-chef", "Adjudant", "Lieutenant", "Capitaine"),
            ("Adjudant-chef", "Commandant", "Lieutenant-colonel", "Colonel"),
        ),
        ("Base aérienne de {commune}", "Escadron de soutien de {commune}"),
        ("40192", "13047", "13103", "52448", "45055", "18018", "33281", "27229", "78640"),
    ),
    Branch(
        "SGA",
        "urn:atlas:rh:sirh-civils",
        0.17,
        "civil",
        (
            ("Adjoint administratif", "Technicien", "Ouvrier de l'État"),
            ("Secrétaire administratif", "Technicien supérieur", "Attaché d'administration"),
            ("Ingénieur d'études", "Attaché principal", "Ingénieur divisionnaire"),
        ),
        ("Établissement du SGA de {commune}", "Centre ministériel de gestion de {commune}"),
    ),
)
BRANCH_BONUS: Final = 3.0

GIVEN_NAMES: Final = (
    "Camille", "Lucas", "Léa", "Hugo", "Manon", "Thomas", "Chloé", "Nicolas", "Emma", "Julien",
    "Sarah", "Maxime", "Laura", "Antoine", "Inès", "Alexandre", "Julie", "Kevin", "Marine",
    "Romain", "Pauline", "Mathieu", "Anaïs", "Quentin", "Claire", "Yannick", "Élodie", "Mehdi",
    "Sophie", "Florian", "Aurélie", "Bastien", "Nadia", "Cédric", "Laetitia", "Teva", "Moana",
    "Kévin", "Océane", "Yacine",
)  # fmt: skip
FAMILY_NAMES: Final = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau",
    "Laurent", "Simon", "Michel", "Lefèbvre", "Leroy", "Roux", "David", "Bertrand", "Morel",
    "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent",
    "Muller", "Le Gall", "Faure", "André", "Mercier", "Blanc", "Guérin", "Boyer", "Garnier",
    "Chevalier", "François", "Legrand", "Gauthier", "Le Goff", "Tehei", "Benali", "Nguyen",
)  # fmt: skip

AMENDMENT_KINDS: Final = (  # (kind, share among amendments)
    ("report_date", 0.5),
    ("destination", 0.2),
    ("household", 0.2),
    ("needs", 0.1),
)
CANCEL_REASONS: Final = (
    "Affectation annulée par la DRH",
    "Mutation reportée au plan suivant",
    "Départ de l'institution",
    "Annulation à la demande de l'agent (raisons familiales)",
    "Poste supprimé dans la nouvelle organisation",
)


@dataclass(frozen=True)
class Garrison:
    """A destination: an ATLAS space, the communes it serves and its relative size."""

    atlas_id: str
    commune_insee: str
    commune_name: str
    covers: tuple[str, ...]
    overseas: bool
    weight: float


@dataclass(frozen=True)
class PlannedEvent:
    """One HR event of the plan: its CloudEvents type and source, key and JSON data."""

    type: str
    source: str
    key: str  # the agent_id (CONTRACTS.md §1)
    data: dict[str, Any]

    @property
    def mutation_id(self) -> str:
        """The order the event is about: the mutation, or the mission (hr.missions.v1)."""
        return str(self.data.get("mutation_id") or self.data["mission_id"])

    @property
    def revision(self) -> int:
        return int(self.data["revision"])

    def cloud_event(self, *, event_id: str | None = None, at: datetime | None = None) -> CloudEvent:
        """The CloudEvent to publish (a fresh id and the current time unless given)."""
        return CloudEvent.create(
            self.type, self.source, self.data, subject=self.mutation_id, id=event_id, time=at
        )


def load_garrisons(spaces_path: Path | None = None) -> list[Garrison]:
    """Every open or reduced ATLAS space as a weighted destination (closed spaces take nobody)."""
    path = spaces_path or repo_root() / "services" / "catalog" / "refdata" / "spaces.json"
    garrisons = []
    for space in json.loads(path.read_text(encoding="utf-8")):
        if space["status"] == "closed":
            continue
        overseas = space["zone"] != "metro"
        weight = GARRISON_WEIGHTS.get(
            space["commune_insee"], OVERSEAS_DEFAULT if overseas else DEFAULT_WEIGHT
        )
        if space["status"] == "reduced":
            weight *= REDUCED_FACTOR
        garrisons.append(
            Garrison(
                atlas_id=space["atlas_id"],
                commune_insee=space["commune_insee"],
                commune_name=space["commune_name"],
                covers=tuple(space["covers"]),
                overseas=overseas,
                weight=weight,
            )
        )
    return garrisons


def summer_season(today: date) -> tuple[date, date]:
    """The next summer transfer season months ahead: mid-June to mid-September."""
    year = today.year if today < date(today.year, 3, 1) else today.year + 1
    return date(year, 6, 15), date(year, 9, 15)


def _weighted(rng: random.Random, items: Sequence[Any], weights: Sequence[float]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


def _years_before(day: date, years: int, extra_days: int) -> date:
    try:
        anniversary = day.replace(year=day.year - years)
    except ValueError:  # 29 February
        anniversary = day.replace(year=day.year - years, day=28)
    return anniversary - timedelta(days=extra_days)


@dataclass
class DraftMutation:
    """A mutation being drawn: its issuing branch and its latest snapshot and revision."""

    branch: Branch
    snapshot: dict[str, Any]
    revision: int = 1


class PlanGenerator:
    """Draws mutations, their amendments and cancellations from one seeded random source."""

    def __init__(
        self,
        garrisons: Sequence[Garrison],
        *,
        seed: int | None = None,
        today: date | None = None,
        overseas_ratio: float = 0.12,
        unresolved_ratio: float = 0.005,
    ) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - a simulation, reproducible by its seed
        self.today = today or datetime.now(UTC).date()
        self.metro = [g for g in garrisons if not g.overseas]
        self.overseas = [g for g in garrisons if g.overseas]
        if not self.metro or not self.overseas:
            raise ValueError("the plan needs both mainland and overseas garrisons")
        self.overseas_ratio = overseas_ratio
        self.unresolved_ratio = unresolved_ratio
        self.season = summer_season(self.today)
        self._serials: set[int] = set()
        self._agents: set[str] = set()

    # ---- drawing the parts of a snapshot ------------------------------------------------------

    def branch(self) -> Branch:
        return _weighted(self.rng, BRANCHES, [b.share for b in BRANCHES])  # type: ignore[no-any-return]

    def garrison(self, branch: Branch, *, overseas: bool | None = None) -> Garrison:
        """A garrison weighted by size (and by the branch's own bases)."""
        if overseas is None:
            overseas = self.rng.random() < self.overseas_ratio
        pool = self.overseas if overseas else self.metro
        weights = [
            g.weight * (BRANCH_BONUS if g.commune_insee in branch.favourite_communes else 1.0)
            for g in pool
        ]
        return _weighted(self.rng, pool, weights)  # type: ignore[no-any-return]

    def posting(self, branch: Branch, garrison: Garrison) -> dict[str, str]:
        commune, name = garrison.commune_insee, garrison.commune_name
        if garrison.covers and self.rng.random() > OWN_COMMUNE_SHARE:
            commune = self.rng.choice(garrison.covers)
        unit = self.rng.choice(branch.unit_patterns).format(commune=name)
        return {"unit": unit, "commune_insee": commune}

    def destination(self, branch: Branch, *, overseas: bool | None = None) -> dict[str, str]:
        if overseas is None and self.rng.random() < self.unresolved_ratio:
            return {
                "unit": "Détachement outre-mer",
                "commune_insee": self.rng.choice(UNCOVERED_COMMUNES),
            }
        return self.posting(branch, self.garrison(branch, overseas=overseas))

    def report_date(self) -> date:
        """A date in the summer season (peaking in July-August), or now and then off-season."""
        start, end = self.season
        if self.rng.random() < OFF_SEASON_SHARE:
            earliest = self.today + timedelta(days=60)
            return earliest + timedelta(days=self.rng.randrange(0, 300))
        span = (end - start).days
        # A triangular draw centred on late July: most report dates fall in the school holidays.
        return start + timedelta(days=round(self.rng.triangular(0, span, span * 0.45)))

    def agent_id(self, enlisted: int) -> str:
        while True:
            candidate = f"{enlisted:04d}{self.rng.randrange(0, 1_000_000):06d}"
            if candidate not in self._agents:
                self._agents.add(candidate)
                return candidate

    def mutation_id(self, branch: Branch, report: date) -> str:
        while True:
            serial = self.rng.randrange(1, 1_000_000)
            if serial not in self._serials:
                self._serials.add(serial)
                return f"{branch.name}-{report.year}-{serial:06d}"

    def household(self, age: int, report: date, kind: str | None = None) -> dict[str, Any]:
        """Partner and children with ages a parent of `age` plausibly has."""
        names = [mix[0] for mix in HOUSEHOLD_MIX]
        if kind is None:
            kind = _weighted(self.rng, names, [mix[3] for mix in HOUSEHOLD_MIX])
        _, partner, count, _ = HOUSEHOLD_MIX[names.index(kind)]
        oldest_possible = max(0, min(19, age - 21))
        children = []
        child_age = self.rng.randint(min(oldest_possible, 1), oldest_possible) if count else 0
        for index in range(count):
            birth = _years_before(report, child_age, self.rng.randrange(0, 365))
            children.append({"child_ref": f"c{index + 1}", "birth_date": birth.isoformat()})
            child_age = max(0, child_age - self.rng.randint(1, 4))
        return {"partner": bool(partner), "children": children}

    def announce(
        self,
        *,
        overseas: bool | None = None,
        household: str | None = None,
        first_posting: bool | None = None,
    ) -> DraftMutation:
        """Draw the first revision of one mutation."""
        branch = self.branch()
        report = self.report_date()
        if first_posting is None:
            first_posting = self.rng.random() < FIRST_POSTING_SHARE
        # Leaving school or training means a young agent; otherwise most movers are in their 30s.
        age = self.rng.randint(19, 26) if first_posting else int(self.rng.triangular(22, 57, 32))
        if household not in (None, "single", "couple"):
            age = max(age, self.rng.randint(27, 45))  # a parent old enough to have school-age kids
        household_kind = household
        if household_kind is None and age < 25:
            household_kind = "single" if self.rng.random() < 0.75 else None
        career = 0 if age < 28 else 1 if age < 42 else 2
        given, family = self.rng.choice(GIVEN_NAMES), self.rng.choice(FAMILY_NAMES)
        agent: dict[str, Any] = {
            "agent_id": self.agent_id(min(report.year - 1, report.year - age + 20)),
            "rank": self.rng.choice(branch.ranks[career]),
            "given_name": given,
            "family_name": family,
            "population": branch.population,
        }
        if self.rng.random() < EMAIL_SHARE:
            local = f"{given}.{family}".lower().replace(" ", "-").replace("'", "")
            agent["email"] = f"{_ascii(local)}.{self.rng.randrange(10, 99)}@example.fr"
        if self.rng.random() < PHONE_SHARE:
            agent["phone"] = f"+33{self.rng.choice('67')}{self.rng.randrange(0, 10**8):08d}"
        snapshot: dict[str, Any] = {
            "mutation_id": self.mutation_id(branch, report),
            "revision": 1,
            "agent": agent,
            "destination": self.destination(branch, overseas=overseas),
            "report_date": report.isoformat(),
            "household": self.household(age, report, household_kind),
            "needs": {
                "housing": self.rng.random() < NEEDS_HOUSING_SHARE,
                "move": self.rng.random() < NEEDS_MOVE_SHARE,
            },
        }
        if not first_posting:
            origin = self.posting(branch, self.garrison(branch, overseas=False))
            if origin["commune_insee"] == snapshot["destination"]["commune_insee"]:
                origin = self.posting(branch, self.garrison(branch, overseas=False))
            snapshot["origin"] = origin
        return DraftMutation(branch, snapshot)

    # ---- revisions ----------------------------------------------------------------------------

    def amend(self, mutation: DraftMutation, kind: str | None = None) -> dict[str, Any]:
        """A new full snapshot with one realistic change, at the next revision."""
        if kind is None:
            kinds = [k for k, _ in AMENDMENT_KINDS]
            kind = _weighted(self.rng, kinds, [share for _, share in AMENDMENT_KINDS])
        snapshot = json.loads(json.dumps(mutation.snapshot))
        mutation.revision += 1
        snapshot["revision"] = mutation.revision
        if kind == "report_date":
            shift = self.rng.choice((-3, -2, -1, 1, 1, 2, 3, 4, 6)) * 7
            report = date.fromisoformat(snapshot["report_date"]) + timedelta(days=shift)
            snapshot["report_date"] = max(report, self.today + timedelta(days=30)).isoformat()
        elif kind == "destination":
            overseas = snapshot["destination"]["commune_insee"][:2] in {"97", "98"}
            snapshot["destination"] = self.destination(mutation.branch, overseas=overseas)
        elif kind == "household":
            household = snapshot["household"]
            report = date.fromisoformat(snapshot["report_date"])
            if household["partner"] and len(household["children"]) < 4:
                # A birth announced after the plan was published.
                ref = f"c{len(household['children']) + 1}"
                birth = report - timedelta(days=self.rng.randrange(0, 120))
                household["children"].append({"child_ref": ref, "birth_date": birth.isoformat()})
            else:
                household["partner"] = not household["partner"]
        else:
            needs = snapshot["needs"]
            needs["housing"] = not needs["housing"]
        mutation.snapshot = snapshot
        return snapshot  # type: ignore[no-any-return]

    def cancel(self, mutation: DraftMutation) -> dict[str, Any]:
        mutation.revision += 1
        return {
            "mutation_id": mutation.snapshot["mutation_id"],
            "revision": mutation.revision,
            "agent": {"agent_id": mutation.snapshot["agent"]["agent_id"]},
            "reason": self.rng.choice(CANCEL_REASONS),
        }


def _ascii(text: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii())


def _validated(ce_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """Check data against the contract's model; return it as the JSON that will travel."""
    models: dict[str, type[BaseModel]] = {
        hr.MUTATION_ANNOUNCED: hr.MutationAnnounced,
        hr.MUTATION_AMENDED: hr.MutationAmended,
        hr.MUTATION_CANCELLED: hr.MutationCancelled,
    }
    return models[ce_type].model_validate(data).model_dump(mode="json", exclude_none=True)


def planned(mutation: DraftMutation, ce_type: str, data: dict[str, Any]) -> PlannedEvent:
    """Wrap one revision of `mutation` as a validated event."""
    agent_id = str(data["agent"]["agent_id"])
    return PlannedEvent(ce_type, mutation.branch.source, agent_id, _validated(ce_type, data))


def generate_plan(
    count: int,
    *,
    seed: int | None = None,
    amend_ratio: float = 0.08,
    cancel_ratio: float = 0.03,
    overseas_ratio: float = 0.12,
    today: date | None = None,
    garrisons: Sequence[Garrison] | None = None,
) -> list[PlannedEvent]:
    """`count` announced mutations, plus amendments and cancellations as later revisions.

    About `amend_ratio` of the mutations get one amendment and `cancel_ratio` are cancelled
    (after their amendment, if any); each revision comes later in the stream than its parent.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    for name, ratio in (
        ("amend", amend_ratio),
        ("cancel", cancel_ratio),
        ("overseas", overseas_ratio),
    ):
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"{name} ratio must be between 0 and 1")
    generator = PlanGenerator(
        garrisons if garrisons is not None else load_garrisons(),
        seed=seed,
        today=today,
        overseas_ratio=overseas_ratio,
    )
    rng = generator.rng
    ordered: list[tuple[float, int, PlannedEvent]] = []
    sequence = 0
    lag = max(1.0, count * 0.3)  # how far behind its announcement a revision may come
    for position in range(count):
        mutation = generator.announce()
        ordered.append(
            (position, sequence, planned(mutation, hr.MUTATION_ANNOUNCED, mutation.snapshot))
        )
        sequence += 1
        at = float(position)
        if rng.random() < amend_ratio:
            at += rng.uniform(0.5, lag)
            data = generator.amend(mutation)
            ordered.append((at, sequence, planned(mutation, hr.MUTATION_AMENDED, data)))
            sequence += 1
        if rng.random() < cancel_ratio:
            at += rng.uniform(0.5, lag)
            data = generator.cancel(mutation)
            ordered.append((at, sequence, planned(mutation, hr.MUTATION_CANCELLED, data)))
            sequence += 1
    ordered.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in ordered]


# ---- publishing ---------------------------------------------------------------------------------


class ProgressBar:
    """A plain-text progress bar on a stream: redrawn in place on a terminal, else every 10 %."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.done = 0
        self.started = time.monotonic()
        self._tty = self.stream.isatty()
        self._last_decile = -1

    def advance(self, n: int = 1) -> None:
        self.done += n
        decile = self.done * 10 // max(self.total, 1)
        if self._tty:
            self._draw("\r", "")
        elif decile != self._last_decile or self.done == self.total:
            self._draw("", "\n")
        self._last_decile = decile

    def _draw(self, prefix: str, suffix: str) -> None:
        fraction = self.done / self.total if self.total else 1.0
        filled = round(self.width * fraction)
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        bar = "#" * filled + "." * (self.width - filled)
        line = f"[{bar}] {self.done}/{self.total} {fraction:4.0%} {rate:7.1f} events/s"
        self.stream.write(prefix + line + suffix)
        self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()


@dataclass(frozen=True)
class PublishResult:
    """What was sent: counts by event type, and the seconds it took."""

    announced: int
    amended: int
    cancelled: int
    seconds: float

    @property
    def total(self) -> int:
        return self.announced + self.amended + self.cancelled


async def publish(
    events: Sequence[PlannedEvent],
    bootstrap: str,
    *,
    topic: str = HR_TOPIC,
    on_sent: Callable[[int], None] | None = None,
    window: int = 500,
) -> PublishResult:
    """Send `events` in order with the idempotent producer; `on_sent(n)` as acks arrive."""
    from atlas_events.kafka import make_producer

    started = time.monotonic()
    producer = make_producer(bootstrap, client_id="atlas-hr-simulator")
    try:
        await producer.start()
        pending: list[asyncio.Future[Any]] = []
        for event in events:
            message = to_kafka(event.cloud_event(), key=event.key)
            future = await producer.send(
                topic, value=message.value, key=message.key, headers=message.headers
            )
            if on_sent is not None:
                future.add_done_callback(
                    lambda f: on_sent(1) if not f.cancelled() and f.exception() is None else None
                )
            pending.append(future)
            if len(pending) >= window:  # bounded memory, and errors surface early
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    counts = {
        t: sum(1 for e in events if e.type == t)
        for t in (hr.MUTATION_ANNOUNCED, hr.MUTATION_AMENDED, hr.MUTATION_CANCELLED)
    }
    return PublishResult(
        announced=counts[hr.MUTATION_ANNOUNCED],
        amended=counts[hr.MUTATION_AMENDED],
        cancelled=counts[hr.MUTATION_CANCELLED],
        seconds=time.monotonic() - started,
    )


def describe_plan(events: Sequence[PlannedEvent]) -> str:
    """A one-paragraph summary of a plan, for the operator."""
    announced = [e for e in events if e.type == hr.MUTATION_ANNOUNCED]
    overseas = sum(
        1 for e in announced if e.data["destination"]["commune_insee"][:2] in {"97", "98"}
    )
    children = sum(1 for e in announced if e.data["household"]["children"])
    amended = sum(1 for e in events if e.type == hr.MUTATION_AMENDED)
    cancelled = sum(1 for e in events if e.type == hr.MUTATION_CANCELLED)
    n = max(len(announced), 1)
    return (
        f"{len(announced)} mutations ({overseas} overseas, {overseas / n:.0%}; "
        f"{children} families with children), {amended} amendments, {cancelled} cancellations"
    )


def run_publish(
    *,
    count: int,
    bootstrap: str,
    topic: str = HR_TOPIC,
    seed: int | None = None,
    amend_ratio: float = 0.08,
    cancel_ratio: float = 0.03,
    overseas_ratio: float = 0.12,
    stderr: TextIO | None = None,
) -> int:
    """`atlas hr publish`: generate a plan, publish it with a progress bar, print a summary."""
    err = stderr if stderr is not None else sys.stderr
    if seed is None:
        seed = uuid.uuid4().int % 10**9  # printed, so a run can be replayed
    events = generate_plan(
        count,
        seed=seed,
        amend_ratio=amend_ratio,
        cancel_ratio=cancel_ratio,
        overseas_ratio=overseas_ratio,
    )
    print(f"plan (seed {seed}): {describe_plan(events)}", file=err)
    bar = ProgressBar(len(events), err)
    try:
        result = asyncio.run(publish(events, bootstrap, topic=topic, on_sent=bar.advance))
    except Exception as exc:  # broker unreachable, topic missing: one clear line, not a trace
        bar.close()
        print(f"error: publishing to {topic} at {bootstrap} failed: {exc!r}", file=err)
        return 1
    bar.close()
    rate = result.total / max(result.seconds, 1e-6)
    print(
        f"published {result.total} events to {topic} in {result.seconds:.1f} s ({rate:.0f}/s): "
        f"{result.announced} announced, {result.amended} amended, {result.cancelled} cancelled",
        file=err,
    )
    return 0


# ---- missions (hr.missions.v1) ------------------------------------------------------------------

MISSIONS_TOPIC = "hr.missions.v1"
# Kind, share and duration range in days (OPEX of four to six months, Sentinelle-type internal
# missions of one to two months, embarquements of two to five).
MISSION_KINDS: tuple[tuple[str, float, int, int], ...] = (
    ("opex", 0.45, 120, 180),
    ("mission_interieure", 0.25, 30, 60),
    ("embarquement", 0.20, 60, 150),
    ("other", 0.10, 14, 90),
)
THEATRES = {
    "opex": ("Opération Lynx (Estonie)", "Opération Aigle (Roumanie)", "FFDj (Djibouti)",
             "Opération Chammal (Irak)", "FINUL (Liban)"),
    "mission_interieure": ("Opération Sentinelle", "Opération Harpie (Guyane)",
                           "Renfort Vigipirate"),
    "embarquement": ("Mission Jeanne d'Arc", "Groupe aéronaval", "Mission Corymbe"),
    "other": ("Stage à l'étranger", "Mission de coopération"),
}  # fmt: skip
MISSION_PREFIXES = {"opex": "OPEX", "mission_interieure": "MINT", "embarquement": "EMBQ"}
MISSION_CANCEL_REASONS = (
    "Mission annulée par l'état-major",
    "Désignation reportée",
    "Inaptitude temporaire",
)
MISSION_AMEND_SHARE = 0.10
MISSION_CANCEL_SHARE = 0.04
MISSION_UNDER_WAY_SHARE = 0.30  # already left: some are back, a few overdue (never reported)
MISSION_RETURN_REPORTED_SHARE = 0.9


def generate_missions(
    count: int,
    *,
    seed: int | None = None,
    today: date | None = None,
    garrisons: Sequence[Garrison] | None = None,
) -> list[PlannedEvent]:
    """`count` announced missions, plus amendments, cancellations and returns as later
    revisions: the household and home commune drawn as for mutations (the garrison's)."""
    generator = PlanGenerator(
        garrisons or load_garrisons(), seed=seed, today=today, unresolved_ratio=0.005
    )
    rng, day = generator.rng, generator.today
    announced: list[PlannedEvent] = []
    later: list[PlannedEvent] = []
    for n in range(count):
        draft = generator.announce()
        base = draft.snapshot
        kind, _, shortest, longest = _weighted(rng, MISSION_KINDS, [k[1] for k in MISSION_KINDS])
        under_way = rng.random() < MISSION_UNDER_WAY_SHARE
        leave = day + timedelta(days=rng.randint(-200, -5) if under_way else rng.randint(10, 120))
        back = leave + timedelta(days=rng.randint(shortest, longest))
        prefix = MISSION_PREFIXES.get(kind, "MISS")
        mission_id = f"{prefix}-{leave.year}-{n + 1:06d}-{rng.randrange(16**4):04X}"
        snapshot: dict[str, Any] = {
            "mission_id": mission_id,
            "revision": 1,
            "agent": base["agent"],
            "home_commune_insee": base["destination"]["commune_insee"],
            "kind": kind,
            "theatre": rng.choice(THEATRES[kind]),
            "departure_date": leave.isoformat(),
            "planned_return_date": back.isoformat(),
            "household": base["household"],
            "options": {
                "family_contact": rng.random() < 0.7,
                "documents_to_deposit": rng.random() < 0.4,
            },
        }
        source, key = draft.branch.source, str(base["agent"]["agent_id"])
        announced.append(
            PlannedEvent(MISSION_ANNOUNCED, source, key, _validated_mission(MISSION_ANNOUNCED,
                                                                            snapshot))
        )  # fmt: skip
        revision = 1
        if not under_way and rng.random() < MISSION_CANCEL_SHARE:
            revision += 1
            reason = rng.choice(MISSION_CANCEL_REASONS)
            data = {"mission_id": mission_id, "revision": revision, "agent": {"agent_id": key},
                    "reason": reason}  # fmt: skip
            later.append(PlannedEvent(MISSION_CANCELLED, source, key, data))
            continue
        if rng.random() < MISSION_AMEND_SHARE:
            revision += 1
            back = back + timedelta(days=rng.choice((-21, -14, 14, 30, 45)))
            back = max(back, leave)
            amended = {**snapshot, "revision": revision, "planned_return_date": back.isoformat()}
            later.append(
                PlannedEvent(MISSION_AMENDED, source, key, _validated_mission(MISSION_AMENDED,
                                                                              amended))
            )  # fmt: skip
        if back < day and rng.random() < MISSION_RETURN_REPORTED_SHARE:
            revision += 1
            actual = min(day, back + timedelta(days=rng.randint(-3, 3)))
            data = {"mission_id": mission_id, "revision": revision, "agent": {"agent_id": key},
                    "return_date": actual.isoformat()}  # fmt: skip
            later.append(PlannedEvent(MISSION_RETURNED, source, key, data))
    return announced + later


def _validated_mission(ce_type: str, data: dict[str, Any]) -> dict[str, Any]:
    models: dict[str, type[BaseModel]] = {
        MISSION_ANNOUNCED: MissionAnnounced,
        MISSION_AMENDED: MissionAmended,
    }
    return models[ce_type].model_validate(data).model_dump(mode="json", exclude_none=True)


def describe_missions(events: Sequence[PlannedEvent]) -> str:
    kinds: dict[str, int] = {}
    for e in events:
        if e.type == MISSION_ANNOUNCED:
            kinds[e.data["kind"]] = kinds.get(e.data["kind"], 0) + 1
    count = {t: sum(1 for e in events if e.type == t) for t in
             (MISSION_AMENDED, MISSION_CANCELLED, MISSION_RETURNED)}  # fmt: skip
    mix = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return (
        f"{sum(kinds.values())} missions ({mix}), {count[MISSION_AMENDED]} amendments, "
        f"{count[MISSION_CANCELLED]} cancellations, {count[MISSION_RETURNED]} returns"
    )


def run_publish_missions(
    *,
    count: int,
    bootstrap: str,
    topic: str = MISSIONS_TOPIC,
    seed: int | None = None,
    stderr: TextIO | None = None,
) -> int:
    """`atlas hr publish --missions N`: generate missions, publish with a progress bar."""
    err = stderr if stderr is not None else sys.stderr
    if seed is None:
        seed = uuid.uuid4().int % 10**9
    events = generate_missions(count, seed=seed)
    print(f"missions (seed {seed}): {describe_missions(events)}", file=err)
    bar = ProgressBar(len(events), err)
    try:
        result = asyncio.run(publish(events, bootstrap, topic=topic, on_sent=bar.advance))
    except Exception as exc:
        bar.close()
        print(f"error: publishing to {topic} at {bootstrap} failed: {exc!r}", file=err)
        return 1
    bar.close()
    print(f"published {len(events)} events to {topic} in {result.seconds:.1f} s", file=err)
    return 0


__all__ = [
    "HR_TOPIC",
    "DraftMutation",
    "Garrison",
    "PlanGenerator",
    "PlannedEvent",
    "ProgressBar",
    "PublishResult",
    "describe_plan",
    "generate_missions",
    "generate_plan",
    "load_garrisons",
    "planned",
    "publish",
    "run_publish",
    "run_publish_missions",
]
