"""The `make run` mail sink keeps what notify sends as readable files."""

from __future__ import annotations

import email
import email.policy
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _connect(port: int, deadline: float) -> smtplib.SMTP:
    while True:
        try:
            return smtplib.SMTP("127.0.0.1", port, timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_mail_sink_writes_each_message_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    mail_dir = tmp_path / "mail"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "atlas_devstack.mailsink",
            "--port",
            str(port),
            "--dir",
            str(mail_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        message = EmailMessage()
        message["From"] = "ne-pas-repondre@atlas.example"
        message["To"] = "agent@example.fr"
        message["Subject"] = "Votre dossier de mutation est ouvert"
        message.set_content("Bonjour, votre espace ATLAS de destination vous contactera.")
        with _connect(port, time.monotonic() + 20) as client:
            client.send_message(message)
        files = list(mail_dir.glob("*.eml"))
        assert len(files) == 1
        kept = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
        assert kept["Subject"] == "Votre dossier de mutation est ouvert"
        assert "destination vous contactera" in kept.get_body().get_content()  # type: ignore[union-attr]
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=15)
    assert process.returncode == 0
    assert "mail to agent@example.fr: Votre dossier de mutation est ouvert" in out
