"""Loads the milestone policy file and computes a case's milestones from it (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

Variant = Literal["metro", "outre_mer"]
Level = Literal["maternelle", "elementaire", "college", "lycee"]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class MonthDay(BaseModel):
    """A day of the year (month, day)."""

    model_config = _STRICT
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)

    def in_year(self, year: int) -> date:
        return date(year, self.month, self.day)


class RelativeStep(BaseModel):
    """A milestone due `days_before` the report date."""

    model_config = _STRICT
    code: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    label: str
    days_before: int = Field(ge=0)


class CalendarStep(BaseModel):
    """A milestone due on a fixed day of the school calendar."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)
    code: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    label: str
    due: MonthDay


class SimpleCasePolicy(BaseModel):
    """Logement and déménagement: steps counted back from the report date, per variant."""

    model_config = _STRICT
    prestation_code: str
    title: str
    variants: dict[Variant, list[RelativeStep]]


class LevelRange(BaseModel):
    model_config = _STRICT
    level: Level
    min_age: int
    max_age: int


class ScolaritePolicy(BaseModel):
    """Schooling: per child, aligned on the school calendar."""

    model_config = _STRICT
    prestation_code: str
    secondary_prestation_code: str
    title: str
    min_age: int
    max_age: int
    school_year_start: MonthDay
    summer_from: MonthDay
    september_until: MonthDay
    levels: list[LevelRange]
    september: dict[Level, list[CalendarStep]]
    during_year: list[RelativeStep]
    outre_mer_extra_days: int = Field(ge=0)


class CasePolicies(BaseModel):
    model_config = _STRICT
    logement: SimpleCasePolicy
    demenagement: SimpleCasePolicy
    scolarite: ScolaritePolicy


class MilestonePolicy(BaseModel):
    """The whole policy file."""

    model_config = _STRICT
    version: int
    cases: CasePolicies


@dataclass(frozen=True)
class PlannedMilestone:
    """A milestone as the policy plans it."""

    code: str
    label: str
    due_date: date
    child_ref: str | None = None


@dataclass(frozen=True)
class SchoolChildPlan:
    """A child who needs schooling at the destination."""

    child_ref: str
    birth_date: date
    age_on_report_date: int
    level: Level


@cache
def load_policy(path: Path) -> MilestonePolicy:
    """The policy in `path` (YAML), validated; cached per path."""
    return MilestonePolicy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def variant_for(zone: str | None, commune_insee: str | None) -> Variant:
    """outre_mer for DROM/COM destinations (by the space's zone, else the commune code)."""
    if zone in ("drom", "com"):
        return "outre_mer"
    if zone is None and commune_insee is not None and commune_insee[:2] in ("97", "98"):
        return "outre_mer"
    return "metro"


def age_on(birth: date, day: date) -> int:
    """Age in whole years on `day`."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def school_year_of(policy: ScolaritePolicy, report_date: date) -> tuple[int, bool]:
    """(first calendar year of the school year the child joins, whether at its September start)."""
    year = report_date.year
    summer = policy.summer_from.in_year(year)
    september = policy.september_until.in_year(year)
    if summer <= report_date <= september:
        return year, True
    start = policy.school_year_start.in_year(year)
    return (year if report_date >= start else year - 1), False


def level_of(policy: ScolaritePolicy, birth: date, school_year: int) -> Level | None:
    age = school_year - birth.year  # age reached during the first calendar year (French rule)
    for band in policy.levels:
        if band.min_age <= age <= band.max_age:
            return band.level
    return None


def school_children(
    policy: ScolaritePolicy, children: Sequence[tuple[str, date]], report_date: date
) -> list[SchoolChildPlan]:
    """Children aged min..max on the report date, with the level they will join."""
    school_year, _ = school_year_of(policy, report_date)
    plans = []
    for child_ref, birth in children:
        age = age_on(birth, report_date)
        if not policy.min_age <= age <= policy.max_age:
            continue
        level = level_of(policy, birth, school_year)
        if level is None:  # 2-year-olds born late in the year: toute petite section
            level = "maternelle" if age < 6 else "lycee"
        plans.append(SchoolChildPlan(child_ref, birth, age, level))
    return plans


def _relative(
    steps: Sequence[RelativeStep], report_date: date, extra: int = 0, child: str | None = None
) -> list[PlannedMilestone]:
    return [
        PlannedMilestone(
            s.code,
            s.label,
            report_date - timedelta(days=s.days_before + (extra if s.days_before else 0)),
            child,
        )
        for s in steps
    ]


def plan_simple(
    policy: SimpleCasePolicy, report_date: date, variant: Variant
) -> list[PlannedMilestone]:
    """Logement or déménagement milestones."""
    return sorted(_relative(policy.variants[variant], report_date), key=_order)


def plan_scolarite(
    policy: ScolaritePolicy,
    children: Sequence[SchoolChildPlan],
    report_date: date,
    variant: Variant,
) -> list[PlannedMilestone]:
    """One line of milestones per child: spring enrolment for September, else immediate."""
    school_year, at_start = school_year_of(policy, report_date)
    extra = policy.outre_mer_extra_days if variant == "outre_mer" else 0
    planned: list[PlannedMilestone] = []
    for child in children:
        if at_start:
            for step in policy.september[child.level]:
                due = step.due.in_year(school_year) - timedelta(days=extra)
                planned.append(PlannedMilestone(step.code, step.label, due, child.child_ref))
        else:
            planned.extend(_relative(policy.during_year, report_date, extra, child.child_ref))
    return sorted(planned, key=_order)


def scolarite_prestation(policy: ScolaritePolicy, children: Sequence[SchoolChildPlan]) -> str:
    """The primary-school prestation, unless every child goes to collège or lycée."""
    if children and all(c.level in ("college", "lycee") for c in children):
        return policy.secondary_prestation_code
    return policy.prestation_code


def _order(m: PlannedMilestone) -> tuple[date, str, str]:
    return (m.due_date, m.child_ref or "", m.code)
