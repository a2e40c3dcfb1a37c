"""A clamd client speaking the INSTREAM protocol over a unix socket or TCP.

The plaintext is streamed to clamd as it arrives, never written by us to disk.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal

MAX_PIECE = 1 << 20

Verdict = Literal["clean", "infected", "error"]


class ScannerUnavailable(Exception):
    """clamd could not be reached or broke off the stream: the document stays quarantined."""


@dataclass(frozen=True)
class ScanResult:
    verdict: Verdict
    signature: str | None = None
    detail: str | None = None


def parse_reply(reply: str) -> ScanResult:
    """Turn clamd's `stream: …` answer into a verdict."""
    text = reply.strip().rstrip("\0").strip()
    body = text.split(":", 1)[1].strip() if ":" in text else text
    if body == "OK":
        return ScanResult("clean")
    if body.endswith(" FOUND"):
        return ScanResult("infected", signature=body.removesuffix(" FOUND").strip())
    return ScanResult("error", detail=body[:200])


class ClamdScanner:
    """Opens one INSTREAM session per document."""

    name = "clamav"

    def __init__(self, address: str, *, timeout: float = 30.0) -> None:
        self.address = address
        self.timeout = timeout

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            async with asyncio.timeout(self.timeout):
                if self.address.startswith("tcp://"):
                    host, _, port = self.address.removeprefix("tcp://").rpartition(":")
                    return await asyncio.open_connection(host, int(port))
                return await asyncio.open_unix_connection(self.address.removeprefix("unix://"))
        except (OSError, TimeoutError) as exc:
            raise ScannerUnavailable(f"clamd unreachable: {type(exc).__name__}") from exc

    async def ping(self) -> bool:
        """True when clamd answers PONG."""
        try:
            reader, writer = await self._connect()
        except ScannerUnavailable:
            return False
        try:
            writer.write(b"zPING\0")
            await writer.drain()
            async with asyncio.timeout(self.timeout):
                return (await reader.readuntil(b"\0")).rstrip(b"\0") == b"PONG"
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return False
        finally:
            writer.close()

    async def session(self) -> ScanSession:
        """A new INSTREAM session; feed it with `send`, then `finish` for the verdict."""
        reader, writer = await self._connect()
        session = ScanSession(reader, writer, self.timeout)
        await session.start()
        return session

    async def scan_bytes(self, data: bytes) -> ScanResult:
        session = await self.session()
        await session.send(data)
        return await session.finish()


class ScanSession:
    """One INSTREAM exchange: `zINSTREAM\\0`, length-prefixed pieces, a zero length, the reply."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self.broken: str | None = None

    async def start(self) -> None:
        await self._io(self._writer_send(b"zINSTREAM\0"))

    async def _writer_send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def _io(self, op: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await op
        except (OSError, TimeoutError) as exc:
            self.broken = f"{type(exc).__name__}"
            raise ScannerUnavailable(f"clamd stream broke: {self.broken}") from exc

    async def send(self, data: bytes) -> None:
        """Stream a piece of plaintext to clamd (split to stay under its chunk limit)."""
        view = memoryview(data)
        for start in range(0, len(view), MAX_PIECE):
            piece = view[start : start + MAX_PIECE]
            await self._io(self._writer_send(struct.pack(">I", len(piece)) + bytes(piece)))

    async def finish(self) -> ScanResult:
        """End the stream and read clamd's verdict."""
        try:
            await self._io(self._writer_send(struct.pack(">I", 0)))
            try:
                async with asyncio.timeout(self._timeout):
                    reply = await self._reader.readuntil(b"\0")
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                raise ScannerUnavailable(f"clamd gave no verdict: {type(exc).__name__}") from exc
            return parse_reply(reply.decode(errors="replace"))
        finally:
            self.close()

    def close(self) -> None:
        self._writer.close()
