"""The three handlers: each turns a mutation snapshot into its case's work item, from its policy.

A handler is a pure unit: given the snapshot and where it sends the agent, it says whether its
case is needed and what it holds (milestones, prestation, details). The stage that applies the
mutation calls them in its own transaction (`DossierDecision`), persists what they plan through
`CaseHandler`, and publishes each work item on the handler's topic as a fact for integrators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import ClassVar, Final

from atlas_events.schemas import hr, mobility
from atlas_events.schemas._base import CaseKind
from atlas_mobility.policy import policy as pol
from atlas_mobility.spaces.models import SpaceReplica

# The snapshot parts whose change makes each handler re-plan its case (see `changed_parts`).
SNAPSHOT_PARTS: Final = ("agent", "origin", "destination", "report_date", "household", "needs")
# Plans a simple handler keeps (two variants of a few years of report dates fit).
PLANS_KEPT: Final = 4096


def case_id(mutation_id: str, kind: str) -> str:
    return f"{mutation_id}:{kind}"


@dataclass(frozen=True)
class Placement:
    """Where a snapshot sends the agent: the covering space and the policy's zone and variant."""

    space: SpaceReplica
    zone: str
    variant: pol.Variant

    @property
    def place(self) -> str:
        """The space's town, as case titles name it."""
        name = self.space.name
        return name.removeprefix("Espace ATLAS ").removeprefix("de ").removeprefix("d'")


class Handler:
    """One kind of case: its events, the snapshot parts it follows, and its work item."""

    kind: ClassVar[CaseKind]
    opened: ClassVar[str]
    updated: ClassVar[str]
    closed: ClassVar[str]
    relevant: ClassVar[frozenset[str]]

    def work_item(
        self, data: hr.MutationSnapshot, placement: Placement
    ) -> mobility.HandlerCase | None:
        """The case this snapshot needs at its destination, or None when it needs none."""
        raise NotImplementedError

    def _common(self, data: hr.MutationSnapshot, placement: Placement) -> dict[str, object]:
        return {
            "case_id": case_id(data.mutation_id, self.kind),
            "mutation_id": data.mutation_id,
            "revision": data.revision,
            "agent_id": data.agent.agent_id,
            "atlas_id": placement.space.atlas_id,
            "destination_commune_insee": data.destination.commune_insee,
            "report_date": data.report_date,
            "zone": placement.zone if placement.zone in ("metro", "drom", "com") else None,
        }


class SimpleHandler(Handler):
    """A case whose steps count back from the report date (logement, déménagement)."""

    def __init__(self, policy: pol.SimpleCasePolicy) -> None:
        self.policy = policy
        # The plan of a (variant, report date), which the annual plan's mutations share by the
        # hundred; milestones are values, never changed once planned.
        self._plans: dict[tuple[str, date], tuple[mobility.Milestone, ...]] = {}

    def _planned(self, data: hr.MutationSnapshot, placement: Placement) -> dict[str, object]:
        """What the case holds besides the common fields: milestones, prestation, title."""
        return {
            **self._common(data, placement),
            "milestones": list(self._plan(placement.variant, data.report_date)),
            "prestation_code": self.policy.prestation_code,
            "title": _title(self.policy.title, placement.place),
        }

    def _plan(self, variant: pol.Variant, report_date: date) -> tuple[mobility.Milestone, ...]:
        key = (variant, report_date)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= PLANS_KEPT:
                self._plans.clear()
            plan = tuple(_milestones(pol.plan_simple(self.policy, report_date, variant)))
            self._plans[key] = plan
        return plan


class LogementHandler(SimpleHandler):
    """Housing: when the snapshot says the agent needs it."""

    kind = "logement"
    opened = mobility.LOGEMENT_CASE_OPENED
    updated = mobility.LOGEMENT_CASE_UPDATED
    closed = mobility.LOGEMENT_CASE_CLOSED
    relevant = frozenset({"destination", "report_date", "household", "agent"})

    def work_item(
        self, data: hr.MutationSnapshot, placement: Placement
    ) -> mobility.LogementCase | None:
        if not data.needs.housing:
            return None
        return mobility.LogementCase(
            **self._planned(data, placement),
            partner=data.household.partner,
            children_count=len(data.household.children),
        )


class ScolariteHandler(Handler):
    """Schooling: one case for the children of school age on the report date, a line each."""

    kind = "scolarite"
    opened = mobility.SCOLARITE_CASE_OPENED
    updated = mobility.SCOLARITE_CASE_UPDATED
    closed = mobility.SCOLARITE_CASE_CLOSED
    relevant = frozenset({"destination", "report_date", "household", "agent"})

    def __init__(self, policy: pol.ScolaritePolicy) -> None:
        self.policy = policy

    def work_item(
        self, data: hr.MutationSnapshot, placement: Placement
    ) -> mobility.ScolariteCase | None:
        children = pol.school_children(
            self.policy,
            [(c.child_ref, c.birth_date) for c in data.household.children],
            data.report_date,
        )
        if not children:
            return None
        return mobility.ScolariteCase(
            **self._common(data, placement),
            milestones=_milestones(
                pol.plan_scolarite(self.policy, children, data.report_date, placement.variant)
            ),
            prestation_code=pol.scolarite_prestation(self.policy, children),
            title=_title(self.policy.title, placement.place),
            children=[
                mobility.SchoolChild(
                    child_ref=c.child_ref,
                    birth_date=c.birth_date,
                    age_on_report_date=c.age_on_report_date,
                    level=c.level,
                )
                for c in children
            ],
        )


class DemenagementHandler(SimpleHandler):
    """Moving: when the snapshot says the household moves."""

    kind = "demenagement"
    opened = mobility.DEMENAGEMENT_CASE_OPENED
    updated = mobility.DEMENAGEMENT_CASE_UPDATED
    closed = mobility.DEMENAGEMENT_CASE_CLOSED
    relevant = frozenset({"destination", "report_date", "origin", "agent"})

    def work_item(
        self, data: hr.MutationSnapshot, placement: Placement
    ) -> mobility.DemenagementCase | None:
        if not data.needs.move:
            return None
        return mobility.DemenagementCase(
            **self._planned(data, placement),
            origin_commune_insee=data.origin.commune_insee if data.origin else None,
        )


def handlers_for(policy: pol.MilestonePolicy) -> tuple[Handler, ...]:
    """The handlers in contract order (logement, scolarite, demenagement), with their policy."""
    cases = policy.cases
    return (
        LogementHandler(cases.logement),
        ScolariteHandler(cases.scolarite),
        DemenagementHandler(cases.demenagement),
    )


def _milestones(planned: Sequence[pol.PlannedMilestone]) -> list[mobility.Milestone]:
    return [
        mobility.Milestone(code=m.code, due_date=m.due_date, label=m.label, child_ref=m.child_ref)
        for m in planned
    ]


def _title(template: str, place: str) -> str:
    return template.format(destination=place)[:200]
