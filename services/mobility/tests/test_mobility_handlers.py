"""The three handlers as units: each plans its case from a snapshot and its own policy (pure)."""

import uuid
from datetime import date

import pytest

from atlas_events.registry import REGISTRY
from atlas_events.schemas import hr, mobility
from atlas_mobility.cases.handlers import (
    DemenagementHandler,
    LogementHandler,
    Placement,
    ScolariteHandler,
    handlers_for,
)
from atlas_mobility.cases.service import _REQUEST_IDS, request_id_for
from atlas_mobility.config import MobilitySettings
from atlas_mobility.policy import policy as pol
from atlas_mobility.spaces.models import SpaceReplica

POLICY = pol.load_policy(MobilitySettings().milestone_policy_path)
TOULON = SpaceReplica(
    atlas_id="ATLAS-83137-TOULON", name="Espace ATLAS de Toulon", commune_insee="83137"
)  # type: ignore[call-arg]
PLACEMENT = Placement(TOULON, "metro", "metro")


def snapshot(**changes: object) -> hr.MutationAnnounced:
    data = {**hr.CONTRACT_EXAMPLE, **changes}
    parsed = REGISTRY.validate(hr.MUTATION_ANNOUNCED, data)
    assert isinstance(parsed, hr.MutationAnnounced)
    return parsed


def test_the_handlers_come_in_contract_order_each_with_its_policy() -> None:
    logement, scolarite, demenagement = handlers_for(POLICY)
    assert [h.kind for h in (logement, scolarite, demenagement)] == [
        "logement",
        "scolarite",
        "demenagement",
    ]
    assert isinstance(logement, LogementHandler)
    assert logement.policy is POLICY.cases.logement
    assert isinstance(scolarite, ScolariteHandler)
    assert scolarite.policy is POLICY.cases.scolarite
    assert isinstance(demenagement, DemenagementHandler)
    assert demenagement.policy is POLICY.cases.demenagement


def test_logement_plans_its_milestones_back_from_the_report_date() -> None:
    item = LogementHandler(POLICY.cases.logement).work_item(snapshot(), PLACEMENT)
    assert isinstance(item, mobility.LogementCase)
    assert item.case_id == f"{hr.CONTRACT_EXAMPLE['mutation_id']}:logement"
    assert item.atlas_id == TOULON.atlas_id
    assert item.title.endswith("Toulon")
    expected = pol.plan_simple(POLICY.cases.logement, date(2027, 8, 30), "metro")
    assert [(m.code, m.due_date) for m in item.milestones] == [
        (m.code, m.due_date) for m in expected
    ]
    assert item.partner is True


def test_each_handler_says_when_its_case_is_not_needed() -> None:
    no_needs = snapshot(
        needs={"housing": False, "move": False},
        household={"partner": False, "children": [{"child_ref": "c1", "birth_date": "2026-01-01"}]},
    )
    for handler in handlers_for(POLICY):
        assert handler.work_item(no_needs, PLACEMENT) is None, handler.kind


@pytest.mark.parametrize(
    ("birth", "needed"), [("2016-04-12", True), ("2026-01-01", False), ("2005-01-01", False)]
)
def test_scolarite_takes_only_children_of_school_age(birth: str, needed: bool) -> None:
    data = snapshot(
        household={"partner": True, "children": [{"child_ref": "c1", "birth_date": birth}]}
    )
    item = ScolariteHandler(POLICY.cases.scolarite).work_item(data, PLACEMENT)
    assert (item is not None) is needed
    if item is not None:
        assert [c.child_ref for c in item.children] == ["c1"]


def test_demenagement_carries_the_origin_commune() -> None:
    item = DemenagementHandler(POLICY.cases.demenagement).work_item(snapshot(), PLACEMENT)
    assert isinstance(item, mobility.DemenagementCase)
    assert item.origin_commune_insee == "56260"


@pytest.mark.parametrize(
    ("case_id", "atlas_id"),
    [("TERRE-2027-004211:logement", "ATLAS-83137-TOULON"), ("M:demenagement", "brest")],
)
def test_request_ids_are_the_uuid5_of_case_and_space(case_id: str, atlas_id: str) -> None:
    expected = uuid.uuid5(uuid.UUID(bytes=_REQUEST_IDS), f"{case_id}@{atlas_id}")
    assert request_id_for(case_id, atlas_id) == str(expected)
    assert request_id_for(case_id, "other") != str(expected)
