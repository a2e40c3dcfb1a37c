"""E-mail over SMTP: the stdlib smtplib, pooled connections, one thread per pooled connection.

aiosmtplib is not installed here, so sends run smtplib in a dedicated thread pool as large as the
connection pool; a connection is reused for many messages (RSET between them, NOOP-free) and
reopened when the server dropped it or it sat idle too long.
"""

from __future__ import annotations

import asyncio
import queue
import smtplib
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import structlog

from atlas_notify.channels.base import Outcome, SendResult

log = structlog.get_logger(__name__)


class SmtpPool:
    """Up to `size` open SMTP connections shared by sends running in `size` threads."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        size: int = 8,
        timeout: float = 10.0,
        idle_seconds: float = 60.0,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.size = size
        self.timeout = timeout
        self.idle_seconds = idle_seconds
        self.starttls = starttls
        self.username = username
        self.password = password
        self._idle: queue.LifoQueue[tuple[smtplib.SMTP, float]] = queue.LifoQueue()
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="notify-smtp")
        self._lock = threading.Lock()
        self._closed = False
        self.connections_opened = 0

    def _connect(self) -> smtplib.SMTP:
        conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            conn.ehlo()
            if self.starttls:
                conn.starttls()
                conn.ehlo()
            if self.username and self.password:
                conn.login(self.username, self.password)
        except BaseException:
            _close_quietly(conn)
            raise
        with self._lock:
            self.connections_opened += 1
        return conn

    def _checkout(self) -> tuple[smtplib.SMTP, bool]:
        """An idle connection (reused=True) or a new one; stale idle ones are closed."""
        while True:
            try:
                conn, last_used = self._idle.get_nowait()
            except queue.Empty:
                return self._connect(), False
            if time.monotonic() - last_used < self.idle_seconds:
                return conn, True
            _close_quietly(conn)

    def _checkin(self, conn: smtplib.SMTP) -> None:
        if self._closed:
            _close_quietly(conn)
        else:
            self._idle.put((conn, time.monotonic()))

    def _send_sync(self, message: EmailMessage | Callable[[], EmailMessage]) -> SendResult:
        if callable(message):
            message = message()  # building headers costs: done here, off the event loop
        for attempt in (1, 2):
            try:
                conn, reused = self._checkout()
            except (OSError, smtplib.SMTPException) as exc:
                return SendResult(Outcome.TECHNICAL, "smtp_unavailable", _describe(exc))
            try:
                refused = conn.send_message(message)
            except smtplib.SMTPServerDisconnected as exc:
                _close_quietly(conn)
                if reused and attempt == 1:
                    continue  # the server closed an idle connection: one fresh try
                return SendResult(Outcome.TECHNICAL, "smtp_disconnected", _describe(exc))
            except smtplib.SMTPRecipientsRefused as exc:
                self._checkin(conn)  # smtplib sent RSET; the connection is fine
                code, text = next(iter(exc.recipients.values()))
                return _by_code(code, text, "smtp_recipient_refused", "smtp_recipient_deferred")
            except smtplib.SMTPResponseException as exc:
                try:
                    conn.rset()
                    self._checkin(conn)
                except (OSError, smtplib.SMTPException):
                    _close_quietly(conn)
                return _by_code(exc.smtp_code, exc.smtp_error, "smtp_rejected", "smtp_deferred")
            except (OSError, smtplib.SMTPException) as exc:
                _close_quietly(conn)
                return SendResult(Outcome.TECHNICAL, "smtp_error", _describe(exc))
            self._checkin(conn)
            if refused:  # several recipients, some refused: we only ever send to one
                code, text = next(iter(refused.values()))
                return _by_code(code, text, "smtp_recipient_refused", "smtp_recipient_deferred")
            return SendResult(Outcome.DELIVERED, "smtp_accepted", provider="smtp")
        raise AssertionError("unreachable")

    async def send(self, message: EmailMessage | Callable[[], EmailMessage]) -> SendResult:
        """Send one message (or build it, then send it) on a pooled connection, in a thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._send_sync, message)

    async def close(self) -> None:
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._drain)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _drain(self) -> None:
        while True:
            try:
                conn, _ = self._idle.get_nowait()
            except queue.Empty:
                return
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                _close_quietly(conn)


def build_message(
    *, sender: str, to: str, subject: str, body: str, delivery_id: str
) -> EmailMessage:
    """A UTF-8 text/plain message carrying the delivery id for tracing bounces."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=delivery_id, domain="notify.atlas")
    message["X-Atlas-Delivery-Id"] = delivery_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body, charset="utf-8")
    return message


def _by_code(code: int, text: bytes | str, permanent: str, temporary: str) -> SendResult:
    detail = f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    if 400 <= code < 500:
        return SendResult(Outcome.TEMPORARY, temporary, detail, provider="smtp")
    return SendResult(Outcome.PERMANENT, permanent, detail, provider="smtp")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"[:500]


def _close_quietly(conn: smtplib.SMTP) -> None:
    try:
        conn.close()
    except Exception as exc:  # closing a broken socket may fail in many ways
        log.debug("smtp_close_failed", error=repr(exc))
