"""Check the catalog reference data against itself and the official list of French communes.

Run from the repository root:
    .venv/bin/python services/catalog/refdata/check_refdata.py [--official PATH] [--write-communes]

PATH is the `data/communes.json` of the npm package @etalab/decoupage-administratif (default: the
copy installed in refdata/node_modules by `npm install --no-package-lock`). Without it the script
falls back to the committed extract `communes.json`, with a warning, and cannot prove the extract.
Exits 0 when every check passes, 1 with the list of problems otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFDATA_DIR = Path(__file__).resolve().parent
PACKAGE_NAME = "@etalab/decoupage-administratif"
PACKAGE_DIR = REFDATA_DIR / "node_modules" / "@etalab" / "decoupage-administratif"
DEFAULT_OFFICIAL = PACKAGE_DIR / "data" / "communes.json"
CURRENT_COMMUNE_TYPE = "commune-actuelle"

PRESTATIONS_FILE = "prestations.json"
SPACES_FILE = "spaces.json"
COVERAGE_FILE = "departement_coverage.json"
VOCABULARIES_FILE = "vocabularies.json"
COMMUNES_FILE = "communes.json"

MIN_PRESTATIONS = 250
MIN_PER_DOMAIN = 10
CRISIS_ONLY_RANGE = (8, 12)
CRISIS_DOMAIN = "continuite_crise"
METRO_RANGE = (200, 212)  # "206 mainland spaces"
OVERSEAS_RANGE = (25, 35)  # "about 30 overseas"
MAX_SLA_DAYS = 120
MOVING_WORD = "déménagement"
MIN_MOVING_PRESTATIONS = 3

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PRESTATION_FIELDS = {
    "code", "title", "summary", "keywords", "domain", "provider", "audiences", "channels",
    "documents", "sla_days", "essential", "crisis_only",
}  # fmt: skip
SPACE_FIELDS = {
    "atlas_id", "name", "commune_insee", "commune_name", "departement", "region", "zone",
    "covers", "contact", "opening_hours", "status",
}  # fmt: skip
VOCABULARY_KEYS = (
    "domains", "providers", "audiences", "channels", "documents", "zones", "space_statuses",
)  # fmt: skip

SLUG_RE = re.compile(r"^[a-z][a-z0-9_]*$")
CODE_RE = re.compile(r"^([A-Z]{3})-[0-9]{3}$")
ATLAS_ID_RE = re.compile(r"^ATLAS-[0-9][0-9AB][0-9]{3}-[A-Z0-9]+(-[A-Z0-9]+)*$")
INSEE_RE = re.compile(r"^[0-9][0-9AB][0-9]{3}$")
E164_RE = re.compile(r"^\+[1-9][0-9]{7,14}$")
EMAIL_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*@atlas\.example\.fr$")
TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


@dataclass(frozen=True)
class Official:
    """The official data the checks compare against, and where it came from."""

    communes: list[dict[str, Any]]  # current communes: code, nom, departement, region, zone
    regions: dict[str, str]  # region code -> name
    departements: dict[str, dict[str, str]]  # code -> {name, region, zone}
    version: str
    from_package: bool


def load_json(path: Path) -> Any:
    """Read one UTF-8 JSON file."""
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def pinned_version(refdata_dir: Path = REFDATA_DIR) -> str:
    """The exact package version pinned in refdata/package.json."""
    package = load_json(refdata_dir / "package.json")
    return str(package["dependencies"][PACKAGE_NAME])


def load_official_package(communes_path: Path) -> Official:
    """Load the official communes, régions and départements from the npm package's data folder."""
    data_dir = communes_path.parent
    raw = load_json(communes_path)
    communes = [c for c in raw if c.get("type") == CURRENT_COMMUNE_TYPE]
    regions = {r["code"]: r["nom"] for r in load_json(data_dir / "regions.json")}
    departements = {
        d["code"]: {"name": d["nom"], "region": d["region"], "zone": d["zone"]}
        for d in load_json(data_dir / "departements.json")
    }
    package_json = data_dir.parent / "package.json"
    version = str(load_json(package_json)["version"]) if package_json.exists() else "unknown"
    return Official(communes, regions, departements, version, from_package=True)


