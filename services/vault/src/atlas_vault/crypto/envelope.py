"""Chunked AES-256-GCM with the document id, version, chunk index and last flag as associated data.

Each chunk is framed as nonce (12 bytes) || ciphertext || tag (16 bytes). Binding the index and a
last-chunk flag into every chunk's associated data makes reordered, duplicated, truncated or
extended ciphertext fail authentication, not only altered bytes.
"""

from __future__ import annotations

import os
import struct
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
FRAME_OVERHEAD = NONCE_BYTES + TAG_BYTES
_AAD_PREFIX = b"atlas-vault/chunk/v1"


class ChunkAuthenticationError(Exception):
    """A chunk failed authentication: altered, reordered, truncated or extended ciphertext."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"chunk {index}: {reason}")
        self.index = index
        self.reason = reason


def new_data_key() -> bytes:
    """A fresh random 256-bit data key, one per document version."""
    return os.urandom(KEY_BYTES)


def chunk_aad(document_id: str, version: int, index: int, last: bool) -> bytes:
    """The associated data of one chunk: who it belongs to and where it sits."""
    doc = document_id.encode()
    return (
        _AAD_PREFIX
        + struct.pack(">H", len(doc))
        + doc
        + struct.pack(">IQB", version, index, 1 if last else 0)
    )


def frame_size(chunk_size: int) -> int:
    """Size of a full ciphertext frame for `chunk_size` plaintext bytes."""
    return chunk_size + FRAME_OVERHEAD


def ciphertext_size(plaintext_size: int, chunk_size: int) -> int:
    """Size of the blob for a plaintext of `plaintext_size` bytes (an empty one is one frame)."""
    chunks = max(1, -(-plaintext_size // chunk_size))
    return plaintext_size + chunks * FRAME_OVERHEAD


@dataclass
class ChunkEncryptor:
    """Encrypts a plaintext stream into frames, holding back one chunk until the last is known."""

    key: bytes
    document_id: str
    version: int
    chunk_size: int

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise ValueError("data keys are 256-bit")
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self._aead = AESGCM(self.key)
        self._buffer = bytearray()
        self._index = 0
        self._finished = False

    @property
    def chunks(self) -> int:
        """How many chunks were emitted so far."""
        return self._index

    def _seal(self, plaintext: bytes | bytearray, last: bool) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        aad = chunk_aad(self.document_id, self.version, self._index, last)
        self._index += 1
        return nonce + self._aead.encrypt(nonce, bytes(plaintext), aad)

    def update(self, data: bytes) -> bytes:
        """Frames for every full chunk that is known not to be the last one."""
        if self._finished:
            raise ValueError("encryptor already finalized")
        self._buffer += data
        out = bytearray()
        size = self.chunk_size
        # Strictly more than one chunk buffered: the chunk emitted cannot be the last.
        while len(self._buffer) > size:
            out += self._seal(self._buffer[:size], last=False)
            del self._buffer[:size]
        return bytes(out)

    def finalize(self) -> bytes:
        """The last frame (possibly of an empty chunk, so an empty document is still sealed)."""
        if self._finished:
            raise ValueError("encryptor already finalized")
        self._finished = True
        frame = self._seal(self._buffer, last=True)
        self._buffer.clear()
        return frame


class ChunkDecryptor:
    """Decrypts frames in order; the caller says which frame is the last one it holds."""

    def __init__(self, key: bytes, document_id: str, version: int, chunk_size: int) -> None:
        self._aead = AESGCM(key)
        self.document_id = document_id
        self.version = version
        self.chunk_size = chunk_size
        self._index = 0

    def decrypt(self, frame: bytes, *, last: bool) -> bytes:
        """The plaintext of the next frame, or ChunkAuthenticationError."""
        index = self._index
        if len(frame) < FRAME_OVERHEAD:
            raise ChunkAuthenticationError(index, "frame shorter than nonce and tag")
        if len(frame) > frame_size(self.chunk_size):
            raise ChunkAuthenticationError(index, "frame longer than a chunk")
        if not last and len(frame) != frame_size(self.chunk_size):
            raise ChunkAuthenticationError(index, "short frame before the end")
        aad = chunk_aad(self.document_id, self.version, index, last)
        try:
            plaintext = self._aead.decrypt(frame[:NONCE_BYTES], frame[NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise ChunkAuthenticationError(index, "authentication tag mismatch") from exc
        self._index += 1
        return plaintext


def frames_of(blob_pieces: Iterable[bytes], chunk_size: int) -> Iterator[tuple[bytes, bool]]:
    """Cut a ciphertext byte stream into frames, flagging the final one (one frame lookahead)."""
    size = frame_size(chunk_size)
    buffer = bytearray()
    pending: bytes | None = None
    for piece in blob_pieces:
        buffer += piece
        while len(buffer) >= size:
            if pending is not None:
                yield pending, False
            pending = bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        if pending is not None:
            yield pending, False
        yield bytes(buffer), True
    elif pending is not None:
        yield pending, True
    else:
        yield b"", True  # an empty blob: fails authentication as a missing last frame


def encrypt_bytes(
    key: bytes, document_id: str, version: int, chunk_size: int, plaintext: bytes
) -> bytes:
    """Whole-buffer convenience over ChunkEncryptor (tests, small payloads)."""
    encryptor = ChunkEncryptor(key, document_id, version, chunk_size)
    return encryptor.update(plaintext) + encryptor.finalize()


def decrypt_bytes(
    key: bytes, document_id: str, version: int, chunk_size: int, ciphertext: bytes
) -> bytes:
    """Whole-buffer convenience over ChunkDecryptor; raises on any tampering."""
    decryptor = ChunkDecryptor(key, document_id, version, chunk_size)
    return b"".join(
        decryptor.decrypt(frame, last=last) for frame, last in frames_of([ciphertext], chunk_size)
    )


async def aframes_of(
    blob_pieces: AsyncIterator[bytes], chunk_size: int
) -> AsyncIterator[tuple[bytes, bool]]:
    """`frames_of` over an async byte stream (a blob being read)."""
    size = frame_size(chunk_size)
    buffer = bytearray()
    pending: bytes | None = None
    async for piece in blob_pieces:
        buffer += piece
        while len(buffer) >= size:
            if pending is not None:
                yield pending, False
            pending = bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        if pending is not None:
            yield pending, False
        yield bytes(buffer), True
    elif pending is not None:
        yield pending, True
    else:
        yield b"", True
