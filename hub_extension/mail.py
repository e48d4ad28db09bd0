"""Mail out of the platform: composing one message for one person, and handing it to SMTP or to a Maildir.

The platform keeps every message in its database (`app.messages`); this
module only carries a copy to a mailbox.  With `c.Compete.smtp_host` set, mail
goes to that server (STARTTLS or SMTPS, with a login when one is set); without
it, the embedded default keeps each mail in the Maildir `<home>/mail`, where
admins read it on the admin pages: nothing leaves the machine.

Every mail carries its one-click unsubscribe link twice: in the text, and in
the `List-Unsubscribe` header with `List-Unsubscribe-Post` (RFC 8058), so a
mail client's own "unsubscribe" button works.  Sending is slow and may fail:
callers run `Transport.send` off the request loop and decide on retries from
`SendFailure.permanent`.
"""
from __future__ import annotations

import dataclasses
import email.utils
import mailbox
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, Optional

MAILDIR_NAME = "mail"


class SendFailure(Exception):
    """A mail that did not go; `permanent` when trying again cannot help (an address refused)."""

    def __init__(self, text: str, *, permanent: bool = False):
        super().__init__(text)
        self.permanent = permanent


@dataclasses.dataclass
class Letter:
    """One mail for one person, as the platform wrote it."""

    to: str
    subject: str
    text: str  # the Markdown body, readable as plain text
    html: str  # the same, rendered and sanitized
    link: str  # the message on the platform
    unsubscribe: str  # the one-click unsubscribe link of its kind
    kind_label: str  # "announcements", "phase notices", ... (what the unsubscribe link stops)
    message_id: int


def compose(letter: Letter, sender: str) -> EmailMessage:
    """The mail of `letter`: plain text and HTML, the unsubscribe headers."""
    msg = EmailMessage(policy=default_policy)
    msg["From"] = sender
    msg["To"] = letter.to
    msg["Subject"] = letter.subject
    msg["Date"] = email.utils.formatdate(localtime=False)
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    msg["Message-ID"] = email.utils.make_msgid(f"message-{letter.message_id}", domain=domain)
    msg["List-Unsubscribe"] = f"<{letter.unsubscribe}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    footer = (f"\n\n--\nOn the platform: {letter.link}\n"
              f"Stop {letter.kind_label} by mail: {letter.unsubscribe}\n")
    msg.set_content(letter.text + footer)
    msg.add_alternative(
        f"{letter.html}<hr><p style=\"font-size:small\"><a href=\"{_attr(letter.link)}\">On the platform</a> · "
        f"<a href=\"{_attr(letter.unsubscribe)}\">Stop {letter.kind_label} by mail</a></p>",
        subtype="html",
    )
    return msg


def _attr(url: str) -> str:
    return url.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def default_sender(configured: str) -> str:
    return configured or f"Competitions <competitions@{socket.getfqdn() or 'localhost'}>"


class Transport:
    """Where mail goes: the SMTP server of the configuration, else the Maildir under the platform's home."""

    def __init__(self, config: Any):
        self.config = config

    @property
    def uses_smtp(self) -> bool:
        return bool(self.config.smtp_host)

    @property
    def maildir_path(self) -> Path:
        return Path(self.config.home) / MAILDIR_NAME

    def describe(self) -> str:
        c = self.config
        if not self.uses_smtp:
            return (f"No SMTP server is configured (c.Compete.smtp_host): mail does not leave this machine, it is "
                    f"kept in the Maildir {self.maildir_path}, which admins read on the admin pages.")
        how = "SMTPS" if c.smtp_ssl else ("SMTP with STARTTLS" if c.smtp_starttls else "SMTP")
        return f"Mail is sent through {c.smtp_host}:{self.port} ({how}) from {default_sender(c.mail_from)}."

    @property
    def port(self) -> int:
        c = self.config
        return c.smtp_port or (465 if c.smtp_ssl else 587 if c.smtp_starttls else 25)

    def send(self, letter: Letter) -> None:
        """Deliver one letter; raises `SendFailure`."""
        msg = compose(letter, default_sender(self.config.mail_from))
        if not self.uses_smtp:
            self._keep(msg)
            return
        try:
            self._smtp(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendFailure(f"the server refused {letter.to}: {_first_refusal(exc)}", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise SendFailure(f"the server answered {exc.smtp_code} {text}", permanent=500 <= exc.smtp_code < 600
                              and not isinstance(exc, smtplib.SMTPAuthenticationError)) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SendFailure(f"{type(exc).__name__}: {exc}") from None

    def _smtp(self, msg: EmailMessage) -> None:
        c = self.config
        context = ssl.create_default_context()
        if c.smtp_ssl:
            server: smtplib.SMTP = smtplib.SMTP_SSL(c.smtp_host, self.port, timeout=c.smtp_timeout, context=context)
        else:
            server = smtplib.SMTP(c.smtp_host, self.port, timeout=c.smtp_timeout)
        with server:
            if c.smtp_starttls and not c.smtp_ssl:
                server.starttls(context=context)
            if c.smtp_user:
                server.login(c.smtp_user, c.smtp_password)
            server.send_message(msg)

    def _keep(self, msg: EmailMessage) -> None:
        try:
            mailbox.Maildir(self.maildir_path, create=True).add(msg)
        except OSError as exc:
            raise SendFailure(f"the Maildir {self.maildir_path} could not be written: {exc}") from None


def _first_refusal(exc: smtplib.SMTPRecipientsRefused) -> str:
    for code, text in exc.recipients.values():
        return f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"
    return "refused"


def read_maildir(path: Path, offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """The mail kept in the Maildir at `path`, newest first: {"total", "items": [{key, to, subject, date, text}]}."""
    if not path.is_dir():
        return {"total": 0, "items": []}
    box = mailbox.Maildir(path, create=False)
    keyed = sorted(((_delivered(path, key), key) for key in box.keys()), reverse=True)
    items = []
    for _, key in keyed[offset:offset + limit]:
        msg = box.get(key)
        if msg is None:
            continue
        items.append({"key": key, "to": msg.get("To", ""), "subject": msg.get("Subject", ""),
                      "date": msg.get("Date", ""), "text": _text_part(msg)})
    return {"total": len(keyed), "items": items}


def _delivered(path: Path, key: str) -> float:
    """When a mail reached the Maildir (its file's time, in new/ or cur/)."""
    for sub in ("new", "cur"):
        for found in (path / sub).glob(f"{key}*"):
            return found.stat().st_mtime
    return 0.0


def _text_part(msg: mailbox.MaildirMessage) -> str:
    parsed = email.message_from_bytes(msg.as_bytes(), policy=default_policy)
    body: Optional[Any] = parsed.get_body(preferencelist=("plain",)) if hasattr(parsed, "get_body") else None
    return body.get_content() if body is not None else ""