def load_official_extract(extract: Mapping[str, Any]) -> Official:
    """Use the committed extract as the official list (fallback when the package is absent)."""
    communes = [
        {
            "code": c["code"],
            "nom": c["name"],
            "departement": c["departement"],
            "region": c["region"],
            "zone": extract["departements"][c["departement"]]["zone"],
        }
        for c in extract["communes"]
    ]
    return Official(
        communes,
        dict(extract["regions"]),
        {k: dict(v) for k, v in extract["departements"].items()},
        str(extract["source"]["version"]),
        from_package=False,
    )


def build_communes_extract(official: Official, covered: Iterable[str]) -> dict[str, Any]:
    """The committed extract: current communes of the départements that have an ATLAS space."""
    deps = sorted(set(covered))
    communes = sorted(
        (
            {
                "code": c["code"],
                "name": c["nom"],
                "departement": c["departement"],
                "region": c["region"],
            }
            for c in official.communes
            if c["departement"] in deps
        ),
        key=lambda c: c["code"],
    )
    departements = {d: official.departements[d] for d in deps if d in official.departements}
    region_codes = sorted({c["region"] for c in communes})
    return {
        "source": {
            "package": PACKAGE_NAME,
            "version": official.version,
            "file": "data/communes.json (+ regions.json, departements.json)",
            "filter": f'type == "{CURRENT_COMMUNE_TYPE}" in départements with an ATLAS space',
        },
        "regions": {r: official.regions[r] for r in region_codes if r in official.regions},
        "departements": departements,
        "communes": communes,
    }


def dump_communes_extract(extract: Mapping[str, Any]) -> str:
    """Serialise the extract with one commune per line so that diffs stay readable."""

    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = ["{", f'  "source": {one(extract["source"])},', '  "regions": {']
    lines.append(",\n".join(f"    {one(k)}: {one(v)}" for k, v in extract["regions"].items()))
    lines += ["  },", '  "departements": {']
    lines.append(",\n".join(f"    {one(k)}: {one(v)}" for k, v in extract["departements"].items()))
    lines += ["  },", '  "communes": [']
    lines.append(",\n".join(f"    {one(c)}" for c in extract["communes"]))
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def _slugs(vocabularies: Mapping[str, Any], key: str) -> set[str]:
    return {entry["slug"] for entry in vocabularies.get(key, [])}


def check_vocabularies(vocabularies: Mapping[str, Any]) -> list[str]:
    """Every enumeration exists, with unique well-formed slugs and a label."""
    problems: list[str] = []
    for key in VOCABULARY_KEYS:
        entries = vocabularies.get(key)
        if not isinstance(entries, list) or not entries:
            problems.append(f"vocabularies: {key!r} is missing or empty")
            continue
        slugs = [e.get("slug") for e in entries]
        for slug, count in Counter(slugs).items():
            if count > 1:
                problems.append(f"vocabularies: {key} slug {slug!r} appears {count} times")
        for entry in entries:
            if not isinstance(entry.get("slug"), str) or not SLUG_RE.match(entry["slug"]):
                problems.append(f"vocabularies: {key} has a malformed slug {entry.get('slug')!r}")
            if not isinstance(entry.get("label"), str) or not entry["label"].strip():
                problems.append(f"vocabularies: {key} {entry.get('slug')!r} has no label")
    prefixes = [d.get("code_prefix") for d in vocabularies.get("domains", [])]
    if any(not isinstance(p, str) or not re.match(r"^[A-Z]{3}$", p) for p in prefixes):
        problems.append("vocabularies: every domain needs a three-letter code_prefix")
    if len(set(prefixes)) != len(prefixes):
        problems.append("vocabularies: domain code prefixes are not unique")
    return problems


