"""A throw-away local PostgreSQL server (Debian's binaries, trust auth on 127.0.0.1) for tests."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from atlas_devstack.paths import atlas_dir

if TYPE_CHECKING:
    from psycopg import Connection

SUPERUSER = "atlas"
RANDOM_PAGE_COST = 1.1  # the planner setting for a server whose data is cached (also in deploy/k8s)
_OS_USER = "postgres"  # the account Debian's package creates; initdb refuses to run as root
_BIN_ENV = "ATLAS_POSTGRES_BIN_DIR"
# A unix socket path must fit in sun_path (108 bytes on Linux), ".s.PGSQL.<port>" included.
_MAX_SOCKET_DIR = 90
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresError(RuntimeError):
    """PostgreSQL could not be installed, initialised, started or reached."""


def _version_key(path: Path) -> tuple[int, ...]:
    version = path.parent.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit()) or (0,)


def find_bin_dir() -> Path | None:
    """Return the directory of the newest PostgreSQL server binaries (initdb, pg_ctl), if any."""
    override = os.environ.get(_BIN_ENV)
    if override:
        return Path(override) if (Path(override) / "initdb").is_file() else None
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version_key)
    if debian:
        return debian[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _check_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"database name {name!r} must match {_IDENTIFIER.pattern}")
    return name


class PostgresEndpoint:
    """A reachable PostgreSQL server seen as a superuser: create, drop and address databases."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str | None = None,
        admin_db: str = "postgres",
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.admin_db = admin_db

    @classmethod
    def from_url(cls, url: str) -> PostgresEndpoint:
        """Build from a server URL such as `postgresql://user:pw@host:5432/postgres`."""
        parts = urlsplit(url)
        if not parts.scheme.startswith("postgres"):
            raise ValueError(f"not a PostgreSQL URL: {url!r}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password) if parts.password else None,
            admin_db=parts.path.lstrip("/") or "postgres",
        )

    def url(self, dbname: str, driver: str | None = "asyncpg") -> str:
        """Return a SQLAlchemy URL, e.g. `postgresql+asyncpg://atlas@127.0.0.1:15432/<db>`."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        return f"{scheme}://{auth}@{self.host}:{self.port}/{dbname}"

    def _connection(self, *, timeout: float = 5.0, autocommit: bool = False) -> Connection[Any]:
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.admin_db,
            connect_timeout=max(1, int(timeout)),
            autocommit=autocommit,
        )

    def ping(self, timeout: float = 2.0) -> bool:
        """Return True when a real connection and `SELECT 1` succeed."""
        import psycopg

        try:
            with self._connection(timeout=timeout) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def _execute(self, statement: str) -> None:
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        with self._connection(autocommit=True) as conn:
            conn.execute(statement.encode())

    def create_database(self, name: str) -> None:
        """Create an empty database (names are checked, so they need no quoting)."""
        self._execute(f'CREATE DATABASE "{_check_identifier(name)}"')

    def drop_database(self, name: str) -> None:
        """Drop a database if it exists, closing any connection still open to it."""
        self._execute(f'DROP DATABASE IF EXISTS "{_check_identifier(name)}" WITH (FORCE)')

    def list_databases(self, prefix: str = "") -> list[str]:
        """Return the names of the databases starting with `prefix`."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)
            ).fetchall()
        return [str(row[0]) for row in rows]


