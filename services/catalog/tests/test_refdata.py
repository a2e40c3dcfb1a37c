"""Invariants of the committed catalog reference data (no npm, no database needed)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REFDATA = Path(__file__).resolve().parents[1] / "refdata"
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
OVERSEAS_DEPARTEMENTS = {"971", "972", "973", "974", "976", "975", "987", "988"}


@cache
def load(name: str) -> Any:
    return json.loads((REFDATA / name).read_text(encoding="utf-8"))


def prestations() -> list[dict[str, Any]]:
    return list(load("prestations.json"))


def spaces() -> list[dict[str, Any]]:
    return list(load("spaces.json"))


def communes() -> list[dict[str, Any]]:
    return list(load("communes.json")["communes"])


def slugs(kind: str) -> set[str]:
    return {entry["slug"] for entry in load("vocabularies.json")[kind]}


def fold(text: str) -> str:
    """Lowercase without accents, as a user would type."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@cache
def checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_refdata", REFDATA / "check_refdata.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_refdata", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def make_resolver() -> Callable[[str], str | None]:
    """Own commune first, then explicit covers, then the département default."""
    own = {s["commune_insee"]: s["atlas_id"] for s in spaces()}
    covered = {code: s["atlas_id"] for s in spaces() for code in s["covers"]}
    departement_of = {c["code"]: c["departement"] for c in communes()}
    defaults: dict[str, str] = load("departement_coverage.json")["defaults"]

    def resolve(code: str) -> str | None:
        return own.get(code) or covered.get(code) or defaults.get(departement_of.get(code, ""))

    return resolve


# --- prestations -------------------------------------------------------------------------------


def test_at_least_250_prestations_with_unique_codes_and_titles() -> None:
    items = prestations()
    assert len(items) >= 250
    assert len({p["code"] for p in items}) == len(items)
    assert len({p["title"] for p in items}) == len(items)


def test_prestation_fields_use_the_vocabularies() -> None:
    domains, providers = slugs("domains"), slugs("providers")
    audiences, channels, documents = slugs("audiences"), slugs("channels"), slugs("documents")
    for p in prestations():
        assert p["domain"] in domains, p["code"]
        assert p["provider"] in providers, p["code"]
        assert p["audiences"], p["code"]
        assert set(p["audiences"]) <= audiences, p["code"]
        assert p["channels"], p["code"]
        assert set(p["channels"]) <= channels, p["code"]
        assert set(p["documents"]) <= documents, p["code"]
        assert type(p["sla_days"]) is int, p["code"]
        assert 1 <= p["sla_days"] <= 120, p["code"]
        assert isinstance(p["essential"], bool), p["code"]
        assert isinstance(p["crisis_only"], bool), p["code"]
        assert p["keywords"], p["code"]
        assert all(k == k.strip().lower() and k for k in p["keywords"]), p["code"]


def test_codes_carry_their_domain_prefix() -> None:
    prefix = {d["slug"]: d["code_prefix"] for d in load("vocabularies.json")["domains"]}
    for p in prestations():
        assert re.fullmatch(rf"{prefix[p['domain']]}-\d{{3}}", p["code"]), p["code"]


def test_every_domain_is_populated() -> None:
    per_domain = Counter(p["domain"] for p in prestations())
    assert set(per_domain) == slugs("domains")
    assert min(per_domain.values()) >= 10


def test_crisis_only_prestations_are_few_essential_and_in_the_crisis_domain() -> None:
    crisis = [p for p in prestations() if p["crisis_only"]]
    assert 8 <= len(crisis) <= 12
    assert all(p["essential"] and p["domain"] == "continuite_crise" for p in crisis)
    titles = " ".join(fold(p["title"]) for p in crisis)
    for word in ("colis", "sachets-repas", "masques", "soutien scolaire"):
        assert word in titles


def test_moving_prestations_are_findable_by_demenagement() -> None:
    def mentions(p: dict[str, Any]) -> bool:
        return any("demenagement" in fold(t) for t in [p["title"], *p["keywords"]])

    moving = [p for p in prestations() if mentions(p)]
    assert len(moving) >= 3
    assert any(p["domain"] == "mobilite_mutation" for p in moving)


