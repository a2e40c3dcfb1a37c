"""A single-node Apache Kafka KRaft broker run from Maven jars, for `make run` and the tests."""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from atlas_devstack.paths import atlas_dir, repo_root

_T = TypeVar("_T")

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"


class BrokerError(RuntimeError):
    """The broker could not be fetched, formatted, started or reached."""


def libs_dir() -> Path:
    """Return the shared jar directory (`<repo>/.atlas/kafka/libs`), filled by Maven."""
    return atlas_dir() / "kafka" / "libs"


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerError("no `java` on PATH and no JAVA_HOME: install a JDK (17 or later)")
    return found


def _random_cluster_id() -> str:
    # Kafka's Uuid.randomUuid(): 16 random bytes, URL-safe base64 without padding, no leading "-"
    # (a leading dash would read as a command-line option).
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option as the JVM's server sockets, so lingering TIME_WAIT pairs do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _run_coroutine(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion from sync code, even when called inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def metadata_ready(bootstrap: str, request_timeout: float = 5.0) -> bool:
    """Return True when a metadata request to `bootstrap` succeeds and lists a broker."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(request_timeout * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), request_timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), request_timeout)
        return bool(cluster.get("brokers"))
    except Exception:  # any failure means "not ready yet"; the caller polls with a deadline
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def _pid_state(pid: int) -> str | None:
    """Return the /proc state letter of `pid` (None when it does not exist)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; the state follows the last ")".
    return stat.rsplit(")", 1)[1].split()[0]


def _pid_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


