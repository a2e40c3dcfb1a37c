"""`make run`: the Kafka broker plus every service as a supervised process, stopped by Ctrl-C.

Usage: `python -m atlas_devstack.run`. Processes come from `PROCESS_TABLE` (the services) and
`OPS_TABLE` (the ops dashboard); add a line there for a new service or worker. Each process
runs in its own process group, its output is prefixed with its name on the console and
appended to `.atlas/logs/<name>.log`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Protocol, TextIO

from atlas_devstack.paths import atlas_dir, repo_root

KAFKA_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
MAIL_PORT = 8025  # the local SMTP sink notify sends to under `make run`
READY_TIMEOUT = 90.0
STOP_GRACE = 10.0


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process: its name, command, extra environment and readiness URL."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_url: str | None = None  # answers 200 when ready; None means ready once started
    url: str | None = None  # shown to the operator


@dataclass(frozen=True)
class TableEntry:
    """A line of the process table: `python -m <module>` configured as service `<service>`."""

    name: str
    module: str
    service: str  # whose ATLAS_<SERVICE>_* settings the process reads
    port: int | None = None  # HTTP port; readiness is GET /readyz on it. None for workers.


PROCESS_TABLE: tuple[TableEntry, ...] = (
    TableEntry("catalog", "atlas_catalog", "catalog", 8101),
    TableEntry("requests", "atlas_requests", "requests", 8102),
    TableEntry("mobility", "atlas_mobility", "mobility", 8103),
    TableEntry("notify", "atlas_notify", "notify", 8104),
    TableEntry("vault", "atlas_vault", "vault", 8105),
)

# Processes that only watch the platform (they read its topics, no service depends on them).
# Kept apart so that tests starting "the services" from PROCESS_TABLE do not start them too.
OPS_TABLE: tuple[TableEntry, ...] = (TableEntry("dashboard", "atlas_dashboard", "dashboard", 8100),)


def build_specs(
    repo: Path, bootstrap: str, data_dir: Path, table: Sequence[TableEntry] = PROCESS_TABLE
) -> list[ProcessSpec]:
    """Turn the process table into commands and environments (SQLite files in `data_dir`)."""
    venv_python = repo / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.exists() else sys.executable
    specs = []
    for entry in table:
        prefix = f"ATLAS_{entry.service.upper()}_"
        # Source dirs first, so the platform runs before the packages are pip-installed.
        source_dirs = [repo / "libs" / "events" / "src", repo / "services" / entry.service / "src"]
        python_path = os.pathsep.join(
            [str(path) for path in source_dirs] + [p for p in [os.environ.get("PYTHONPATH")] if p]
        )
        env = {
            f"{prefix}DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / entry.service}.db",
            f"{prefix}KAFKA_BOOTSTRAP": bootstrap,
            f"{prefix}AUTH_MODE": "local",
            "PYTHONPATH": python_path,
        }
        url = ready_url = None
        if entry.port is not None:
            env[f"{prefix}PORT"] = str(entry.port)
            url = f"http://127.0.0.1:{entry.port}"
            ready_url = f"{url}/readyz"
        specs.append(
            ProcessSpec(entry.name, (python, "-m", entry.module), env, ready_url=ready_url, url=url)
        )
    return specs


class NotReadyError(RuntimeError):
    """Some processes did not become ready in time, or exited while starting."""


class _ShutdownRequested(BaseException):
    """Raised in the main thread by SIGINT or SIGTERM."""


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_COLOURS = ("36", "33", "35", "32", "34", "31", "96", "93", "95", "92")


def http_ready(url: str, timeout: float = 2.0) -> bool:
    """Return True when GET `url` answers 200 (proxies bypassed: these are local addresses)."""
    try:
        with _NO_PROXY.open(url, timeout=timeout) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _group_alive(pgid: int) -> bool:
    """Return True while a live (non-zombie) process remains in process group `pgid`."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: signal 0 also counts zombies, which is merely slower
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        # Zombies are dead already; orphans wait for init to reap them, sometimes for seconds.
        if int(fields[2]) == pgid and fields[0] not in {"Z", "X"}:
            return True
    return False


@dataclass
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    pump: threading.Thread
    exit_reported: bool = False


