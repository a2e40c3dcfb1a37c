"""The ops dashboard in headless Chromium, against the platform running as processes.

The five services and the dashboard run as `make run` starts them (each its own process, the
real broker, PostgreSQL per service). An HR mutation opens a dossier at its destination space,
an operator switches that space's crisis mode on, and the dashboard page, loaded in Debian's
Chromium through Selenium, shows the arrival with its cases, the crisis, and the consumer lag
and DLQ tables. The test saves a full-page screenshot and prints its path.
"""

from __future__ import annotations

import asyncio
import io
import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_platform import REPO, Platform, free_port, poll
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from atlas_devstack.hrsim import PlanGenerator, load_garrisons, planned, publish
from atlas_devstack.run import OPS_TABLE, Supervisor, build_specs
from atlas_events.auth import Role
from atlas_events.schemas import hr

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REASON = "Exercice de crise (test du tableau de bord)"


@pytest.fixture
def dashboard_url(platform: Platform, tmp_path: Path) -> Iterator[str]:
    """The dashboard process from `make run`'s table, on a free port, reading the platform."""
    home = tmp_path / "atlas"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    [spec] = build_specs(REPO, platform.bootstrap, home / "data", OPS_TABLE)
    env = {
        **spec.env,
        "ATLAS_HOME": str(home),  # the platform's signing key
        "ATLAS_DASHBOARD_PORT": str(port),
        "ATLAS_DASHBOARD_KAFKA_POLL_SECONDS": "1",
        "ATLAS_DASHBOARD_REFRESH_SECONDS": "120",  # the test reloads the page itself
    }
    spec = replace(spec, env=env, url=url, ready_url=f"{url}/readyz")
    supervisor = Supervisor([spec], home / "logs", home / "run-dashboard", console=io.StringIO())
    try:
        supervisor.start_all()
        supervisor.wait_ready(timeout=60)
        yield url
    finally:
        supervisor.stop_all(grace=10)


