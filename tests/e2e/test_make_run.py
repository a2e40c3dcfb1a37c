"""`make run` (CONTRACTS.md §3): broker and five services ready, one token for all, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

SERVICES = {"catalog": 8101, "requests": 8102, "mobility": 8103, "notify": 8104, "vault": 8105}
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
    busy = [p for p in (9092, 9093, *SERVICES.values()) if _port_open(p)]
    if busy:
        pytest.fail(f"ports {busy} are in use: stop the running `make run` first")


@pytest.mark.timeout(240)
def test_make_run_starts_everything_and_ctrl_c_stops_everything(
    tmp_path: Path, free_ports: None
) -> None:
    env = {**os.environ, "ATLAS_HOME": str(tmp_path / "atlas"), "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "run.log").open("w")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "atlas_devstack.run"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = started + 90
        while not all(_get(f"http://127.0.0.1:{p}/readyz") == 200 for p in SERVICES.values()):
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(0.5)

        token = subprocess.run(
            [Path(sys.executable).parent / "atlas", "token", "--role", "ops"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for port in SERVICES.values():
            assert _get(f"http://127.0.0.1:{port}/v1/whoami", token) == 200
            assert _get(f"http://127.0.0.1:{port}/v1/whoami") == 401

        pids = [int(p.read_text().split()[0]) for p in (tmp_path / "atlas" / "run").glob("*.pid")]
        broker_pid = tmp_path / "atlas" / "kafka" / "broker.pid"
        if broker_pid.exists():
            pids.append(int(broker_pid.read_text().split()[0]))
        assert len(pids) >= len(SERVICES)
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        log.close()

    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in pids if _alive(pid)] == []
    assert [p for p in (9092, *SERVICES.values()) if _port_open(p)] == []