class Supervisor:
    """Starts processes in their own groups, tees their output, checks readiness, stops them."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        log_dir: Path,
        state_dir: Path,
        console: TextIO | None = None,
    ) -> None:
        self.specs = list(specs)
        self.log_dir = log_dir
        self.state_dir = state_dir
        self.console = console if console is not None else sys.stdout
        self.children: dict[str, _Child] = {}
        self.force = False  # set by a second Ctrl-C: skip the grace period
        self.deferring_signals = False
        self.deferred_signal: str | None = None
        self._stopping = False
        self._console_lock = threading.Lock()
        self._width = max([len(spec.name) for spec in self.specs] + [6])
        self._colour = self.console.isatty()

    def say(self, message: str, name: str = "run") -> None:
        """Print a line on the console under `name`."""
        label = f"{name:<{self._width}}"
        if self._colour:
            names = [spec.name for spec in self.specs]
            colour = _COLOURS[names.index(name) % len(_COLOURS)] if name in names else "1"
            label = f"\x1b[{colour}m{label}\x1b[0m"
        with self._console_lock:
            self.console.write(f"{label} | {message}\n")
            self.console.flush()

    def _pump(self, name: str, stream: IO[bytes], log: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            log.write(raw)
            log.flush()
            # Keep draining even if the console is gone, or the child would block on a full pipe.
            with contextlib.suppress(OSError, ValueError):
                self.say(raw.decode(errors="replace").rstrip("\r\n"), name)
        stream.close()

    def _pid_file(self, spec: ProcessSpec) -> Path:
        return self.state_dir / f"{spec.name}.pid"

    def _stop_leftover(self, spec: ProcessSpec) -> None:
        # A previous supervisor killed with SIGKILL leaves its children running on our ports.
        try:
            pid = int(self._pid_file(spec).read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        except (OSError, ValueError):
            return
        if [part.decode(errors="replace") for part in cmdline] != list(spec.argv):
            return
        self.say(f"stopping {spec.name} left over from an earlier run (pid {pid})")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    def start(self, spec: ProcessSpec) -> None:
        """Start one process in a new session (its own process group), teeing its output."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._stop_leftover(spec)
        log = (self.log_dir / f"{spec.name}.log").open("ab")
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"=== atlas_devstack.run: starting {spec.name} {stamp}\n".encode())
        log.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
        # A Ctrl-C between Popen and the bookkeeping would leave an untracked child, so the
        # handler defers it. (Blocking the signals instead would leak the mask into the child.)
        self.deferring_signals = True
        try:
            process = subprocess.Popen(
                list(spec.argv),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop the group ourselves
            )
            assert process.stdout is not None
            pump = threading.Thread(
                target=self._pump, args=(spec.name, process.stdout, log), daemon=True
            )
            self.children[spec.name] = _Child(spec, process, log, pump)
            pump.start()
            self._pid_file(spec).write_text(f"{process.pid}\n")
        except BaseException:
            if spec.name not in self.children:
                log.close()
            raise
        finally:
            self.deferring_signals = False
        if self.deferred_signal is not None:
            raise _ShutdownRequested(self.deferred_signal)

    def start_all(self) -> None:
        """Start every process, in table order."""
        for spec in self.specs:
            self.start(spec)

    def report_exits(self) -> list[str]:
        """Print and return the names of processes that exited since the last call."""
        exited = []
        for name, child in self.children.items():
            code = child.process.poll()
            if code is not None and not child.exit_reported:
                child.exit_reported = True
                exited.append(name)
                verb = "stopped" if self._stopping else "exited"
                self.say(f"{verb} (exit code {code})", name)
        return exited

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until every readiness URL answers 200; raise NotReadyError naming the laggards."""
        deadline = time.monotonic() + timeout
        pending = {spec.name: spec for spec in self.specs if spec.ready_url}
        while pending:
            for name, spec in list(pending.items()):
                code = self.children[name].process.poll()
                if code is not None:
                    raise NotReadyError(
                        f"{name} exited with code {code} before it was ready; see "
                        f"{self.log_dir / name}.log"
                    )
                assert spec.ready_url is not None
                if http_ready(spec.ready_url):
                    self.say(f"ready ({spec.ready_url})", name)
                    del pending[name]
            if pending and time.monotonic() > deadline:
                details = ", ".join(f"{n} ({s.ready_url})" for n, s in pending.items())
                raise NotReadyError(f"not ready after {timeout:.0f} s: {details}")
            if pending:
                time.sleep(0.25)

    def wait(self) -> None:
        """Block until a signal arrives or every process has exited, reporting exits meanwhile."""
        while True:
            self.report_exits()
            if all(child.process.poll() is not None for child in self.children.values()):
                self.say("every process has exited")
                return
            time.sleep(0.5)

    def stop_all(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM every process group, wait up to `grace` seconds, SIGKILL what is left."""
        self._stopping = True
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        # A group outlives its leader while grandchildren run, so wait for whole groups.
        while time.monotonic() < deadline and not self.force:
            for child in self.children.values():
                child.process.poll()  # reap the leader so it stops counting as a member
            if not any(_group_alive(child.process.pid) for child in self.children.values()):
                break
            time.sleep(0.1)
        for child in self.children.values():
            if _group_alive(child.process.pid):
                self.say("did not stop in time: killed", child.spec.name)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
        for child in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=5)
            child.pump.join(timeout=2)
            child.log.close()
            self._pid_file(child.spec).unlink(missing_ok=True)
        self.report_exits()


class KafkaBrokerLike(Protocol):
    """The part of `atlas_devstack.kafka.KafkaBroker` that run() uses."""

    @property
    def bootstrap(self) -> str: ...

    @property
    def log_path(self) -> Path: ...

    def start(self) -> None: ...

    def wait_ready(self, timeout: float) -> None: ...

    def stop(self) -> None: ...