def _check_list(
    where: str, field: str, value: Any, allowed: set[str], *, required: bool
) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return [f"{where}: {field} must be a list of strings"]
    problems = []
    if required and not value:
        problems.append(f"{where}: {field} is empty")
    if len(set(value)) != len(value):
        problems.append(f"{where}: {field} has duplicates")
    problems += [f"{where}: unknown {field} value {v!r}" for v in value if v not in allowed]
    return problems


def check_prestations(
    prestations: Sequence[Mapping[str, Any]], vocabularies: Mapping[str, Any]
) -> list[str]:
    """Counts, unique codes and titles, enumerated fields and crisis flags of the prestations."""
    problems: list[str] = []
    prefix_of = {d["slug"]: d.get("code_prefix") for d in vocabularies.get("domains", [])}
    providers = _slugs(vocabularies, "providers")
    audiences = _slugs(vocabularies, "audiences")
    channels = _slugs(vocabularies, "channels")
    documents = _slugs(vocabularies, "documents")

    if len(prestations) < MIN_PRESTATIONS:
        problems.append(f"prestations: {len(prestations)} < {MIN_PRESTATIONS}")
    for field in ("code", "title"):
        for value, count in Counter(p.get(field) for p in prestations).items():
            if count > 1:
                problems.append(f"prestations: {field} {value!r} appears {count} times")

    for p in prestations:
        where = f"prestation {p.get('code')!r}"
        keys = set(p)
        if keys != PRESTATION_FIELDS:
            missing, extra = PRESTATION_FIELDS - keys, keys - PRESTATION_FIELDS
            problems.append(f"{where}: missing {sorted(missing)}, unexpected {sorted(extra)}")
            continue
        match = CODE_RE.match(p["code"]) if isinstance(p["code"], str) else None
        if p["domain"] not in prefix_of:
            problems.append(f"{where}: unknown domain {p['domain']!r}")
        elif not match or match.group(1) != prefix_of[p["domain"]]:
            problems.append(f"{where}: code must be {prefix_of[p['domain']]}-NNN for its domain")
        for field in ("title", "summary"):
            if (
                not isinstance(p[field], str)
                or not p[field].strip()
                or p[field] != p[field].strip()
            ):
                problems.append(f"{where}: {field} must be a non-empty trimmed string")
        summary = p["summary"] if isinstance(p["summary"], str) else ""
        sentences = len(re.findall(r"[.!?](\s|$)", summary))
        if not summary.endswith((".", "!", "?")) or not 1 <= sentences <= 2:
            problems.append(f"{where}: summary must be one or two full sentences")
        keywords = p["keywords"]
        if not isinstance(keywords, list) or not keywords:
            problems.append(f"{where}: keywords must be a non-empty list")
        else:
            if len(set(keywords)) != len(keywords):
                problems.append(f"{where}: keywords have duplicates")
            for k in keywords:
                if not isinstance(k, str) or not k.strip() or k != k.strip().lower():
                    problems.append(f"{where}: keyword {k!r} must be trimmed lowercase text")
        if p["provider"] not in providers:
            problems.append(f"{where}: unknown provider {p['provider']!r}")
        problems += _check_list(where, "audiences", p["audiences"], audiences, required=True)
        problems += _check_list(where, "channels", p["channels"], channels, required=True)
        problems += _check_list(where, "documents", p["documents"], documents, required=False)
        sla = p["sla_days"]
        if not isinstance(sla, int) or isinstance(sla, bool) or not 1 <= sla <= MAX_SLA_DAYS:
            problems.append(f"{where}: sla_days must be an integer in 1..{MAX_SLA_DAYS}")
        if not isinstance(p["essential"], bool) or not isinstance(p["crisis_only"], bool):
            problems.append(f"{where}: essential and crisis_only must be booleans")
        elif p["crisis_only"] and (not p["essential"] or p["domain"] != CRISIS_DOMAIN):
            problems.append(
                f"{where}: a crisis_only prestation is essential and in {CRISIS_DOMAIN}"
            )

    per_domain = Counter(p.get("domain") for p in prestations)
    for domain in prefix_of:
        if per_domain[domain] < MIN_PER_DOMAIN:
            problems.append(f"prestations: domain {domain} has {per_domain[domain]} entries")
    crisis_only = sum(1 for p in prestations if p.get("crisis_only") is True)
    low, high = CRISIS_ONLY_RANGE
    if not low <= crisis_only <= high:
        problems.append(f"prestations: {crisis_only} crisis_only entries, expected {low}..{high}")
    moving = [
        p for p in prestations
        if MOVING_WORD in str(p.get("title", "")).lower()
        or any(MOVING_WORD in str(k) for k in p.get("keywords", []))
    ]  # fmt: skip
    if len(moving) < MIN_MOVING_PRESTATIONS:
        problems.append(f"prestations: only {len(moving)} are findable by {MOVING_WORD!r}")
    return problems


