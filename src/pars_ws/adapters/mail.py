"""Sending mail: SMTP when PARS_SMTP_HOST is set, otherwise an .eml file in the outbox folder."""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path


class Mailer:
    def __init__(self, smtp_host: str | None, smtp_port: int, mail_from: str, outbox_dir: Path):
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port
        self.mail_from = mail_from
        self.outbox_dir = Path(outbox_dir)

    def message(self, recipient: str, subject: str, body: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.mail_from
        msg["To"] = recipient
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain="pars-ws.local")
        msg.set_content(body)
        return msg

    def send(self, recipient: str, subject: str, body: str) -> str:
        """Deliver one message; returns where it went."""
        msg = self.message(recipient, subject, body)
        if self.smtp_host:
            with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=30) as smtp:
                smtp.send_message(msg)
            return f"smtp://{self.smtp_host}:{self.smtp_port}"
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        path = self.outbox_dir / f"{uuid.uuid4().hex}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(msg))
        tmp.replace(path)  # readers never see half a message
        return str(path)