def _print_table(supervisor: Supervisor, extra: Sequence[tuple[str, str, Path]]) -> None:
    rows = list(extra) + [
        (spec.name, spec.url or "(no HTTP)", supervisor.log_dir / f"{spec.name}.log")
        for spec in supervisor.specs
    ]
    width = max(len(url) for _, url, _ in rows)
    supervisor.say("ATLAS is running; Ctrl-C stops everything.")
    for name, url, log in rows:
        supervisor.say(f"  {name:<12} {url:<{width}}  log {log}")


def run(
    specs: Sequence[ProcessSpec],
    *,
    log_dir: Path,
    state_dir: Path,
    broker: KafkaBrokerLike | None = None,
    prepare: Callable[[], None] | None = None,
    ready_timeout: float = READY_TIMEOUT,
    stop_grace: float = STOP_GRACE,
    console: TextIO | None = None,
) -> int:
    """Start the broker, `prepare`, then every process; wait for a signal; stop it all."""
    supervisor = Supervisor(specs, log_dir=log_dir, state_dir=state_dir, console=console)

    def request_shutdown(signum: int, frame: FrameType | None) -> None:
        if supervisor.deferring_signals:
            supervisor.deferred_signal = signal.Signals(signum).name
            return
        raise _ShutdownRequested(signal.Signals(signum).name)

    def force_shutdown(signum: int, frame: FrameType | None) -> None:
        supervisor.force = True

    previous = {
        sig: signal.signal(sig, request_shutdown) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    code = 0
    try:
        extra: list[tuple[str, str, Path]] = []
        if broker is not None:
            started = time.monotonic()
            supervisor.say(f"starting Kafka at {broker.bootstrap}")
            broker.start()
            broker.wait_ready(120)
            supervisor.say(f"Kafka ready in {time.monotonic() - started:.1f} s")
            extra.append(("kafka", broker.bootstrap, broker.log_path))
        if prepare is not None:
            prepare()
        supervisor.start_all()
        supervisor.wait_ready(ready_timeout)
        _print_table(supervisor, extra)
        supervisor.wait()
        code = 1  # every process exited by itself: nothing left to supervise
    except _ShutdownRequested as stop:
        supervisor.say(f"{stop.args[0]} received: stopping (again to skip the grace period)")
    except Exception as error:  # readiness, broker or topic failure: report it, then clean up
        supervisor.say(f"error: {error}")
        code = 1
    finally:
        for sig in previous:
            signal.signal(sig, force_shutdown)
        supervisor.stop_all(stop_grace)
        if broker is not None:
            supervisor.say("stopping Kafka")
            broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        supervisor.say("stopped")
    return code


def _ensure_topics(bootstrap: str) -> None:
    from atlas_events.kafka import ensure_topics  # the registry lives in the shared library

    created = asyncio.run(ensure_topics(bootstrap))
    if created:
        print(f"created {len(created)} topics", flush=True)


def with_mail_sink(specs: Sequence[ProcessSpec], atlas: Path) -> list[ProcessSpec]:
    """Add the local SMTP sink (e-mails kept in .atlas/mail) and point notify at it."""
    from dataclasses import replace

    python = next((s.argv[0] for s in specs), sys.executable)
    sink = ProcessSpec(
        "mail",
        (
            python,
            "-m",
            "atlas_devstack.mailsink",
            "--port",
            str(MAIL_PORT),
            "--dir",
            str(atlas / "mail"),
        ),
    )
    smtp = {"ATLAS_NOTIFY_SMTP_HOST": "127.0.0.1", "ATLAS_NOTIFY_SMTP_PORT": str(MAIL_PORT)}
    return [sink] + [replace(s, env={**s.env, **smtp}) if s.name == "notify" else s for s in specs]


def main(argv: list[str] | None = None) -> int:
    """Entry point of `make run`."""
    parser = argparse.ArgumentParser(prog="python -m atlas_devstack.run", description=__doc__)
    parser.add_argument("--ready-timeout", type=float, default=READY_TIMEOUT)
    args = parser.parse_args(argv)

    from atlas_devstack.kafka import KafkaBroker

    repo = repo_root()
    atlas = atlas_dir()
    (atlas / "data").mkdir(parents=True, exist_ok=True)
    broker = KafkaBroker(
        atlas / "kafka",
        port=KAFKA_PORT,
        controller_port=KAFKA_CONTROLLER_PORT,
        data_dir=atlas / "kafka" / "data",
    )
    return run(
        with_mail_sink(
            build_specs(repo, broker.bootstrap, atlas / "data", PROCESS_TABLE + OPS_TABLE), atlas
        ),
        log_dir=atlas / "logs",
        state_dir=atlas / "run",
        broker=broker,
        prepare=lambda: _ensure_topics(broker.bootstrap),
        ready_timeout=args.ready_timeout,
    )


if __name__ == "__main__":
    sys.exit(main())
