"""`make run` (CONTRACTS.md §3): broker, five services and the ops dashboard ready, one token for
all, clean stop."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from atlas_devstack.run import MAIL_PORT

SERVICES = {
    "catalog": 8101,
    "requests": 8102,
    "mobility": 8103,
    "notify": 8104,
    "vault": 8105,
    "dashboard": 8100,
}
REPO = Path(__file__).resolve().parents[2]


def _get(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return httpx.get(url, headers=headers, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has already exited
    except FileNotFoundError:
        return False


@pytest.fixture
def free_ports() -> None:
    busy = [p for p in (9092, 9093, MAIL_PORT, *SERVICES.values()) if _port_open(p)]
    if busy:
        pytest.fail(f"ports {busy} are in use: stop the running `make run` first")


class Platform:
    """One `python -m atlas_devstack.run` (what `make run` runs) with its own ATLAS_HOME."""

    def __init__(self, home: Path, log: Path) -> None:
        self.env = {**os.environ, "ATLAS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        self.home = home
        self.log_path = log
        self._log = log.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "atlas_devstack.run"],
            cwd=REPO,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pids: list[int] = []

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not all(_get(f"http://127.0.0.1:{p}/readyz") == 200 for p in SERVICES.values()):
            assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, self.log_path.read_text()[-3000:]
            time.sleep(0.5)
        self.pids = [int(p.read_text().split()[0]) for p in (self.home / "run").glob("*.pid")]
        broker_pid = self.home / "kafka" / "broker.pid"
        if broker_pid.exists():
            self.pids.append(int(broker_pid.read_text().split()[0]))

    def token(self, *roles: str) -> str:
        args = [a for role in roles for a in ("--role", role)]
        return subprocess.run(
            [Path(sys.executable).parent / "atlas", "token", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def ctrl_c(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise
        finally:
            self._log.close()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in self.pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in self.pids if _alive(pid)] == []
        assert [p for p in (9092, MAIL_PORT, *SERVICES.values()) if _port_open(p)] == []


def _demo_and_hr_publish_work(platform: Platform, token: str) -> None:
    """`make demo` prints its tables, and `atlas hr publish` reaches mobility (issue 8)."""
    from atlas_devstack.hrsim import generate_plan

    demo = subprocess.run(
        [sys.executable, "-m", "atlas_devstack.demo", "--timeout", "90"],
        cwd=REPO,
        env=platform.env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    for title in ("Dossiers (mobility)", "Cases and milestones (mobility)", "Notifications"):
        assert title in demo.stdout, demo.stdout[-3000:]
    # A departure and a return (issue 23).
    missions = demo.stdout.split("Missions: departures and returns (mobility)")[1]
    assert "en_retour" in missions, missions[:3000]
    assert "depart_mission" in missions, missions[:3000]
    assert "retour_mission" in missions, missions[:3000]

    seed, count = int(time.time()) % 10**6, 12
    atlas = Path(sys.executable).parent / "atlas"
    published = subprocess.run(
        [atlas, "hr", "publish", "--count", str(count), "--seed", str(seed)],
        env=platform.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert published.returncode == 0, published.stderr[-3000:]
    mutations = {e.mutation_id for e in generate_plan(count, seed=seed)}  # the same plan
    headers = {"Authorization": f"Bearer {token}"}

    def missing() -> set[str]:
        return {
            m
            for m in mutations
            if httpx.get(f"http://127.0.0.1:8103/v1/dossiers/{m}", headers=headers).status_code
            != 200
        }

    deadline = time.monotonic() + 60
    while missing() and time.monotonic() < deadline:
        time.sleep(1)
    assert missing() == set()


@pytest.mark.timeout(420)
def test_make_run_starts_everything_stops_cleanly_and_keeps_data(
    tmp_path: Path, free_ports: None
) -> None:
    home, log = tmp_path / "atlas", tmp_path / "run.log"
    first = Platform(home, log)
    try:
        first.wait_ready()
        assert len(first.pids) >= len(SERVICES)
        token = first.token("ops")
        for port in SERVICES.values():
            assert _get(f"http://127.0.0.1:{port}/v1/whoami", token) == 200
            assert _get(f"http://127.0.0.1:{port}/v1/whoami") == 401
        # The ops dashboard: its page opens in a browser without a token (local mode, 127.0.0.1),
        # its JSON needs one.
        page = httpx.get("http://127.0.0.1:8100/", timeout=5)
        assert page.status_code == 200, page.text
        assert "tableau de bord" in page.text
        assert _get("http://127.0.0.1:8100/v1/overview") == 401
        assert _get("http://127.0.0.1:8100/v1/overview", token) == 200
        # The local mail sink notify sends to answers SMTP.
        with smtplib.SMTP("127.0.0.1", MAIL_PORT, timeout=5) as smtp:
            assert smtp.noop()[0] == 250
        _demo_and_hr_publish_work(first, token)
        admin = {"Authorization": f"Bearer {first.token('admin')}"}
        url = "http://127.0.0.1:8101/v1/prestations/HAB-005"
        version = httpx.get(url, headers=admin).json()["version"]
        changed = httpx.patch(
            url, headers=admin, json={"version": version, "title": "Gardée entre deux runs"}
        )
        assert changed.status_code == 200, changed.text
    finally:
        first.ctrl_c()

    second = Platform(home, log)  # the same ./.atlas: a second `make run`
    try:
        second.wait_ready()
        admin = {"Authorization": f"Bearer {second.token('admin')}"}
        kept = httpx.get("http://127.0.0.1:8101/v1/prestations/HAB-005", headers=admin).json()
        assert kept["title"] == "Gardée entre deux runs"
        assert kept["version"] == version + 1
    finally:
        second.ctrl_c()
