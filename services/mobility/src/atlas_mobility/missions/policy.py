"""The mission policy (policy.yaml): milestones and linked prestations of each mission case."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel

from atlas_events.schemas import missions

POLICY_PATH = Path(__file__).with_name("policy.yaml")
Condition = Literal["always", "family_contact", "children", "documents"]


class Step(BaseModel):
    code: str
    label: str
    days_before: int | None = None
    days_after: int | None = None

    def due(self, reference: date) -> date:
        if self.days_before is not None:
            return reference - timedelta(days=self.days_before)
        return reference + timedelta(days=self.days_after or 0)


class LinkedPrestation(BaseModel):
    code: str
    when: Condition = "always"


class CasePolicy(BaseModel):
    title: str
    milestones: list[Step]
    prestations: list[LinkedPrestation]


class MissingReturn(BaseModel):
    prestation_code: str
    title: str


class Cases(BaseModel):
    depart_mission: CasePolicy
    retour_mission: CasePolicy


class MissionPolicy(BaseModel):
    version: int
    kinds: dict[str, str]
    cases: Cases
    missing_return: MissingReturn

    def case(self, kind: str) -> CasePolicy:
        policy: CasePolicy = getattr(self.cases, kind)
        return policy

    def prestations(self, kind: str, snapshot: missions.MissionSnapshot) -> list[str]:
        """The prestation codes the case links for this snapshot, in policy order."""
        holds = {
            "always": True,
            "family_contact": snapshot.options.family_contact,
            "children": bool(snapshot.household.children),
            "documents": snapshot.options.documents_to_deposit,
        }
        return [p.code for p in self.case(kind).prestations if holds[p.when]]

    def title(self, kind: str, mission_kind: str, prestation: str) -> str:
        label = self.kinds.get(mission_kind, mission_kind)
        return self.case(kind).title.format(kind=label, prestation=prestation)[:200]


@cache
def load_mission_policy(path: Path = POLICY_PATH) -> MissionPolicy:
    return MissionPolicy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
