"""Envelope encryption, the local keyring and receipts, without any server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from atlas_vault.crypto.envelope import (
    FRAME_OVERHEAD,
    ChunkAuthenticationError,
    ChunkEncryptor,
    ciphertext_size,
    decrypt_bytes,
    encrypt_bytes,
    frame_size,
    new_data_key,
)
from atlas_vault.crypto.kms import KmsError, LocalKeyring, wrap_context
from atlas_vault.crypto.receipts import ReceiptSigner, public_key_b64, verify_receipt

CHUNK = 64
DOC = "3d8f0c1e-5a7b-4c9d-8e2f-1a3b5c7d9e0f"


def frames(blob: bytes) -> list[bytes]:
    size = frame_size(CHUNK)
    return [blob[i : i + size] for i in range(0, len(blob), size)]


@pytest.fixture
def sealed() -> tuple[bytes, bytes, bytes]:
    key = new_data_key()
    plaintext = os.urandom(CHUNK * 5 + 17)
    return key, plaintext, encrypt_bytes(key, DOC, 1, CHUNK, plaintext)


def test_round_trip_in_any_piece_sizes(sealed: tuple[bytes, bytes, bytes]) -> None:
    key, plaintext, blob = sealed
    assert len(blob) == ciphertext_size(len(plaintext), CHUNK)
    assert decrypt_bytes(key, DOC, 1, CHUNK, blob) == plaintext
    streamed = ChunkEncryptor(key, DOC, 1, CHUNK)
    out = b"".join(streamed.update(plaintext[i : i + 7]) for i in range(0, len(plaintext), 7))
    out += streamed.finalize()
    assert decrypt_bytes(key, DOC, 1, CHUNK, out) == plaintext


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK])
def test_boundary_sizes_round_trip(size: int) -> None:
    key, plaintext = new_data_key(), os.urandom(size)
    blob = encrypt_bytes(key, DOC, 1, CHUNK, plaintext)
    assert len(blob) == ciphertext_size(size, CHUNK)
    assert decrypt_bytes(key, DOC, 1, CHUNK, blob) == plaintext


def test_flipped_byte_is_refused(sealed: tuple[bytes, bytes, bytes]) -> None:
    key, _, blob = sealed
    for position in (0, 20, len(blob) // 2, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(ChunkAuthenticationError):
            decrypt_bytes(key, DOC, 1, CHUNK, bytes(tampered))


def test_reordered_chunks_are_refused(sealed: tuple[bytes, bytes, bytes]) -> None:
    key, _, blob = sealed
    parts = frames(blob)
    parts[1], parts[2] = parts[2], parts[1]
    with pytest.raises(ChunkAuthenticationError) as refused:
        decrypt_bytes(key, DOC, 1, CHUNK, b"".join(parts))
    assert refused.value.index == 1


def test_truncation_at_a_chunk_boundary_is_refused(sealed: tuple[bytes, bytes, bytes]) -> None:
    key, _, blob = sealed
    parts = frames(blob)
    for keep in range(1, len(parts)):
        with pytest.raises(ChunkAuthenticationError, match="authentication tag"):
            decrypt_bytes(key, DOC, 1, CHUNK, b"".join(parts[:keep]))
    with pytest.raises(ChunkAuthenticationError):
        decrypt_bytes(key, DOC, 1, CHUNK, b"")


def test_truncation_inside_a_chunk_and_extension_are_refused(
    sealed: tuple[bytes, bytes, bytes],
) -> None:
    key, _, blob = sealed
    with pytest.raises(ChunkAuthenticationError):
        decrypt_bytes(key, DOC, 1, CHUNK, blob[:-5])
    parts = frames(blob)
    with pytest.raises(ChunkAuthenticationError):  # a duplicated chunk appended
        decrypt_bytes(key, DOC, 1, CHUNK, blob + parts[0])


def test_chunks_are_bound_to_their_document_and_version(
    sealed: tuple[bytes, bytes, bytes],
) -> None:
    key, _, blob = sealed
    with pytest.raises(ChunkAuthenticationError):
        decrypt_bytes(key, "another-document", 1, CHUNK, blob)
    with pytest.raises(ChunkAuthenticationError):
        decrypt_bytes(key, DOC, 2, CHUNK, blob)
    with pytest.raises(ChunkAuthenticationError):
        decrypt_bytes(new_data_key(), DOC, 1, CHUNK, blob)


def test_each_frame_carries_nonce_and_tag_only(sealed: tuple[bytes, bytes, bytes]) -> None:
    _, plaintext, blob = sealed
    assert len(blob) - len(plaintext) == len(frames(blob)) * FRAME_OVERHEAD
    assert plaintext[:32] not in blob


async def test_local_keyring_rotate_rewrap_retire(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    ring = LocalKeyring(path)
    data_key, context = new_data_key(), wrap_context(DOC, 1)
    first = await ring.wrap(data_key, context)
    assert first.version == 1
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert data_key.hex() not in path.read_text()

    assert await ring.rotate() == 2
    assert await ring.unwrap(first, context) == data_key  # old version still usable
    second = await ring.rewrap(first, context)
    assert second.version == 2
    assert second.ciphertext != first.ciphertext

    await ring.retire_below(2)
    with pytest.raises(KmsError, match="retired"):
        await ring.unwrap(first, context)
    assert await ring.unwrap(second, context) == data_key
    stored = json.loads(path.read_text())
    assert [k["key"] is None for k in stored["keys"]] == [True, False]  # material is gone

    # Another process (a fresh keyring object) sees the same state.
    assert await LocalKeyring(path).unwrap(second, context) == data_key
    with pytest.raises(KmsError):  # a wrapped key cannot move to another document
        await ring.unwrap(second, wrap_context("other", 1))
    with pytest.raises(KmsError, match="current"):
        await ring.retire_below(3)


def test_receipt_signature_covers_every_field(tmp_path: Path) -> None:
    signer = ReceiptSigner.load_or_create(tmp_path / "receipt.pem")
    again = ReceiptSigner.load_or_create(tmp_path / "receipt.pem")
    assert again.key_id == signer.key_id
    signed = signer.sign({"document_id": DOC, "size_bytes": 12, "hash": "ab"})
    key = public_key_b64(signer.public_key)
    assert verify_receipt(signed, key)
    forged = json.loads(json.dumps(signed))
    forged["receipt"]["size_bytes"] = 13
    assert not verify_receipt(forged, key)
    other = ReceiptSigner.load_or_create(tmp_path / "other.pem")
    assert not verify_receipt(signed, public_key_b64(other.public_key))
