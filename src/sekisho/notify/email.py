"""E-mail over SMTP: STARTTLS (verified against the system's CAs or `ca_file`), plain text with
an HTML alternative. The delivery key is the Message-ID and an X-Sekisho-Delivery header, so a
copy sent twice (the dispatcher died after the server's 250) is recognisable as one.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
import unicodedata
from email.message import EmailMessage
from email.utils import formatdate

from sekisho.notify.base import DELIVERY_HEADER, EVENT_HEADER, Delivery, DeliveryFailed, redact
from sekisho.notify.render import html_text, plain_text

MESSAGE_ID_DOMAIN = "sekisho"


def build(delivery: Delivery, sender: str, to: list[str]) -> EmailMessage:
    message = delivery.message
    mail = EmailMessage()
    mail["Subject"] = one_line(message.title)
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{delivery.key}@{MESSAGE_ID_DOMAIN}>"
    mail[DELIVERY_HEADER] = delivery.key
    mail[EVENT_HEADER] = delivery.event
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    mail.set_content(plain_text(message))
    mail.add_alternative(html_text(message), subtype="html")
    return mail


def one_line(text: str) -> str:
    """A header value on one line: a line break (or any control character) in it could
    otherwise start a header of its own; the policy refuses them, so they become spaces."""
    return " ".join(
        "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text).split()
    )


class EmailSender:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        to: tuple[str, ...],
        timeout: float,
        starttls: bool,
        tls: ssl.SSLContext | None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._host, self._port, self._sender, self._to = host, port, sender, to
        self._timeout, self._starttls, self._tls = timeout, starttls, tls
        self._username, self._password = username, password
        self._smtp: smtplib.SMTP | None = None  # kept open across one dispatch batch

    def send(self, delivery: Delivery) -> str:
        to = [delivery.recipient] if delivery.recipient else list(self._to)
        if not to:
            raise DeliveryFailed("no recipient: the person has no e-mail address")
        try:
            mail = build(delivery, self._sender, to)
        except ValueError as exc:  # an address the mail policy refuses
            raise DeliveryFailed(f"not a mail that can be sent: {exc}"[:300]) from None
        for fresh in (False, True):
            try:
                smtp = self._connection(fresh)
                refused = smtp.send_message(mail, from_addr=self._sender, to_addrs=to)
            except smtplib.SMTPServerDisconnected:
                self.close()
                if fresh:
                    raise DeliveryFailed("the SMTP server closed the connection") from None
                continue  # a kept connection timed out on the server's side: once more
            except smtplib.SMTPResponseException as exc:
                self._reset()
                said = exc.smtp_error
                text = (said.decode(errors="replace") if isinstance(said, bytes) else said)[:200]
                raise DeliveryFailed(self._safe(f"SMTP {exc.smtp_code} {text}")) from None
            except smtplib.SMTPRecipientsRefused as exc:
                self._reset()
                codes = ", ".join(f"{addr}: {code}" for addr, (code, _) in exc.recipients.items())
                raise DeliveryFailed(f"all recipients refused ({codes})") from None
            except (smtplib.SMTPException, OSError, ssl.SSLError, ValueError) as exc:
                # ValueError: a host the resolver cannot even encode (IDNA), a NUL in it
                self.close()
                raise DeliveryFailed(self._safe(_describe(exc))) from None
            # Some of several fixed recipients refused: the others have it, so this is done
            # (sending again would duplicate theirs); the receipt says who did not.
            note = f"; refused {', '.join(sorted(refused))}" if refused else ""
            return f"SMTP 250 to {len(to) - len(refused)} recipient(s){note}"
        raise AssertionError("unreachable")

    def _connection(self, fresh: bool) -> smtplib.SMTP:
        if self._smtp is not None and not fresh:
            return self._smtp
        self.close()
        smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        try:
            smtp.ehlo()
            if self._starttls:
                # Never fall back to clear text: no STARTTLS offered is a failure.
                smtp.starttls(context=self._tls)
                smtp.ehlo()
            if self._username:
                smtp.login(self._username, self._password or "")
        except BaseException:
            _quietly_close(smtp)
            raise
        self._smtp = smtp
        return smtp

    def _reset(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.rset()
            except (smtplib.SMTPException, OSError):
                self.close()

    def _safe(self, text: str) -> str:
        return redact(text, [self._password])

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                _quietly_close(smtp)


def _quietly_close(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        smtp.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"the server does not offer what is required: {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the server's certificate was not accepted: {exc.verify_message}"
    return f"{type(exc).__name__}: {exc}"
