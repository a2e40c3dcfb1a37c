"""`make run`'s supervisor, driven with tiny fake services instead of the real ones."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from atlas_devstack.run import PROCESS_TABLE, build_specs

SRC = Path(__file__).resolve().parents[1] / "src"

# A fake service: serves /readyz (503, then 200 after a delay), starts a grandchild that would
# outlive it if only the leader were signalled, and records both pids.
FAKE_SERVICE = """
import http.server, os, signal, subprocess, sys, time
port, pid_file, delay, ignore_term = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
if ignore_term == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
with open(pid_file, "w") as out:
    out.write(f"{os.getpid()} {child.pid}")
start = time.monotonic()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ready = self.path == "/readyz" and time.monotonic() - start > delay
        self.send_response(200 if ready else 503)
        self.end_headers()

    def log_message(self, *args):
        pass

print("fake service up on", port, flush=True)
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

# Runs the supervisor on specs given as JSON, the way `python -m atlas_devstack.run` would.
SUPERVISOR = """
import json, sys
from pathlib import Path
from atlas_devstack.run import ProcessSpec, run
config = json.loads(sys.argv[1])
specs = [ProcessSpec(**spec) for spec in config["specs"]]
base = Path(config["base"])
sys.exit(run(specs, log_dir=base / "logs", state_dir=base / "run",
             ready_timeout=config["ready_timeout"], stop_grace=config["stop_grace"]))
"""


class Supervised:
    """A supervisor subprocess whose output is collected line by line."""

    def __init__(self, base: Path, specs: list[dict[str, object]], **options: float) -> None:
        config = {"base": str(base), "specs": specs, "ready_timeout": 20, "stop_grace": 5}
        config.update(options)
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", SUPERVISOR, json.dumps(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None:
                self._reader.join(2)
                if text in self.output:
                    return
                raise AssertionError(f"supervisor exited before {text!r}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} after {timeout} s:\n{self.output}")
            time.sleep(0.05)

    def finish(self, timeout: float = 20.0) -> int:
        code = self.process.wait(timeout)
        self._reader.join(2)
        return code


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Callable[..., Supervised]]:
    started: list[Supervised] = []

    def start(specs: list[dict[str, object]], **options: float) -> Supervised:
        supervised = Supervised(tmp_path, specs, **options)
        started.append(supervised)
        return supervised

    yield start
    for supervised in started:  # never leave a supervisor behind, even when a test fails
        if supervised.process.poll() is None:
            supervised.process.kill()
            supervised.process.wait()


@pytest.fixture
def fake_service(tmp_path: Path, free_port: Callable[[], int]) -> Callable[..., dict[str, object]]:
    script = tmp_path / "fake_service.py"
    script.write_text(FAKE_SERVICE)

    def spec(name: str, delay: float = 0.3, ignore_term: bool = False) -> dict[str, object]:
        port = free_port()
        pid_file = tmp_path / f"{name}.pids"
        return {
            "name": name,
            "argv": [
                sys.executable,
                str(script),
                str(port),
                str(pid_file),
                str(delay),
                "1" if ignore_term else "0",
            ],
            "ready_url": f"http://127.0.0.1:{port}/readyz",
            "url": f"http://127.0.0.1:{port}",
        }

    return spec


def _pids(tmp_path: Path, name: str) -> list[int]:
    return [int(pid) for pid in (tmp_path / f"{name}.pids").read_text().split()]


def test_start_ready_then_ctrl_c_leaves_no_process(
    tmp_path: Path,
    supervised: Callable[..., Supervised],
    fake_service: Callable[..., dict[str, object]],
    wait_until_dead: Callable[..., list[int]],
) -> None:
    worker = {"name": "worker", "argv": [sys.executable, "-c", "import time; time.sleep(300)"]}
    run = supervised([fake_service("alpha"), fake_service("beta", delay=0.8), worker])
    run.wait_for("ATLAS is running")
    assert re.search(r"^alpha +\| fake service up on", run.output, re.M)  # prefixed console
    assert re.search(r"^beta +\| ready", run.output, re.M)
    assert "fake service up on" in (tmp_path / "logs" / "alpha.log").read_text()  # teed
    pids = _pids(tmp_path, "alpha") + _pids(tmp_path, "beta")

    run.process.send_signal(signal.SIGINT)
    assert run.finish() == 0, run.output
    assert wait_until_dead(pids, 5) == [], run.output
    assert "did not stop in time" not in run.output
    assert not list((tmp_path / "run").glob("*.pid"))