class KafkaBroker:
    """One KRaft broker+controller process on 127.0.0.1, with its config, data, log and pid file."""

    def __init__(
        self,
        home: Path,
        port: int = 9092,
        controller_port: int = 9093,
        heap: str = "768m",
        data_dir: Path | None = None,
        sasl_port: int | None = None,
        scram_users: Mapping[str, str] | None = None,
    ) -> None:
        """`sasl_port` (opt-in) adds a SASL_PLAINTEXT SCRAM-SHA-512 listener for `scram_users`."""
        self.home = Path(home).resolve()
        self.port = port
        self.controller_port = controller_port
        self.sasl_port = sasl_port
        self.scram_users = dict(scram_users or {})
        self.heap = heap
        self.data_dir = Path(data_dir).resolve() if data_dir else self.home / "data"
        self.libs_dir = libs_dir()
        self.config_path = self.home / "server.properties"
        self.log4j_path = self.home / "log4j2.properties"
        self.log_path = self.home / "broker.log"
        self.pid_path = self.home / "broker.pid"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The bootstrap servers string clients use."""
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The SASL listener's bootstrap servers (SCRAM-SHA-512 over plaintext, as in tests)."""
        if self.sasl_port is None:
            raise BrokerError("this broker has no SASL listener (pass sasl_port)")
        return f"127.0.0.1:{self.sasl_port}"

    # ---- jars and configuration -------------------------------------------------------------

    def ensure_jars(self) -> None:
        """Fetch the broker jars with Maven unless the shared libs directory already holds them."""
        if any(self.libs_dir.glob("*.jar")):
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(f"{self.libs_dir} is empty and `mvn` is not on PATH: install Maven")
        pom = repo_root() / "infra" / "kafka" / "pom.xml"
        self.libs_dir.mkdir(parents=True, exist_ok=True)
        command = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-Dkafka.libs.dir={self.libs_dir}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not any(self.libs_dir.glob("*.jar")):
            raise BrokerError(
                f"fetching the Kafka jars failed ({' '.join(command)}):\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )

    def server_properties(self) -> str:
        """Return the broker configuration: one node that is both broker and controller."""
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            # Dynamic quorum (KIP-853), formatted with --standalone; never controller.quorum.voters.
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "log.dirs": str(self.data_dir),
            "num.partitions": "3",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Topics come from the registry (atlas_events.kafka.ensure_topics), never from a typo.
            "auto.create.topics.enable": "false",
        }
        if self.sasl_port is not None:
            # Clients may authenticate on a second listener; the broker itself stays on PLAINTEXT.
            sasl = f"SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}"
            settings["listeners"] += f",{sasl}"
            settings["advertised.listeners"] += f",{sasl}"
            settings["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
            settings["sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
            settings["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
        lines = ["# Written by atlas_devstack.kafka; edits are overwritten at each start."]
        lines += [f"{key}={value}" for key, value in settings.items()]
        return "\n".join(lines) + "\n"

    def log4j_properties(self) -> str:
        """Return a log4j2 config: INFO to stdout, which start() redirects to the log file."""
        return (
            "# Written by atlas_devstack.kafka.\n"
            "status = warn\n"
            "name = atlas-kafka\n"
            "appender.out.type = Console\n"
            "appender.out.name = STDOUT\n"
            "appender.out.layout.type = PatternLayout\n"
            "appender.out.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.out.ref = STDOUT\n"
            # The per-request logger is extremely chatty even at INFO.
            "logger.request.name = kafka.request.logger\n"
            "logger.request.level = WARN\n"
        )

    def write_config(self) -> None:
        """Write server.properties and the log4j2 config into the broker home."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.server_properties())
        self.log4j_path.write_text(self.log4j_properties())

    def _java_command(self, main_class: str, *args: str, heap: str | None = None) -> list[str]:
        return [
            _java(),
            f"-Xmx{heap or self.heap}",
            f"-Xms{heap or self.heap}",  # sized once, not grown under load
            # Regions of 8 MiB: a produce request of a relay (up to 1 MiB) is read into one
            # buffer, which G1 allocates as a "humongous" object past half a region (with its
            # default 1 MiB regions, every large request); those allocations kept its
            # concurrent marking running, a third of the broker's CPU in a mobility burst.
            "-XX:G1HeapRegionSize=8m",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_path}",
            "-cp",
            f"{self.libs_dir}/*",
            main_class,
            *args,
        ]

    def format(self) -> bool:
        """Format the data dir as a standalone KRaft quorum unless it already is; True if it ran."""
        if (self.data_dir / "meta.properties").exists():
            return False
        self.ensure_jars()
        self.write_config()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = self._java_command(
            STORAGE_TOOL,
            "format",
            "--standalone",
            "-t",
            _random_cluster_id(),
            "-c",
            str(self.config_path),
            # KRaft stores SCRAM credentials in the metadata log: written once, at format time.
            *(
                arg
                for name, password in self.scram_users.items()
                for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")
            ),
            heap="256m",  # formatting needs little; the broker's heap setting is for serving
        )
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
        with self.log_path.open("a") as log:
            log.write(f"=== atlas_devstack: format {self.data_dir}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise BrokerError(
                f"formatting {self.data_dir} failed (exit {result.returncode}):\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        return True

    # ---- process ----------------------------------------------------------------------------

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _is_our_broker(self, pid: int) -> bool:
        # Guards against a stale pid file whose number now belongs to another process.
        state = _pid_state(pid)
        if state is None or state in {"Z", "X"}:
            return False
        cmdline = _pid_cmdline(pid)
        return MAIN_CLASS in cmdline and str(self.config_path) in cmdline

    def pid(self) -> int | None:
        """Return the pid of the running broker, or None."""
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        pid = self._read_pid()
        if pid is not None and self._is_our_broker(pid):
            return pid
        return None

    def is_running(self) -> bool:
        """Return True when this home's broker process is alive (not necessarily ready)."""
        return self.pid() is not None

    def start(self) -> None:
        """Start the broker in its own process group (no-op if it runs already); see wait_ready."""
        if self.is_running():
            return
        self.ensure_jars()
        self.write_config()
        for port in (self.port, self.controller_port, self.sasl_port):
            if port is not None and _port_in_use(port):
                raise BrokerError(
                    f"port 127.0.0.1:{port} is already in use by another process; stop it or "
                    f"choose other ports"
                )
        self.format()
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with self.log_path.open("ab") as log:
            log.write(f"=== atlas_devstack: starting broker {stamp}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                self._java_command(MAIN_CLASS, str(self.config_path)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,  # Ctrl-C in the terminal must not reach the JVM directly
            )
        self.pid_path.write_text(f"{self._process.pid}\n")

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines of the broker log, for error messages."""
        try:
            content = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no broker log)"
        return "\n".join(content.splitlines()[-lines:])

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Block until a metadata request succeeds; raise with the log tail on timeout or death."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_running():
                raise BrokerError(f"the Kafka broker exited during start-up:\n{self.log_tail()}")
            # The port check only saves a noisy client attempt; readiness is the metadata answer.
            if _port_open(self.port) and _run_coroutine(metadata_ready(self.bootstrap)):
                return
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"the Kafka broker was not ready within {timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.25)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.pid == pid:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=0.1)
                if self._process.poll() is not None:
                    return True
            elif not self._is_our_broker(pid):
                return True
            else:
                time.sleep(0.1)
        return False

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker: SIGTERM to its process group, then SIGKILL after `timeout` seconds."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            if not self._wait_gone(pid, timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                self._wait_gone(pid, 10.0)
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=1.0)  # reap, so no zombie remains
            self._process = None
        self.pid_path.unlink(missing_ok=True)


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m atlas_devstack.kafka", description="Local single-node Kafka broker."
    )
    parser.add_argument("command", choices=["fetch", "start", "stop", "status"])
    parser.add_argument("--home", type=Path, default=None, help="default: <repo>/.atlas/kafka")
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--controller-port", type=int, default=9093)
    parser.add_argument("--heap", default="768m")
    parser.add_argument("--timeout", type=float, default=90.0, help="readiness timeout (s)")
    args = parser.parse_args(argv)
    home: Path = args.home if args.home is not None else atlas_dir() / "kafka"
    broker = KafkaBroker(home, port=args.port, controller_port=args.controller_port, heap=args.heap)
    try:
        if args.command == "fetch":
            broker.ensure_jars()
            print(f"Kafka jars in {broker.libs_dir}")
        elif args.command == "start":
            started = time.monotonic()
            broker.start()
            broker.wait_ready(args.timeout)
            print(
                f"Kafka ready at {broker.bootstrap} (pid {broker.pid()}, "
                f"{time.monotonic() - started:.1f} s); log {broker.log_path}"
            )
        elif args.command == "stop":
            was_running = broker.is_running()
            broker.stop()
            print("Kafka stopped" if was_running else "Kafka was not running")
        else:
            pid = broker.pid()
            if pid is None:
                print(f"Kafka not running (home {broker.home})")
                return 3
            ready = _run_coroutine(metadata_ready(broker.bootstrap))
            state = "ready" if ready else "not answering"
            print(f"Kafka running (pid {pid}), {state} at {broker.bootstrap}")
            return 0 if ready else 1
    except BrokerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