@pytest.mark.parametrize(
    ("one", "other"),
    [("crèche", "garde d'enfants"), ("logement social", "pls"), ("déménagement", "mutation")],
)
def test_synonyms_users_type_sit_on_the_same_prestation(one: str, other: str) -> None:
    assert any(one in p["keywords"] and other in p["keywords"] for p in prestations())


# --- spaces ------------------------------------------------------------------------------------


def test_space_counts_per_zone() -> None:
    per_zone = Counter(s["zone"] for s in spaces())
    assert set(per_zone) <= slugs("zones")
    assert 200 <= per_zone["metro"] <= 212
    assert 25 <= per_zone["drom"] + per_zone["com"] <= 35


def test_space_ids_communes_and_contacts_are_unique() -> None:
    items = spaces()
    for field in ("atlas_id", "commune_insee", "name"):
        assert len({s[field] for s in items}) == len(items), field
    assert len({s["contact"]["phone"] for s in items}) == len(items)
    assert len({s["contact"]["email"] for s in items}) == len(items)


def test_every_space_commune_is_in_the_official_extract_and_agrees() -> None:
    extract = load("communes.json")
    by_code = {c["code"]: c for c in extract["communes"]}
    for s in spaces():
        commune = by_code.get(s["commune_insee"])
        assert commune is not None, s["atlas_id"]
        assert commune["name"] == s["commune_name"], s["atlas_id"]
        assert commune["departement"] == s["departement"], s["atlas_id"]
        assert extract["regions"][commune["region"]] == s["region"], s["atlas_id"]
        assert extract["departements"][s["departement"]]["zone"] == s["zone"], s["atlas_id"]
        assert s["status"] in slugs("space_statuses"), s["atlas_id"]


def test_covered_communes_are_real_disjoint_and_without_a_space() -> None:
    known = {c["code"] for c in communes()}
    own = {s["commune_insee"] for s in spaces()}
    seen: set[str] = set()
    for s in spaces():
        assert s["covers"] == sorted(set(s["covers"])), s["atlas_id"]
        for code in s["covers"]:
            assert code in known, (s["atlas_id"], code)
            assert code not in own, (s["atlas_id"], code)
            assert code not in seen, (s["atlas_id"], code)
            seen.add(code)


def test_contacts_and_opening_hours_are_well_formed() -> None:
    for s in spaces():
        assert re.fullmatch(r"\+[1-9]\d{7,14}", s["contact"]["phone"]), s["atlas_id"]
        assert s["contact"]["email"].endswith("@atlas.example.fr"), s["atlas_id"]
        hours = s["opening_hours"]
        assert list(hours) == WEEKDAYS, s["atlas_id"]
        for segments in hours.values():
            bounds = [t for seg in segments for t in (seg["opens"], seg["closes"])]
            assert bounds == sorted(bounds), s["atlas_id"]
            assert all(seg["opens"] < seg["closes"] for seg in segments), s["atlas_id"]
        is_open = any(hours.values())
        assert is_open == (s["status"] != "closed"), s["atlas_id"]


# --- coverage and resolution -------------------------------------------------------------------


def test_every_departement_with_a_space_has_an_open_default_of_its_own() -> None:
    defaults = load("departement_coverage.json")["defaults"]
    by_id = {s["atlas_id"]: s for s in spaces()}
    assert set(defaults) == {s["departement"] for s in spaces()}
    for departement, atlas_id in defaults.items():
        assert by_id[atlas_id]["departement"] == departement
        assert by_id[atlas_id]["status"] != "closed"


def test_extract_holds_exactly_the_departements_with_a_space() -> None:
    extract = load("communes.json")
    in_extract = {c["departement"] for c in extract["communes"]}
    assert in_extract == {s["departement"] for s in spaces()}
    assert set(extract["departements"]) == in_extract
    assert [c["code"] for c in extract["communes"]] == sorted(c["code"] for c in communes())
    assert in_extract >= OVERSEAS_DEPARTEMENTS
    pinned = json.loads((REFDATA / "package.json").read_text(encoding="utf-8"))
    assert extract["source"]["version"] == pinned["dependencies"][extract["source"]["package"]]


def test_every_commune_of_the_extract_resolves_to_a_space() -> None:
    resolve = make_resolver()
    known_ids = {s["atlas_id"] for s in spaces()}
    unresolved = [c["code"] for c in communes() if resolve(c["code"]) not in known_ids]
    assert unresolved == []


