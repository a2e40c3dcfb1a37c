"""The milestone policy file and its arithmetic (pure, no broker)."""

from datetime import date

from atlas_mobility.config import MobilitySettings
from atlas_mobility.policy import policy as pol

POLICY = pol.load_policy(MobilitySettings().milestone_policy_path)


def test_logement_metro_counts_back_150_90_7_days() -> None:
    planned = pol.plan_simple(POLICY.cases.logement, date(2027, 8, 30), "metro")
    assert [(m.code, m.due_date) for m in planned] == [
        ("demande_logement", date(2027, 4, 2)),
        ("visite_logement", date(2027, 6, 1)),
        ("entree_dans_les_lieux", date(2027, 8, 23)),
    ]


def test_demenagement_metro_counts_back_90_45_15_days() -> None:
    planned = pol.plan_simple(POLICY.cases.demenagement, date(2027, 8, 30), "metro")
    assert [(m.code, (date(2027, 8, 30) - m.due_date).days) for m in planned] == [
        ("devis_demenagement", 90),
        ("validation_devis", 45),
        ("confirmation_demenagement", 15),
    ]


def test_overseas_variant_has_longer_lead_times() -> None:
    report = date(2027, 8, 30)
    for case in (POLICY.cases.logement, POLICY.cases.demenagement):
        metro = pol.plan_simple(case, report, "metro")
        overseas = pol.plan_simple(case, report, "outre_mer")
        assert min(m.due_date for m in overseas) < min(m.due_date for m in metro)
    assert pol.variant_for("drom", "97411") == "outre_mer"
    assert pol.variant_for("com", "98735") == "outre_mer"
    assert pol.variant_for(None, "98611") == "outre_mer"
    assert pol.variant_for("metro", "83137") == "metro"


def test_children_2_to_17_on_report_date_get_a_level() -> None:
    report = date(2027, 8, 30)
    children = [
        ("baby", date(2026, 1, 1)),  # 1 year old: no schooling
        ("petit", date(2024, 3, 1)),  # 3: maternelle
        ("cm1", date(2018, 5, 5)),  # 9: élémentaire
        ("sixieme", date(2016, 4, 12)),  # 11: collège
        ("terminale", date(2010, 1, 20)),  # 17: lycée
        ("adult", date(2009, 6, 1)),  # 18: no schooling
    ]
    plans = pol.school_children(POLICY.cases.scolarite, children, report)
    assert [(p.child_ref, p.level) for p in plans] == [
        ("petit", "maternelle"),
        ("cm1", "elementaire"),
        ("sixieme", "college"),
        ("terminale", "lycee"),
    ]


def test_september_start_gets_spring_enrolment_per_child() -> None:
    report = date(2027, 8, 30)
    kids = pol.school_children(
        POLICY.cases.scolarite, [("a", date(2018, 5, 5)), ("b", date(2016, 4, 12))], report
    )
    planned = pol.plan_scolarite(POLICY.cases.scolarite, kids, report, "metro")
    assert {(m.child_ref, m.code) for m in planned} == {
        ("a", "inscription_mairie"),
        ("a", "admission_ecole"),
        ("b", "demande_affectation"),
        ("b", "inscription_etablissement"),
    }
    assert all(m.due_date.year == 2027 and 3 <= m.due_date.month <= 7 for m in planned)


def test_transfer_during_the_school_year_gets_an_immediate_enrolment() -> None:
    report = date(2027, 1, 15)
    kids = pol.school_children(POLICY.cases.scolarite, [("a", date(2018, 5, 5))], report)
    planned = pol.plan_scolarite(POLICY.cases.scolarite, kids, report, "metro")
    assert [(m.code, m.due_date) for m in planned] == [
        ("inscription_immediate", date(2026, 12, 16)),
        ("premier_jour_classe", date(2027, 1, 15)),
    ]
    assert pol.school_year_of(POLICY.cases.scolarite, report) == (2026, False)
    assert pol.school_year_of(POLICY.cases.scolarite, date(2027, 7, 20)) == (2027, True)


def test_scolarite_prestation_follows_the_children_levels() -> None:
    report = date(2027, 8, 30)
    secondary = pol.school_children(POLICY.cases.scolarite, [("b", date(2013, 1, 1))], report)
    primary = pol.school_children(POLICY.cases.scolarite, [("a", date(2020, 1, 1))], report)
    assert pol.scolarite_prestation(POLICY.cases.scolarite, secondary) == "FAM-006"
    assert pol.scolarite_prestation(POLICY.cases.scolarite, primary + secondary) == "FAM-005"
