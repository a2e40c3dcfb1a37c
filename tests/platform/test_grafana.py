"""The Grafana dashboard: valid JSON, queries that parse and name real metrics, French titles."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "atlas-overview.json"
SOURCES = [ROOT / "libs" / "events" / "src", *sorted((ROOT / "services").glob("*/src"))]

# Metrics the platform does not define itself: Strimzi's Kafka exporter (kafka_exporter).
EXTERNAL_METRICS = {
    "kafka_consumergroup_lag": "kafka-exporter: messages a group has not committed, per partition",
    "kafka_consumergroup_current_offset": "kafka-exporter: a group's committed offset",
    "kafka_topic_partition_current_offset": "kafka-exporter: a partition's end offset",
    "kafka_topic_partition_oldest_offset": "kafka-exporter: a partition's first offset",
}
PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "topk", "bottomk", "by", "without", "on", "ignoring",
    "group_left", "group_right", "and", "or", "unless", "rate", "irate", "increase", "delta",
    "histogram_quantile", "clamp_min", "clamp_max", "vector", "abs", "offset", "bool",
}  # fmt: skip
ENGLISH_WORDS = {"by", "per", "of", "the", "and", "with", "rate", "lag", "queue", "requests"}
FRENCH_WORDS = {
    "par", "de", "des", "du", "la", "le", "les", "en", "et", "sur", "à", "d", "l",
    "crise", "espaces", "demandes", "retard", "dossiers", "latence", "taux",
}  # fmt: skip
_DEFINED = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"")


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # panels inside collapsed rows
    return found


def _exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in _panels(dashboard)
        for target in panel.get("targets", [])
    ]


def defined_metrics() -> set[str]:
    """Every series name the code exports (prometheus_client adds suffixes to some kinds)."""
    names: set[str] = set()
    for source in SOURCES:
        for path in source.rglob("*.py"):
            for kind, name in _DEFINED.findall(path.read_text(encoding="utf-8")):
                names.add(name)
                if kind == "Counter":
                    names.add(name if name.endswith("_total") else f"{name}_total")
                if kind in {"Histogram", "Summary"}:
                    names.update(f"{name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (not its functions, labels or strings)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    tokens = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text)
    return {token for token in tokens if token not in PROMQL_WORDS}


def test_dashboard_json_is_a_grafana_model() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "atlas-overview"
    panels = _panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], f"panel {panel['title']!r} has no query"


def test_every_query_names_metrics_that_exist() -> None:
    known = defined_metrics()
    assert "atlas_http_request_duration_seconds_bucket" in known  # the scan finds the kit's
    assert "atlas_dashboard_arrivals" in known
    exprs = _exprs(_dashboard())
    assert len(exprs) >= 10
    unknown = {
        (title, name)
        for title, expr in exprs
        for name in metric_names(expr)
        if name not in known and name not in EXTERNAL_METRICS
    }
    assert unknown == set(), f"queries name metrics nobody exports: {sorted(unknown)}"
    used = {name for _, expr in exprs for name in metric_names(expr)}
    assert "kafka_consumergroup_lag" in used  # lag comes from the Kafka exporter too


def test_metric_name_extraction_can_tell_functions_from_metrics() -> None:
    expr = 'sum by (channel) (rate(x_total{status=~"a|b"}[5m])) / clamp_min(sum(y), 1)'
    assert metric_names(expr) == {"x_total", "y"}


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run `make promtool`")
    rules = {
        "groups": [
            {
                "name": "grafana-panels",
                "rules": [
                    {"record": f"atlas:grafana_panel_{i}", "expr": expr}
                    for i, (_, expr) in enumerate(_exprs(_dashboard()))
                ],
            }
        ]
    }
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True))
    checked = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_panel_titles_are_french() -> None:
    for panel in _panels(_dashboard()):
        words = set(re.findall(r"[a-zà-ÿ]+", panel["title"].lower()))
        assert not words & ENGLISH_WORDS, f"English in title {panel['title']!r}"
        accented = re.search(r"[àâçéèêëîïôûùüÿœ]", panel["title"].lower())
        assert words & FRENCH_WORDS or accented, f"title {panel['title']!r} does not read French"
