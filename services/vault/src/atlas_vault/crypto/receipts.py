"""Deposit receipts signed with Ed25519 (NF Z42-020: id, depositor, date, size, algorithm, hash)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

RECEIPT_FORMAT = "atlas-vault-receipt/1"
SIGNATURE_ALGORITHM = "Ed25519"


def canonical_json(value: Any) -> bytes:
    """The byte form that is signed and hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_b64(key: Ed25519PublicKey) -> str:
    """The raw 32-byte public key, base64url: what a verifier needs."""
    return _b64url(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def key_id_of(key: Ed25519PublicKey) -> str:
    """A stable identifier of a public key (SHA-256 of its raw bytes, truncated)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _b64url(hashlib.sha256(raw).digest()[:16])


class ReceiptSigner:
    """The vault's Ed25519 receipt key, kept in a PEM file readable by the service only."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id_of(self.public_key)

    @classmethod
    def generate(cls) -> ReceiptSigner:
        """A fresh key held in memory only."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> ReceiptSigner:
        """Load the key at `path`, creating it (mode 0600) on first use."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process created it first: use theirs
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(pem)
        return cls.load(path)

    @classmethod
    def load(cls, path: Path) -> ReceiptSigner:
        """Load the key at `path` (FileNotFoundError if there is none): never creates one."""
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return cls(key)

    def public_jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": public_key_b64(self.public_key),
            "kid": self.key_id,
            "alg": "EdDSA",
            "use": "sig",
        }

    def sign(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A signed receipt: the payload, and a signature over its canonical JSON."""
        return {
            "receipt": payload,
            "signature_algorithm": SIGNATURE_ALGORITHM,
            "key_id": self.key_id,
            "signature": _b64url(self._private_key.sign(canonical_json(payload))),
        }

    def sign_bytes(self, data: bytes) -> str:
        return _b64url(self._private_key.sign(data))


def verify_receipt(signed: dict[str, Any], public_key_b64url: str) -> bool:
    """Whether a signed receipt's signature holds under the given raw public key."""
    try:
        key = Ed25519PublicKey.from_public_bytes(_unb64url(public_key_b64url))
        key.verify(_unb64url(str(signed["signature"])), canonical_json(signed["receipt"]))
    except (InvalidSignature, KeyError, ValueError):
        return False
    return signed.get("signature_algorithm") == SIGNATURE_ALGORITHM


def verify_bytes(data: bytes, signature: str, public_key_b64url: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(_unb64url(public_key_b64url))
        key.verify(_unb64url(signature), data)
    except (InvalidSignature, ValueError):
        return False
    return True
