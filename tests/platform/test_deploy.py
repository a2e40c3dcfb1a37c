"""Deployment checks: Dockerfiles (hadolint), kustomize overlays (schemas, checkov), alert rules."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

from atlas_devstack.paths import repo_module
from atlas_events.registry import DLQ_SUFFIX, REGISTRY

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
SERVICES = ("catalog", "requests", "mobility", "notify", "vault")
KUBERNETES_VERSION = "1.33.0"
ATLAS_HOME = Path(os.environ.get("ATLAS_HOME") or ROOT / ".atlas")
HINT = "run `make k8s-tools` (kustomize, checkov) and `make promtool`"


def _tool(name: str, *candidates: Path) -> str:
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {HINT}")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def _generator() -> ModuleType:
    return repo_module("atlas_k8s_generate", "deploy/k8s/generate.py")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Each overlay, built by kustomize, as a list of documents."""
    kustomize = _tool("kustomize", ATLAS_HOME / "bin" / "kustomize")
    result = {}
    for overlay in OVERLAYS:
        built = _run(kustomize, "build", str(K8S / "overlays" / overlay))
        assert built.returncode == 0, built.stderr
        result[overlay] = [d for d in yaml.safe_load_all(built.stdout) if d]
    return result


def _of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


# ---- Dockerfiles -------------------------------------------------------------------------------


def test_dockerfiles_pass_hadolint() -> None:
    hadolint = _tool("hadolint", ROOT / ".venv" / "bin" / "hadolint")
    files = [str(ROOT / "services" / s / "Dockerfile") for s in SERVICES]
    linted = _run(hadolint, "--failure-threshold", "info", *files)
    assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.parametrize("svc", SERVICES)
def test_dockerfile_layout_matches_the_service(svc: str) -> None:
    """The image keeps <service dir>/{src,migrations}: app.py finds migrations at parents[2]."""
    text = (ROOT / "services" / svc / "Dockerfile").read_text()
    app_py = ROOT / "services" / svc / "src" / f"atlas_{svc}" / "app.py"
    assert 'migrations_dir=Path(__file__).resolve().parents[2] / "migrations"' in app_py.read_text()
    assert f"COPY services/{svc}/src /app/src" in text
    assert f"COPY services/{svc}/migrations /app/migrations" in text
    assert (ROOT / "services" / svc / "migrations" / "env.py").is_file()
    stages = re.findall(r"^FROM \S+ AS (\w+)$", text, re.MULTILINE)
    assert stages == ["builder", "runtime"]
    runtime = text.split(" AS runtime", 1)[1]
    assert "COPY --from=builder /opt/venv /opt/venv" in runtime
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", runtime, re.MULTILINE)
    assert f'CMD ["python", "-m", "atlas_{svc}"]' in runtime
    assert "-c requirements/constraints.txt" in text
    if svc in ("catalog", "mobility"):
        assert "COPY services/catalog/refdata /app/refdata" in runtime
        assert f"ATLAS_{svc.upper()}_REFDATA_DIR=/app/refdata" in runtime
    if svc == "mobility":
        assert (ROOT / "services/mobility/src/atlas_mobility/policy/milestones.yaml").is_file()


# ---- Kubernetes manifests ----------------------------------------------------------------------