class PostgresServer:
    """A local PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port` with trust auth."""

    def __init__(self, data_dir: Path, port: int = 15432) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        # Socket and server log live beside the data dir: the data dir belongs to the server.
        self.run_dir = self.data_dir.parent / f"{self.data_dir.name}.run"
        self.log_path = self.run_dir / "postgres.log"
        self.endpoint = PostgresEndpoint("127.0.0.1", port, SUPERUSER)
        self._bin_dir: Path | None = None

    # ---- installation and initialisation ----------------------------------------------------

    @property
    def socket_dir(self) -> Path:
        """The unix socket directory (under /tmp when the natural one makes too long a path)."""
        if len(str(self.run_dir)) <= _MAX_SOCKET_DIR:
            return self.run_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"atlas-pg-{digest}"

    def ensure_installed(self) -> Path:
        """Return the server binaries' directory, installing Debian's `postgresql` if root."""
        bin_dir = find_bin_dir()
        if bin_dir is not None:
            self._bin_dir = bin_dir
            return bin_dir
        apt_get = shutil.which("apt-get")
        if os.geteuid() == 0 and apt_get is not None:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for command in ([apt_get, "update"], [apt_get, "install", "-y", "postgresql"]):
                result = subprocess.run(
                    command, env=env, capture_output=True, text=True, check=False
                )
                if result.returncode != 0:
                    raise PostgresError(
                        f"`{' '.join(command)}` failed:\n{result.stdout[-2000:]}"
                        f"{result.stderr[-2000:]}"
                    )
            bin_dir = find_bin_dir()
            if bin_dir is not None:
                self._bin_dir = bin_dir
                return bin_dir
        raise PostgresError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them, e.g. "
            "`sudo apt-get install postgresql` on Debian/Ubuntu or `brew install postgresql` on "
            f"macOS, or point {_BIN_ENV} at the directory holding initdb; or set "
            "ATLAS_TEST_POSTGRES_URL to an existing server."
        )

    @property
    def bin_dir(self) -> Path:
        """The server binaries' directory."""
        return self._bin_dir or self.ensure_installed()

    def _as_server_user(self, command: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return command
        return ["runuser", "-u", _OS_USER, "--", *command]

    def _run(self, command: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self._as_server_user(command),
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            # The server user may not be able to enter the caller's working directory.
            cwd=self.run_dir if self.run_dir.is_dir() else "/",
        )
        if check and result.returncode != 0:
            raise PostgresError(
                f"`{' '.join(command)}` failed (exit {result.returncode}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        return result

    def _give_to_server_user(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        try:
            account = pwd.getpwnam(_OS_USER)
        except KeyError as error:
            raise PostgresError(
                f"running as root needs the `{_OS_USER}` OS user (Debian's postgresql package "
                "creates it) because initdb refuses to run as root"
            ) from error
        for path in paths:
            os.chown(path, account.pw_uid, account.pw_gid)

    def _prepare_dirs(self) -> None:
        if os.geteuid() == 0:
            # The server user must be able to walk down to the data dir from /.
            for ancestor in self.data_dir.parents:
                if ancestor.exists() and not ancestor.stat().st_mode & 0o001:
                    raise PostgresError(
                        f"{ancestor} is not traversable by the `{_OS_USER}` user (chmod o+x it) "
                        f"or choose a data dir elsewhere"
                    )
        for directory in {self.run_dir, self.socket_dir}:
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700)
            self._give_to_server_user(directory)

    def is_initialised(self) -> bool:
        """Return True when the data dir holds a cluster."""
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self) -> bool:
        """Create the cluster unless it exists (superuser `atlas`, trust on 127.0.0.1 only)."""
        if self.is_initialised():
            return False
        bin_dir = self.bin_dir
        self._prepare_dirs()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._give_to_server_user(self.data_dir)
        self._run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",  # a throw-away test cluster; fsync of the template files costs seconds
            ]
        )
        (self.data_dir / "pg_hba.conf").write_text(
            "# Written by atlas_devstack.postgres: trust, local socket and 127.0.0.1 only.\n"
            "local   all             all                     trust\n"
            "host    all             all     127.0.0.1/32    trust\n"
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# atlas_devstack: a local development and test server.\n"
                "listen_addresses = '127.0.0.1'\n"
                "max_connections = 200\n"
                # Test data is disposable: trade crash safety for speed.
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
            )
        self._give_to_server_user(self.data_dir / "pg_hba.conf")
        return True

    # ---- server process ---------------------------------------------------------------------

    def is_running(self) -> bool:
        """Return True when the cluster's postmaster is running (pg_ctl status)."""
        if not self.is_initialised():
            return False
        return (
            self._run(
                [str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.data_dir)], check=False
            ).returncode
            == 0
        )

    def start(self, timeout: float = 60.0) -> None:
        """Start the server detached from this process (no-op if it already runs)."""
        if self.is_running():
            return
        self._prepare_dirs()
        options = (
            f"-p {self.port} -c unix_socket_directories={shlex.quote(str(self.socket_dir))}"
            # Everything is in memory: a random page costs about what a sequential one does. With
            # the default (4), a batch's `IN (...)` lookup on a table that grew since its last
            # ANALYZE was planned as a scan of the whole table (a burst's tables grow from empty).
            f" -c random_page_cost={RANDOM_PAGE_COST}"
        )
        result = self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout)),
            ],
            check=False,
        )
        if result.returncode != 0:
            raise PostgresError(
                f"PostgreSQL did not start (exit {result.returncode}):\n{result.stdout}"
                f"{result.stderr}\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        """Return the last lines of the server log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until a real connection succeeds; raise with the log tail on timeout."""
        deadline = time.monotonic() + timeout
        while not self.endpoint.ping():
            if time.monotonic() > deadline:
                raise PostgresError(
                    f"PostgreSQL on 127.0.0.1:{self.port} not ready within {timeout:.0f} s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server with a fast shutdown (sessions are disconnected, no waiting)."""
        if not self.is_running():
            return
        self._run(
            [str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"]
        )

    # ---- databases --------------------------------------------------------------------------

    def create_database(self, name: str) -> None:
        """Create an empty database."""
        self.endpoint.create_database(name)

    def drop_database(self, name: str) -> None:
        """Drop a database if it exists."""
        self.endpoint.drop_database(name)

    def url(self, dbname: str, driver: str | None = "asyncpg") -> str:
        """Return e.g. `postgresql+asyncpg://atlas@127.0.0.1:<port>/<dbname>`."""
        return self.endpoint.url(dbname, driver)


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m atlas_devstack.postgres", description="Local PostgreSQL server."
    )
    parser.add_argument("command", choices=["install", "start", "stop", "status"])
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="default: <repo>/.atlas/test/pg"
    )
    parser.add_argument("--port", type=int, default=15432)
    args = parser.parse_args(argv)
    data_dir: Path = args.data_dir if args.data_dir is not None else atlas_dir() / "test" / "pg"
    server = PostgresServer(data_dir, port=args.port)
    try:
        if args.command == "install":
            print(f"PostgreSQL binaries in {server.ensure_installed()}")
        elif args.command == "start":
            started = time.monotonic()
            server.ensure_installed()
            server.init()
            server.start()
            server.wait_ready()
            print(
                f"PostgreSQL ready at {server.url('postgres', driver=None)} "
                f"({time.monotonic() - started:.1f} s); data {server.data_dir}"
            )
        elif args.command == "stop":
            was_running = server.is_running()
            server.stop()
            print("PostgreSQL stopped" if was_running else "PostgreSQL was not running")
        else:
            if not server.is_running():
                print(f"PostgreSQL not running (data {server.data_dir})")
                return 3
            ready = server.endpoint.ping()
            state = "ready" if ready else "not answering"
            print(f"PostgreSQL running, {state} at {server.url('postgres', driver=None)}")
            return 0 if ready else 1
    except PostgresError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(_cli())
