"""A local SMTP server for `make run`: keeps every e-mail notify sends as a file, delivers none.

Usage: `python -m atlas_devstack.mailsink [--port 8025] [--dir .atlas/mail]`. Each message is
written to `<dir>/<timestamp>-<n>.eml` (readable with any mail client) and summarised on the
console, so the e-mails of `make demo` can be read without a real mail server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from atlas_devstack.paths import atlas_dir

DEFAULT_PORT = 8025


class FileMailbox:
    """aiosmtpd handler: one `.eml` file per accepted message."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.count += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
        path = self.directory / f"{stamp}-{self.count}.eml"
        path.write_bytes(content)
        message = email.message_from_bytes(content, policy=email.policy.default)
        recipients = ", ".join(str(r) for r in envelope.rcpt_tos)
        print(f"mail to {recipients}: {message.get('Subject', '')} ({path.name})", flush=True)
        return "250 Message accepted for delivery"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--dir", type=Path, default=None, help="default: .atlas/mail")
    args = parser.parse_args(argv)
    mailbox = FileMailbox(args.dir or atlas_dir() / "mail")
    handler: Any = mailbox
    controller = Controller(handler, hostname=args.host, port=args.port)
    controller.start()
    print(f"mail sink listening on {args.host}:{args.port}, writing to {mailbox.directory}")
    stop = asyncio.Event()

    async def wait() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(wait())
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