@pytest.mark.parametrize(
    ("commune", "expected"),
    [
        ("83137", "ATLAS-83137-TOULON"),  # own space
        ("83062", "ATLAS-83137-TOULON"),  # La Garde: covered explicitly
        ("83001", "ATLAS-83137-TOULON"),  # Les Adrets-de-l'Estérel: département default
        ("98725", "ATLAS-98712-ARUE"),  # Mahina, Polynésie française: covered
        ("98811", "ATLAS-98818-NOUMEA"),  # Koné, Nouvelle-Calédonie: département default
        ("97501", "ATLAS-97502-SAINT-PIERRE"),  # Miquelon-Langlade
    ],
)
def test_resolution_order(commune: str, expected: str) -> None:
    assert make_resolver()(commune) == expected


def test_communes_outside_the_covered_departements_resolve_to_nothing() -> None:
    assert make_resolver()("97701") is None  # Saint-Barthélemy has no space


# --- the check script --------------------------------------------------------------------------


def copy_refdata(tmp_path: Path) -> Path:
    target = tmp_path / "refdata"
    target.mkdir()
    for path in REFDATA.glob("*.json"):
        shutil.copy(path, target / path.name)
    return target


def fake_official_package(tmp_path: Path) -> Path:
    """An npm-shaped data folder rebuilt from the committed extract, for checks without npm."""
    extract = load("communes.json")
    package = tmp_path / "package"
    (package / "data").mkdir(parents=True)
    deps = extract["departements"]
    raw = [
        {
            "code": c["code"],
            "nom": c["name"],
            "departement": c["departement"],
            "region": c["region"],
            "zone": deps[c["departement"]]["zone"],
            "type": "commune-actuelle",
        }
        for c in extract["communes"]
    ]
    raw.append({**raw[0], "code": "01999", "nom": "Ancienne", "type": "commune-deleguee"})
    files = {
        "data/communes.json": raw,
        "data/regions.json": [{"code": k, "nom": v} for k, v in extract["regions"].items()],
        "data/departements.json": [
            {"code": k, "nom": v["name"], "region": v["region"], "zone": v["zone"]}
            for k, v in deps.items()
        ],
        "package.json": {"version": extract["source"]["version"]},
    }
    for name, content in files.items():
        (package / name).write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    return package / "data" / "communes.json"


def test_check_script_accepts_the_committed_data(tmp_path: Path) -> None:
    problems, warnings = checker().run(REFDATA, tmp_path / "absent.json", write_communes=False)
    assert problems == []
    assert warnings  # it says it could not use the official package


def test_check_script_proves_the_extract_against_an_official_list(tmp_path: Path) -> None:
    official = fake_official_package(tmp_path)
    problems, _ = checker().run(REFDATA, official, write_communes=False)
    assert problems == []

    refdata = copy_refdata(tmp_path)
    extract = load("communes.json")
    trimmed = {**extract, "communes": extract["communes"][1:]}
    (refdata / "communes.json").write_text(json.dumps(trimmed), encoding="utf-8")
    (refdata / "package.json").write_text((REFDATA / "package.json").read_text(), "utf-8")
    problems, _ = checker().run(refdata, official, write_communes=False)
    assert any("missing" in p for p in problems)


def test_check_script_reports_a_fake_commune_and_a_missing_default(tmp_path: Path) -> None:
    refdata = copy_refdata(tmp_path)
    (refdata / "package.json").write_text((REFDATA / "package.json").read_text(), "utf-8")
    items = spaces()
    items[0] = {**items[0], "commune_insee": "01999"}
    (refdata / "spaces.json").write_text(json.dumps(items), encoding="utf-8")
    coverage = dict(load("departement_coverage.json"))
    coverage["defaults"] = {k: v for k, v in coverage["defaults"].items() if k != "83"}
    (refdata / "departement_coverage.json").write_text(json.dumps(coverage), encoding="utf-8")

    problems, _ = checker().run(refdata, fake_official_package(tmp_path), write_communes=False)
    assert any("'01999' is not a current official commune" in p for p in problems)
    assert any("département '83' has a space but no default" in p for p in problems)
