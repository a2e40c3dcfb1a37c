"""Blob storage behind an interface; the filesystem store writes atomically (temp, fsync, rename).

Only ciphertext is ever handed to a blob store.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Protocol

_BLOB_ID = re.compile(r"^[A-Za-z0-9_-]{8,100}$")
_WRITE_BATCH = 1 << 20  # hand the disk ~1 MiB at a time, not one small frame per thread hop


class BlobNotFound(Exception):
    """No blob under that id."""


class BlobWriter(Protocol):
    """An in-progress blob: invisible to readers until `commit()`."""

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> None: ...

    async def abort(self) -> None: ...


class BlobStore(Protocol):
    """What the vault needs from storage."""

    async def writer(self, blob_id: str) -> BlobWriter: ...

    def read(self, blob_id: str, piece_size: int = ...) -> AsyncIterator[bytes]: ...

    async def exists(self, blob_id: str) -> bool: ...

    async def delete(self, blob_id: str) -> None: ...


def _check_id(blob_id: str) -> str:
    if not _BLOB_ID.match(blob_id):
        raise ValueError(f"invalid blob id {blob_id!r}")
    return blob_id


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FileWriter:
    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        self._handle: IO[bytes] | None = None
        self._pending = bytearray()

    async def open(self) -> None:
        def _open() -> IO[bytes]:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            return os.fdopen(fd, "wb")

        self._handle = await asyncio.to_thread(_open)

    async def _flush(self) -> None:
        if self._pending and self._handle is not None:
            data, self._pending = bytes(self._pending), bytearray()
            await asyncio.to_thread(self._handle.write, data)

    async def write(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= _WRITE_BATCH:
            await self._flush()

    async def commit(self) -> None:
        await self._flush()
        handle, self._handle = self._handle, None
        if handle is None:
            raise RuntimeError("blob writer already closed")

        def _commit() -> None:
            with handle:
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(self.tmp, self.final)
            _fsync_dir(self.final.parent)

        await asyncio.to_thread(_commit)

    async def abort(self) -> None:
        handle, self._handle = self._handle, None
        self._pending = bytearray()

        def _abort() -> None:
            if handle is not None:
                handle.close()
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()

        await asyncio.to_thread(_abort)


class FilesystemBlobStore:
    """Blobs as files under a root, sharded by the id's first two characters."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, blob_id: str) -> Path:
        """Where a blob's file lives (operators and tamper tests look there)."""
        _check_id(blob_id)
        return self.root / blob_id[:2] / blob_id

    async def writer(self, blob_id: str) -> BlobWriter:
        writer = _FileWriter(self.path_for(blob_id))
        await writer.open()
        return writer

    async def read(self, blob_id: str, piece_size: int = 1 << 20) -> AsyncIterator[bytes]:
        path = self.path_for(blob_id)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(blob_id) from exc
        try:
            while True:
                piece = await asyncio.to_thread(handle.read, piece_size)
                if not piece:
                    return
                yield piece
        finally:
            handle.close()

    async def exists(self, blob_id: str) -> bool:
        return await asyncio.to_thread(self.path_for(blob_id).is_file)

    async def delete(self, blob_id: str) -> None:
        def _delete() -> None:
            with contextlib.suppress(FileNotFoundError):
                self.path_for(blob_id).unlink()

        await asyncio.to_thread(_delete)