def _check_hours(where: str, hours: Any, status: str) -> list[str]:
    if not isinstance(hours, dict) or tuple(hours) != WEEKDAYS:
        return [f"{where}: opening_hours must list {', '.join(WEEKDAYS)} in order"]
    problems = []
    for day, segments in hours.items():
        previous = "00:00"
        if not isinstance(segments, list):
            problems.append(f"{where}: opening_hours.{day} must be a list")
            continue
        for seg in segments:
            opens, closes = seg.get("opens", ""), seg.get("closes", "")
            if (
                set(seg) != {"opens", "closes"}
                or not TIME_RE.match(opens)
                or not TIME_RE.match(closes)
            ):
                problems.append(f"{where}: opening_hours.{day} has a malformed segment {seg}")
            elif not previous <= opens < closes:
                problems.append(f"{where}: opening_hours.{day} segments overlap or are unordered")
            else:
                previous = closes
    open_days = sum(1 for segments in hours.values() if segments)
    if status == "closed" and open_days:
        problems.append(f"{where}: a closed space has opening hours")
    if status != "closed" and not open_days:
        problems.append(f"{where}: status {status!r} but no opening hours")
    return problems


def check_spaces(
    spaces: Sequence[Mapping[str, Any]], vocabularies: Mapping[str, Any], official: Official
) -> list[str]:
    """Every space sits in a real current commune and agrees with the official data."""
    problems: list[str] = []
    by_code = {c["code"]: c for c in official.communes}
    zones = _slugs(vocabularies, "zones")
    statuses = _slugs(vocabularies, "space_statuses")
    for field in ("atlas_id", "commune_insee", "name"):
        for value, count in Counter(s.get(field) for s in spaces).items():
            if count > 1:
                problems.append(f"spaces: {field} {value!r} appears {count} times")
    for field in ("phone", "email"):
        for value, count in Counter(s.get("contact", {}).get(field) for s in spaces).items():
            if count > 1:
                problems.append(f"spaces: contact {field} {value!r} appears {count} times")
    own = {s.get("commune_insee") for s in spaces}
    covered_by: dict[str, str] = {}

    for s in spaces:
        where = f"space {s.get('atlas_id')!r}"
        if set(s) != SPACE_FIELDS:
            missing, extra = SPACE_FIELDS - set(s), set(s) - SPACE_FIELDS
            problems.append(f"{where}: missing {sorted(missing)}, unexpected {sorted(extra)}")
            continue
        if not isinstance(s["atlas_id"], str) or not ATLAS_ID_RE.match(s["atlas_id"]):
            problems.append(f"{where}: malformed atlas_id")
        if not str(s["name"]).startswith("Espace ATLAS "):
            problems.append(f"{where}: name must start with 'Espace ATLAS '")
        if s["zone"] not in zones:
            problems.append(f"{where}: unknown zone {s['zone']!r}")
        if s["status"] not in statuses:
            problems.append(f"{where}: unknown status {s['status']!r}")
        commune = by_code.get(s["commune_insee"])
        if commune is None:
            problems.append(f"{where}: {s['commune_insee']!r} is not a current official commune")
        else:
            if s["commune_name"] != commune["nom"]:
                problems.append(
                    f"{where}: commune_name {s['commune_name']!r} != official {commune['nom']!r}"
                )
            if s["departement"] != commune["departement"]:
                problems.append(
                    f"{where}: departement {s['departement']!r} != official "
                    f"{commune['departement']!r}"
                )
            region = official.regions.get(commune["region"])
            if s["region"] != region:
                problems.append(f"{where}: region {s['region']!r} != official {region!r}")
            if s["zone"] != commune["zone"]:
                problems.append(f"{where}: zone {s['zone']!r} != official {commune['zone']!r}")
        covers = s["covers"]
        if not isinstance(covers, list) or covers != sorted(set(covers)):
            problems.append(f"{where}: covers must be a sorted list without duplicates")
            covers = []
        for code in covers:
            if code not in by_code:
                problems.append(f"{where}: covered {code!r} is not a current official commune")
            if code in own:
                problems.append(f"{where}: covered {code!r} has a space of its own")
            if code in covered_by:
                problems.append(f"{where}: {code!r} is already covered by {covered_by[code]}")
            covered_by.setdefault(code, s["atlas_id"])
        contact = s["contact"]
        if not isinstance(contact, dict) or set(contact) != {"phone", "email"}:
            problems.append(f"{where}: contact must hold exactly phone and email")
        else:
            if not isinstance(contact["phone"], str) or not E164_RE.match(contact["phone"]):
                problems.append(f"{where}: phone {contact['phone']!r} is not E.164")
            if not isinstance(contact["email"], str) or not EMAIL_RE.match(contact["email"]):
                problems.append(f"{where}: email {contact['email']!r} is not on atlas.example.fr")
        problems += _check_hours(where, s["opening_hours"], str(s["status"]))

    per_zone = Counter(s.get("zone") for s in spaces)
    overseas = per_zone["drom"] + per_zone["com"]
    if not METRO_RANGE[0] <= per_zone["metro"] <= METRO_RANGE[1]:
        problems.append(f"spaces: {per_zone['metro']} metro spaces, expected {METRO_RANGE}")
    if not OVERSEAS_RANGE[0] <= overseas <= OVERSEAS_RANGE[1]:
        problems.append(f"spaces: {overseas} overseas spaces, expected {OVERSEAS_RANGE}")
    return problems