@pytest.fixture
def chromium() -> Iterator[webdriver.Chrome]:
    """Headless Chromium driven by the Debian chromedriver (Selenium Manager never runs)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(
                f"{path} is missing: run `make chromium` (Debian chromium, chromium-driver)"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--lang=fr-FR",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _mutation(seed: int) -> tuple[str, Any]:
    """A family moving to a mainland space in about six weeks: three handler cases."""
    generator = PlanGenerator(load_garrisons(), seed=seed, unresolved_ratio=0.0)
    mutation = generator.announce(household="couple+2", overseas=False)
    snapshot = mutation.snapshot
    report = datetime.now(UTC).date() + timedelta(days=45)
    snapshot["report_date"] = report.isoformat()
    snapshot["needs"] = {"housing": True, "move": True}
    snapshot["household"]["children"] = [
        {"child_ref": "c1", "birth_date": (report - timedelta(days=9 * 365)).isoformat()},
    ]
    event = planned(mutation, hr.MUTATION_ANNOUNCED, snapshot)
    return hr.MutationAnnounced.model_validate(event.data).mutation_id, event


def _arrivals(overview: dict[str, Any], atlas_id: str) -> dict[str, Any] | None:
    return next((a for a in overview["arrivals"] if a["atlas_id"] == atlas_id), None)


@pytest.mark.timeout(240)
def test_dashboard_page_in_chromium_shows_arrivals_crisis_lag_and_dlqs(
    platform: Platform,
    dashboard_url: str,
    chromium: webdriver.Chrome,
    kafka_bootstrap: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ops = platform.client("ops-e2e", Role.OPS)
    mutation_id, event = _mutation(secrets.randbelow(10**9))
    asyncio.run(publish([event], kafka_bootstrap))

    def dossier() -> dict[str, Any] | None:
        response = ops.get(platform.url("mobility", f"/v1/dossiers/{mutation_id}"))
        if response.status_code != 200:
            return None
        found: dict[str, Any] = response.json()
        cases = found["cases"]
        settled = cases and all(c.get("request_status") for c in cases)  # each request exists
        return found if found["destination_atlas_id"] and settled else None

    opened = poll("the dossier at its destination", dossier, timeout=45)
    destination: str = opened["destination_atlas_id"]
    kinds = {c["kind"] for c in opened["cases"]}

    switched = ops.put(
        platform.url("catalog", f"/v1/spaces/{destination}/crisis"),
        json={"active": True, "reason": REASON},
    )
    assert switched.status_code == 200, switched.text
    try:
        _check_page(ops, dashboard_url, destination, kinds, chromium, tmp_path, capsys)
    finally:
        off = ops.put(
            platform.url("catalog", f"/v1/spaces/{destination}/crisis"), json={"active": False}
        )
        assert off.status_code == 200, off.text


def _check_page(
    ops: httpx.Client,
    dashboard_url: str,
    destination: str,
    kinds: set[str],
    driver: webdriver.Chrome,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def ready() -> dict[str, Any] | None:
        response = ops.get(f"{dashboard_url}/v1/overview")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        arrivals = _arrivals(body, destination)
        in_crisis = any(s["atlas_id"] == destination for s in body["crisis"]["spaces"])
        has_kafka = body["kafka"]["lag"] and body["kafka"]["dlq"]
        return body if arrivals and in_crisis and has_kafka and body["caught_up"] else None

    before = poll("the dashboard's figures for the destination", ready, timeout=45)
    driver.get(f"{dashboard_url}/")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    assert "tableau de bord" in driver.title

    # Arrivals: the destination's row, its total and its housing case.
    row = driver.find_element(By.CSS_SELECTOR, f'#table-arrivees tr[data-atlas-id="{destination}"]')
    total = int(row.find_element(By.CSS_SELECTOR, "td.total").text)
    after = ops.get(f"{dashboard_url}/v1/overview").json()
    low, high = _arrivals(before, destination), _arrivals(after, destination)
    assert low is not None
    assert high is not None
    assert low["total"] <= total <= high["total"]  # other tests may add arrivals meanwhile
    month = (datetime.now(UTC).date() + timedelta(days=45)).strftime("%Y-%m")
    assert int(row.find_element(By.CSS_SELECTOR, f'td[data-mois="{month}"]').text) >= 1
    for kind in kinds:
        cell = row.find_element(By.CSS_SELECTOR, f'td.dossiers[data-kind="{kind}"]')
        assert cell.find_elements(By.CSS_SELECTOR, "span.badge"), cell.text

    # Crisis: the space is listed with the operator's reason.
    crisis = driver.find_element(By.CSS_SELECTOR, f'#table-crise tr[data-atlas-id="{destination}"]')
    assert REASON in crisis.text
    assert driver.find_element(By.ID, "crise-nationale").get_attribute("data-active") in {
        "true",
        "false",
    }

    # Consumer lag and DLQ tables: a row per group and topic, a row per dead-letter topic.
    lag_rows = driver.find_elements(By.CSS_SELECTOR, "#table-retard tbody tr")
    assert lag_rows
    groups = {r.get_attribute("data-group") for r in lag_rows}
    assert {g["group"] for g in before["kafka"]["lag"]} & groups
    dlq_topics = {
        r.get_attribute("data-topic")
        for r in driver.find_elements(By.CSS_SELECTOR, "#table-dlq tbody tr")
    }
    assert "requests.requests.v1.dlq" in dlq_topics
    assert "mobility.dossiers.v1.dlq" in dlq_topics

    screenshot = _screenshot(driver, tmp_path / "dashboard.png")
    with capsys.disabled():
        print(f"\ndashboard screenshot: {screenshot}")


def _screenshot(driver: webdriver.Chrome, path: Path) -> Path:
    """A full-page PNG: the window grown to the page's height (plus its own frame) first."""
    height, frame = driver.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
    )
    driver.set_window_size(1400, min(int(height) + int(frame) + 16, 10_000))
    assert driver.save_screenshot(str(path)), "Chromium took no screenshot"
    assert path.stat().st_size > 10_000
    return path
