"""The five services as their own processes for end-to-end tests: start, kill, restart, stop.

Shared by test_flagship, test_crisis and test_faults. Each service gets its own PostgreSQL
database and free port; the processes come from `make run`'s process table (atlas_devstack.run).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

import httpx
import psycopg
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from atlas_devstack.run import OPS_TABLE, PROCESS_TABLE, ProcessSpec, Supervisor, build_specs
from atlas_events.auth import LocalSigningKey, Role
from atlas_events.kafka import ensure_topics

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("catalog", "requests", "mobility", "notify", "vault")
DASHBOARD = "dashboard"
MOBILITY_WORKER = "mobility-worker"
T = TypeVar("T")


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Call `probe` until it returns something truthy; fail saying `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


class Mailbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append(([str(r) for r in envelope.rcpt_tos], parsed))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for rcpts, m in self.messages if address in rcpts]


@dataclass
class Platform:
    """The services started as processes, their databases, and tokens for them."""

    ports: dict[str, int]
    key: LocalSigningKey
    supervisor: Supervisor
    bootstrap: str
    database_urls: dict[str, str] = field(default_factory=dict)

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def client(self, sub: str, *roles: Role, atlas_id: str | None = None) -> httpx.Client:
        token = self.key.issue(sub, list(roles), atlas_id=atlas_id)
        return httpx.Client(
            headers={"Authorization": f"Bearer {token}"}, timeout=10, trust_env=False
        )

    def logs(self, tail: int = 1500) -> str:
        """The end of every process's log, for failure messages."""
        parts = []
        for spec in self.supervisor.specs:
            path = self.supervisor.log_dir / f"{spec.name}.log"
            if path.exists():
                parts.append(f"--- {spec.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    def log_of(self, name: str) -> str:
        path = self.supervisor.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def pid(self, name: str) -> int:
        return self.supervisor.children[name].process.pid

    def alive(self, name: str) -> bool:
        return self.supervisor.children[name].process.poll() is None

    def exited(self) -> dict[str, int]:
        """Processes that exited by themselves, with their exit codes."""
        return {
            name: code
            for name, child in self.supervisor.children.items()
            if (code := child.process.poll()) is not None
        }

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send `sig` to the process's group and wait until it is gone."""
        child = self.supervisor.children[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=30)
        child.pump.join(timeout=5)
        child.log.close()

    def restart(self, name: str, ready_timeout: float = 90) -> None:
        """Start a stopped process again with the same command and environment."""
        spec = self.supervisor.children[name].spec
        self.supervisor.start(spec)
        if spec.ready_url:
            deadline = time.monotonic() + ready_timeout
            while not _ready(spec.ready_url):
                if self.supervisor.children[name].process.poll() is not None:
                    pytest.fail(f"{name} exited while restarting:\n{self.log_of(name)[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"{name} not ready {ready_timeout:.0f} s after its restart")
                time.sleep(0.25)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_for_catalog_replica(database: str, timeout: float) -> None:
    """Wait until the requests service's replica holds the catalog's reference data.

    The replica is read from the catalog's topics after both services are ready; a command that
    comes first (a mobility mission announced at once) is applied with the fallback prestation,
    as the service does for a code it does not know. Tests start once the platform has settled,
    as an operator's first request after `make run` would.
    """
    refdata = REPO / "services" / "catalog" / "refdata"
    wanted = {
        "replica_prestations": len(json.loads((refdata / "prestations.json").read_text())),
        "replica_spaces": len(json.loads((refdata / "spaces.json").read_text())),
    }
    url = database.replace("postgresql+asyncpg://", "postgresql://")

    def loaded() -> bool:
        with psycopg.connect(url) as conn:
            return all(
                (conn.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,))[0] >= count  # noqa: S608
                for table, count in wanted.items()
            )

    poll("the requests service's catalog replica", lambda: loaded() or None, timeout=timeout)


@contextlib.contextmanager
def start_platform(
    home: Path,
    bootstrap: str,
    database_url: Callable[[str], str],
    *,
    extra_env: Mapping[str, Mapping[str, str]] | None = None,
    separate_mobility_worker: bool = False,
    dashboard: bool = False,
    ready_timeout: float = 90,
) -> Iterator[Platform]:
    """Start the five services (each its own process and database) and stop them on exit.

    `database_url(service)` gives the database of each service. With `separate_mobility_worker`
    the mobility API runs without workers and `mobility-worker` (`python -m atlas_mobility.worker`,
    the deployment's worker) runs the stream, reminders and relay: a process a test can kill.
    With `dashboard` the ops dashboard runs too, as `make run` starts it (`Platform.url("dashboard",
    ...)`).
    """
    key = LocalSigningKey.load_or_create(home / "keys" / "jwt-ed25519.pem")
    asyncio.run(ensure_topics(bootstrap))  # what `make run` does before the services
    table = PROCESS_TABLE + (OPS_TABLE if dashboard else ())
    names = [entry.name for entry in table]
    ports = {name: free_port() for name in names}
    extra = {name: dict(values) for name, values in (extra_env or {}).items()}
    urls = {name: database_url(name) for name in names}
    specs: list[ProcessSpec] = []
    for spec in build_specs(REPO, bootstrap, home / "data", table):
        prefix = f"ATLAS_{spec.name.upper()}_"
        url = f"http://127.0.0.1:{ports[spec.name]}"
        env = {
            **spec.env,
            "ATLAS_HOME": str(home),
            f"{prefix}DATABASE_URL": urls[spec.name],
            f"{prefix}PORT": str(ports[spec.name]),
            **extra.get(spec.name, {}),
        }
        if spec.name == "vault":
            env.setdefault("ATLAS_VAULT_DATA_DIR", str(home / "vault"))
        if spec.name == "mobility" and separate_mobility_worker:
            env["ATLAS_MOBILITY_RUN_WORKERS"] = "false"
            worker_env = {**env, "ATLAS_MOBILITY_RUN_WORKERS": "true"}
            argv = (spec.argv[0], "-m", "atlas_mobility.worker")
            specs.append(replace(spec, env=env, url=url, ready_url=f"{url}/readyz"))
            specs.append(ProcessSpec(MOBILITY_WORKER, argv, worker_env))
            continue
        specs.append(replace(spec, env=env, url=url, ready_url=f"{url}/readyz"))
    supervisor = Supervisor(specs, home / "logs", home / "run", console=io.StringIO())
    platform = Platform(ports, key, supervisor, bootstrap, urls)
    try:
        supervisor.start_all()
        supervisor.wait_ready(timeout=ready_timeout)
        _wait_for_catalog_replica(urls["requests"], timeout=ready_timeout)
        yield platform
    finally:
        supervisor.stop_all(grace=10)