def test_sigterm_stops_and_kills_a_process_ignoring_it(
    tmp_path: Path,
    supervised: Callable[..., Supervised],
    fake_service: Callable[..., dict[str, object]],
    wait_until_dead: Callable[..., list[int]],
) -> None:
    run = supervised([fake_service("stubborn", ignore_term=True)], stop_grace=1)
    run.wait_for("ATLAS is running")
    run.process.send_signal(signal.SIGTERM)
    assert run.finish() == 0, run.output
    assert re.search(r"^stubborn +\| did not stop in time: killed", run.output, re.M)
    assert wait_until_dead(_pids(tmp_path, "stubborn"), 5) == []


def test_readiness_timeout_names_the_laggard_and_stops_everything(
    tmp_path: Path,
    supervised: Callable[..., Supervised],
    fake_service: Callable[..., dict[str, object]],
    wait_until_dead: Callable[..., list[int]],
) -> None:
    run = supervised([fake_service("quick"), fake_service("slow", delay=60)], ready_timeout=2)
    assert run.finish() == 1, run.output
    assert "not ready after 2 s: slow" in run.output
    assert "ATLAS is running" not in run.output
    assert wait_until_dead(_pids(tmp_path, "quick") + _pids(tmp_path, "slow"), 5) == []


def test_a_process_dying_at_start_is_reported(supervised: Callable[..., Supervised]) -> None:
    crash = {
        "name": "crash",
        "argv": [sys.executable, "-c", "import sys; sys.exit('no such module')"],
        "ready_url": "http://127.0.0.1:9/readyz",
    }
    run = supervised([crash])
    assert run.finish() == 1, run.output
    assert "crash exited with code 1 before it was ready" in run.output
    assert re.search(r"^crash +\| no such module", run.output, re.M)


def test_a_second_run_stops_processes_left_by_a_killed_one(
    tmp_path: Path,
    supervised: Callable[..., Supervised],
    fake_service: Callable[..., dict[str, object]],
    process_alive: Callable[[int], bool],
    wait_until_dead: Callable[..., list[int]],
) -> None:
    spec = fake_service("alpha")
    first = supervised([spec])
    first.wait_for("ATLAS is running")
    leftover = _pids(tmp_path, "alpha")
    first.process.kill()  # no chance to clean up: its child keeps the port
    first.finish()
    assert all(process_alive(pid) for pid in leftover)

    second = supervised([spec])  # same command and port
    second.wait_for("ATLAS is running")
    assert "left over from an earlier run" in second.output
    assert wait_until_dead(leftover, 5) == []
    second.process.send_signal(signal.SIGINT)
    assert second.finish() == 0, second.output
    assert wait_until_dead(_pids(tmp_path, "alpha"), 5) == []


def test_build_specs_follows_the_contract(tmp_path: Path) -> None:
    specs = {spec.name: spec for spec in build_specs(tmp_path, "127.0.0.1:9092", tmp_path / "data")}
    assert [entry.name for entry in PROCESS_TABLE] == [
        "catalog",
        "requests",
        "mobility",
        "notify",
        "vault",
    ]
    mobility = specs["mobility"]
    assert list(mobility.argv)[1:] == ["-m", "atlas_mobility"]
    assert mobility.ready_url == "http://127.0.0.1:8103/readyz"
    assert mobility.env["ATLAS_MOBILITY_PORT"] == "8103"
    assert mobility.env["ATLAS_MOBILITY_KAFKA_BOOTSTRAP"] == "127.0.0.1:9092"
    assert mobility.env["ATLAS_MOBILITY_AUTH_MODE"] == "local"
    assert mobility.env["ATLAS_MOBILITY_DATABASE_URL"] == (
        f"sqlite+aiosqlite:///{tmp_path}/data/mobility.db"
    )
