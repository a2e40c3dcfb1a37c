"""Key-encryption keys: a local versioned keyring file (default) or OpenBao/Vault transit.

Data keys never leave the service in clear except to the KMS; what the database keeps is the
wrapped form. Rotation adds a KEK version; rewrap moves a wrapped key to the newest version
without the data key ever being returned (transit) or stored (local); retirement forbids
unwrapping with old versions, and only then is old key material removed.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from atlas_vault.crypto.envelope import KEY_BYTES, NONCE_BYTES

KEYRING_FORMAT = "atlas-vault-keyring/1"


class KmsError(Exception):
    """The KMS refused or could not be reached; the message never holds key material."""


@dataclass(frozen=True)
class WrappedKey:
    """A data key wrapped by a KEK version: what the database stores."""

    kek_id: str
    version: int
    ciphertext: str


def wrap_context(document_id: str, version: int) -> bytes:
    """What a wrapped key is bound to, so it cannot be moved to another document."""
    return f"atlas-vault/dek/v1/{document_id}/{version}".encode()


class KeyEncryptionService(Protocol):
    """What the vault needs from a KMS."""

    kek_id: str

    async def wrap(self, data_key: bytes, context: bytes) -> WrappedKey: ...

    async def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes: ...

    async def rewrap(self, wrapped: WrappedKey, context: bytes) -> WrappedKey: ...

    async def rotate(self) -> int: ...

    async def current_version(self) -> int: ...

    async def retire_below(self, version: int) -> None: ...


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)


def _parse_versioned(ciphertext: str, prefix: str) -> tuple[int, str]:
    """Split `prefix:vN:payload` into (N, payload)."""
    parts = ciphertext.split(":", 2)
    if len(parts) != 3 or parts[0] != prefix or not parts[1].startswith("v"):
        raise KmsError(f"wrapped key is not in the {prefix}:vN:… form")
    try:
        return int(parts[1][1:]), parts[2]
    except ValueError as exc:
        raise KmsError("wrapped key has a malformed version") from exc


class LocalKeyring:
    """KEKs in a JSON file (mode 0600), one AES-256 key per version; the embedded default."""

    kek_id = "local"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cache: dict[str, Any] | None = None
        self._cache_mtime: float | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # API and worker processes share the file: changes are serialised by an flock.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, ring: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(ring, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._cache = None

    def _read(self) -> dict[str, Any]:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            with self._locked():
                if not self.path.exists():
                    self._write(self._new_ring())
            mtime = self.path.stat().st_mtime
        if self._cache is None or self._cache_mtime != mtime:
            ring: dict[str, Any] = json.loads(self.path.read_text())
            if ring.get("format") != KEYRING_FORMAT:
                raise KmsError(f"{self.path} is not an {KEYRING_FORMAT} keyring")
            self._cache, self._cache_mtime = ring, mtime
        return self._cache

    @staticmethod
    def _new_version(version: int) -> dict[str, Any]:
        return {
            "version": version,
            "key": _b64(os.urandom(KEY_BYTES)),
            "created_at": datetime.now(UTC).isoformat(),
            "retired_at": None,
        }

    def _new_ring(self) -> dict[str, Any]:
        return {"format": KEYRING_FORMAT, "current": 1, "keys": [self._new_version(1)]}

    def _key(self, version: int) -> bytes:
        for entry in self._read()["keys"]:
            if entry["version"] == version:
                if entry["retired_at"] is not None or entry["key"] is None:
                    raise KmsError(f"KEK version {version} is retired")
                return _unb64(entry["key"])
        raise KmsError(f"KEK version {version} is not in the keyring")

    async def current_version(self) -> int:
        return int(self._read()["current"])

    async def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        version = await self.current_version()
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self._key(version)).encrypt(nonce, data_key, context)
        return WrappedKey(self.kek_id, version, f"local:v{version}:{_b64(nonce + sealed)}")

    async def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        version, payload = _parse_versioned(wrapped.ciphertext, "local")
        raw = _unb64(payload)
        try:
            return AESGCM(self._key(version)).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context)
        except InvalidTag as exc:
            raise KmsError("wrapped key does not authenticate under its KEK") from exc

    async def rewrap(self, wrapped: WrappedKey, context: bytes) -> WrappedKey:
        if wrapped.version == await self.current_version():
            return wrapped
        return await self.wrap(await self.unwrap(wrapped, context), context)

    async def rotate(self) -> int:
        with self._locked():
            self._cache = None
            ring = self._read()
            version = max(int(k["version"]) for k in ring["keys"]) + 1
            ring["keys"].append(self._new_version(version))
            ring["current"] = version
            self._write(ring)
        return version

    async def retire_below(self, version: int) -> None:
        with self._locked():
            self._cache = None
            ring = self._read()
            if version > int(ring["current"]):
                raise KmsError("cannot retire the current KEK version")
            now = datetime.now(UTC).isoformat()
            for entry in ring["keys"]:
                if entry["version"] < version and entry["retired_at"] is None:
                    # Key material goes: anything still wrapped under it is lost on purpose.
                    entry["retired_at"], entry["key"] = now, None
            self._write(ring)


class TransitKms:
    """OpenBao / HashiCorp Vault transit engine over HTTP (the KEK never leaves the KMS)."""

    def __init__(
        self, address: str, token: str, *, mount: str = "transit", key_name: str = "atlas-vault"
    ) -> None:
        self.address = address.rstrip("/")
        self._token = token
        self.mount = mount
        self.key_name = key_name
        self.kek_id = f"transit:{mount}/{key_name}"
        self._ensured = False

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with httpx.AsyncClient(
            base_url=self.address, headers={"X-Vault-Token": self._token}, timeout=10.0
        ) as client:
            try:
                response = await client.request(method, f"/v1/{self.mount}/{path}", json=body)
            except httpx.HTTPError as exc:
                raise KmsError(f"transit unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            errors = response.json().get("errors", []) if response.content else []
            raise KmsError(
                f"transit {path.split('/')[0]} refused ({response.status_code}): {errors}"
            )
        return response.json()["data"] if response.content else None

    async def ensure_key(self) -> None:
        """Create the transit key if it does not exist yet (idempotent)."""
        if not self._ensured:
            await self._call("POST", f"keys/{self.key_name}", {"type": "aes256-gcm96"})
            self._ensured = True

    @staticmethod
    def _bind(data_key: bytes, context: bytes) -> bytes:
        # Transit has no associated data for non-derived keys: append a digest of the context.
        return data_key + hashlib.sha256(context).digest()

    async def current_version(self) -> int:
        await self.ensure_key()
        data = await self._call("GET", f"keys/{self.key_name}")
        return int(data["latest_version"])

    async def wrap(self, data_key: bytes, context: bytes) -> WrappedKey:
        await self.ensure_key()
        data = await self._call(
            "POST", f"encrypt/{self.key_name}", {"plaintext": _b64(self._bind(data_key, context))}
        )
        ciphertext = str(data["ciphertext"])
        return WrappedKey(self.kek_id, _parse_versioned(ciphertext, "vault")[0], ciphertext)

    async def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        data = await self._call(
            "POST", f"decrypt/{self.key_name}", {"ciphertext": wrapped.ciphertext}
        )
        raw = _unb64(data["plaintext"])
        if len(raw) != KEY_BYTES + 32 or raw[KEY_BYTES:] != hashlib.sha256(context).digest():
            raise KmsError("wrapped key is bound to another document")
        return raw[:KEY_BYTES]

    async def rewrap(self, wrapped: WrappedKey, context: bytes) -> WrappedKey:
        data = await self._call(
            "POST", f"rewrap/{self.key_name}", {"ciphertext": wrapped.ciphertext}
        )
        ciphertext = str(data["ciphertext"])
        return WrappedKey(self.kek_id, _parse_versioned(ciphertext, "vault")[0], ciphertext)

    async def rotate(self) -> int:
        await self.ensure_key()
        await self._call("POST", f"keys/{self.key_name}/rotate")
        return await self.current_version()

    async def retire_below(self, version: int) -> None:
        await self._call(
            "POST", f"keys/{self.key_name}/config", {"min_decryption_version": version}
        )