def check_coverage(spaces: Sequence[Mapping[str, Any]], coverage: Mapping[str, Any]) -> list[str]:
    """Each département with a space has exactly one usable default space of that département."""
    problems: list[str] = []
    defaults = coverage.get("defaults")
    if not isinstance(defaults, dict):
        return ["coverage: 'defaults' must map département codes to atlas ids"]
    by_id = {s.get("atlas_id"): s for s in spaces}
    with_space = {s.get("departement") for s in spaces}
    for dep in sorted(with_space - set(defaults), key=str):
        problems.append(f"coverage: département {dep!r} has a space but no default")
    for dep, atlas_id in defaults.items():
        space = by_id.get(atlas_id)
        if space is None:
            problems.append(f"coverage: département {dep!r} defaults to unknown {atlas_id!r}")
        elif space.get("departement") != dep:
            problems.append(f"coverage: default {atlas_id!r} of {dep!r} is in another département")
        elif space.get("status") == "closed":
            problems.append(f"coverage: default {atlas_id!r} of {dep!r} is closed")
    return problems


def check_extract(committed: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """The committed communes.json is exactly what the official data yields."""
    if committed == expected:
        return []
    problems = []
    for key in ("source", "regions", "departements"):
        if committed.get(key) != expected.get(key):
            problems.append(f"communes.json: {key!r} differs from the official extract")
    got = {c["code"]: c for c in committed.get("communes", [])}
    want = {c["code"]: c for c in expected["communes"]}
    missing, extra = sorted(want.keys() - got.keys()), sorted(got.keys() - want.keys())
    changed = sorted(k for k in want.keys() & got.keys() if want[k] != got[k])
    if missing:
        problems.append(
            f"communes.json: {len(missing)} official communes missing, e.g. {missing[:5]}"
        )
    if extra:
        problems.append(
            f"communes.json: {len(extra)} communes not in the extract, e.g. {extra[:5]}"
        )
    if changed:
        problems.append(f"communes.json: {len(changed)} communes differ, e.g. {changed[:5]}")
    if not problems:
        problems.append("communes.json: communes are not sorted by code")
    return [*problems, "communes.json: regenerate it with --write-communes"]


def resolve(
    commune_insee: str,
    spaces: Sequence[Mapping[str, Any]],
    coverage: Mapping[str, Any],
    departement_of: Mapping[str, str],
) -> str | None:
    """The atlas_id serving a commune: its own space, else a space covering it, else the default."""
    for s in spaces:
        if s["commune_insee"] == commune_insee:
            return str(s["atlas_id"])
    for s in spaces:
        if commune_insee in s["covers"]:
            return str(s["atlas_id"])
    default = coverage["defaults"].get(departement_of.get(commune_insee, ""))
    return None if default is None else str(default)


def run(
    refdata_dir: Path, official_path: Path, *, write_communes: bool
) -> tuple[list[str], list[str]]:
    """Run every check; return (problems, warnings)."""
    warnings: list[str] = []
    vocabularies = load_json(refdata_dir / VOCABULARIES_FILE)
    prestations = load_json(refdata_dir / PRESTATIONS_FILE)
    spaces = load_json(refdata_dir / SPACES_FILE)
    coverage = load_json(refdata_dir / COVERAGE_FILE)
    communes_path = refdata_dir / COMMUNES_FILE
    committed = load_json(communes_path) if communes_path.exists() else None

    if official_path.exists():
        official = load_official_package(official_path)
    elif committed is not None and not write_communes:
        warnings.append(
            f"{official_path} not found (run `npm install --no-package-lock` in {refdata_dir}); "
            "checking against the committed communes.json, which cannot itself be verified"
        )
        official = load_official_extract(committed)
    else:
        return [f"{official_path} not found: the official list is needed"], warnings

    problems: list[str] = []
    pinned = pinned_version(refdata_dir)
    if official.from_package and official.version != pinned:
        problems.append(f"installed {PACKAGE_NAME} {official.version} != pinned {pinned}")

    expected = build_communes_extract(official, (s["departement"] for s in spaces))
    if write_communes:
        communes_path.write_text(dump_communes_extract(expected), encoding="utf-8")
        committed = expected
    problems += check_vocabularies(vocabularies)
    problems += check_prestations(prestations, vocabularies)
    problems += check_spaces(spaces, vocabularies, official)
    problems += check_coverage(spaces, coverage)
    if committed is None:
        problems.append("communes.json is missing: generate it with --write-communes")
    elif official.from_package:
        problems += check_extract(committed, expected)

    departement_of = {c["code"]: c["departement"] for c in expected["communes"]}
    unresolved = [c for c in departement_of if resolve(c, spaces, coverage, departement_of) is None]
    if unresolved:
        problems.append(f"{len(unresolved)} communes resolve to no space, e.g. {unresolved[:5]}")
    return problems, warnings


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--official",
        type=Path,
        default=DEFAULT_OFFICIAL,
        help="data/communes.json of the official package (default: refdata/node_modules copy)",
    )
    parser.add_argument(
        "--write-communes",
        action="store_true",
        help="regenerate the committed communes.json from the official data before checking",
    )
    args = parser.parse_args(argv)
    problems, warnings = run(REFDATA_DIR, args.official, write_communes=args.write_communes)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in the catalog reference data:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    spaces = load_json(REFDATA_DIR / SPACES_FILE)
    prestations = load_json(REFDATA_DIR / PRESTATIONS_FILE)
    zones = Counter(s["zone"] for s in spaces)
    print(
        f"ok: {len(prestations)} prestations, {len(spaces)} spaces "
        f"({', '.join(f'{z} {n}' for z, n in sorted(zones.items()))})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