def test_generated_manifests_are_up_to_date() -> None:
    generator = _generator()
    stale = [
        str(rel)
        for rel, content in generator.render().items()
        if not (K8S / "base" / rel).is_file() or (K8S / "base" / rel).read_text() != content
    ]
    assert not stale, f"stale generated manifests, run `make contracts`: {stale}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_kubernetes_schemas(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Core kinds in strict mode; custom resources have no vendored schema and are skipped."""
    checked = 0
    errors = []
    for doc in rendered[overlay]:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.SchemaNotFoundError:
            assert "/" in doc["apiVersion"], doc["kind"]
            assert "k8s.io" not in doc["apiVersion"], doc["kind"]
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert not errors
    assert checked >= 60


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_checkov(overlay: str, tmp_path: Path) -> None:
    kustomize = _tool("kustomize", ATLAS_HOME / "bin" / "kustomize")
    checkov = _tool("checkov", ATLAS_HOME / "checkov" / "bin" / "checkov")
    built = _run(kustomize, "build", str(K8S / "overlays" / overlay))
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(built.stdout)
    scanned = _run(checkov, "--config-file", str(K8S / ".checkov.yaml"), "-f", str(manifest))
    assert scanned.returncode == 0, scanned.stdout[-4000:]
    assert "Failed checks: 0" in scanned.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_its_workloads_hardened(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    secrets = _of_kind(docs, "Secret")
    assert not secrets, "no Secret is committed: workloads reference them"
    for svc in SERVICES:
        for kind in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            assert (kind, svc) in names, kind
            assert (kind, f"{svc}-worker") in names, kind
        for kind, name in (
            ("Service", svc),
            ("ServiceAccount", svc),
            ("ConfigMap", f"{svc}-config"),
            ("NetworkPolicy", f"{svc}-api"),
            ("NetworkPolicy", f"{svc}-worker"),
            ("Cluster", f"{svc}-db"),
            ("KafkaUser", svc),
        ):
            assert (kind, name) in names, (kind, name)
    assert ("NetworkPolicy", "default-deny-all") in names
    for sa in _of_kind(docs, "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False
    for deployment in _of_kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["runAsNonRoot"]
            assert ctx["readOnlyRootFilesystem"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"]["drop"] == ["ALL"]
            assert ctx["seccompProfile"]["type"] == "RuntimeDefault"
            assert container["resources"]["limits"]
            assert container["resources"]["requests"]
            for env in container.get("env", []):
                assert "value" in env or "secretKeyRef" in env["valueFrom"]
                assert not re.search(r"PASSWORD|TOKEN", env["name"]) or "valueFrom" in env
            if not deployment["metadata"]["name"].endswith("-worker"):
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_prometheus_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = _tool("promtool")
    rule = yaml.safe_load((K8S / "base" / "monitoring" / "rules.yaml").read_text())
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    checked = _run(promtool, "check", "rules", str(rules_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    alerts = {r.get("alert") for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "AtlasRequestSlaBreaches",
        "AtlasDlqGrowing",
        "AtlasConsumerLag",
        "AtlasNotificationFailureRate",
        "AtlasOutboxRelayFailing",
    } <= alerts


# ---- Registry invariants -----------------------------------------------------------------------


def test_kafka_topics_agree_with_the_registry(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Every topic and DLQ of the registry, and nothing else, with its partitions and policy."""
    for overlay in OVERLAYS:
        manifests = {t["spec"]["topicName"]: t for t in _of_kind(rendered[overlay], "KafkaTopic")}
        expected = {name: (parts, cfg) for name, parts, cfg in REGISTRY.kafka_topics()}
        assert set(manifests) == set(expected)
        for topic in REGISTRY.topics():
            assert topic.dlq in manifests
        for name, (partitions, config) in expected.items():
            spec = manifests[name]["spec"]
            assert spec["partitions"] == partitions, name
            assert spec["config"]["cleanup.policy"] == config["cleanup.policy"], name
            assert spec["config"].get("retention.ms") == config.get("retention.ms"), name
            assert spec["replicas"] == 3
            assert manifests[name]["metadata"]["labels"]["strimzi.io/cluster"] == "atlas"


def _acls(docs: list[dict[str, Any]], user: str) -> dict[str, set[str]]:
    (found,) = [u for u in _of_kind(docs, "KafkaUser") if u["metadata"]["name"] == user]
    by_op: dict[str, set[str]] = {"Write": set(), "Read": set()}
    for acl in found["spec"]["authorization"]["acls"]:
        if acl["resource"]["type"] != "topic" or acl["resource"]["patternType"] != "literal":
            continue
        for op in acl["operations"]:
            by_op.setdefault(op, set()).add(acl["resource"]["name"])
    return by_op


def test_kafka_users_follow_topic_ownership(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["prod"]
    topics = REGISTRY.topics()
    for svc in SERVICES:
        acls = _acls(docs, svc)
        own = {t.name for t in topics if svc in t.producers}
        dlqs = {t.dlq for t in topics if svc in t.consumers}
        assert acls["Write"] == own | dlqs, svc
        assert acls["Read"] == {t.name for t in topics if svc in t.consumers}, svc
        assert "All" not in acls or all(not n.endswith(".v1") for n in acls["All"])
    hr = _acls(docs, "hr")
    hr_topics = {"hr.mutations.v1", "hr.missions.v1"}
    assert hr == {"Write": hr_topics, "Read": set(), "Describe": hr_topics}
    integrator = _acls(docs, "integrator")
    assert integrator["Write"] == set()
    assert integrator["Read"] == {t.name for t in topics if t.public}
    assert not any(n.endswith(DLQ_SUFFIX) for n in integrator["Read"])
    kafka = _of_kind(docs, "Kafka")[0]["spec"]["kafka"]
    assert kafka["rack"]["topologyKey"] == "topology.kubernetes.io/zone"
    assert _of_kind(docs, "KafkaNodePool")[0]["spec"]["replicas"] == 3
