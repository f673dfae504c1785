"""Email over SMTP (RFC 5321): 4yz replies are transient, 5yz permanent (`550 5.1.1` unknown
user is a hard bounce). The standard library's client runs in a thread per connection; a
small pool of connections is reused across messages."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from tasks.deliver.providers.base import Message, Result
from tasks.deliver.providers.sendgrid import unsubscribe_headers


class Smtp:
    name = "smtp"

    def __init__(
        self, host: str, port: int, sender: str, sender_name: str | None,
        username: str | None = None, password: str | None = None, starttls: bool = False,
        timeout: float = 20.0, unsubscribe_mailto: str | None = None, pool: int = 4,
    ) -> None:  # fmt: skip
        self._host, self._port = host, port
        self._sender, self._sender_name = sender, sender_name
        self._username, self._password = username, password
        self._starttls, self._timeout = starttls, timeout
        self._mailto = unsubscribe_mailto
        self._idle: asyncio.Queue[smtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(pool)

    def build(self, message: Message) -> EmailMessage:
        r = message.rendered
        mail = EmailMessage()
        mail["From"] = formataddr((self._sender_name or "", self._sender))
        mail["To"] = formataddr((message.name or "", message.to))
        mail["Subject"] = r.subject or ""
        domain = self._sender.rpartition("@")[2] or None
        mail["Message-ID"] = make_msgid(idstring=message.ref.replace("-", ""), domain=domain)
        mail["X-Cadencia-Ref"] = message.ref
        if message.purpose == "marketing":
            for key, value in unsubscribe_headers(r.url, self._mailto).items():
                mail[key] = value
        mail.set_content(r.text)
        if r.html:
            mail.add_alternative(r.html, subtype="html")
        return mail

    def _connect(self) -> smtplib.SMTP:
        conn = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        if self._starttls:
            conn.starttls(context=ssl.create_default_context())
        if self._username and self._password:
            conn.login(self._username, self._password)
        return conn

    def _deliver(
        self, conn: smtplib.SMTP | None, mail: EmailMessage, to: str, sent: list[bool]
    ) -> smtplib.SMTP:
        """MAIL, RCPT, DATA by hand: `sent[0]` turns True once DATA begins, because from
        then on a lost connection or a timeout may hide a message the server queued."""
        conn = conn or self._connect()
        conn.ehlo_or_helo_if_needed()
        code, reply = conn.mail(self._sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, self._sender)
        code, reply = conn.rcpt(to)
        if code not in (250, 251):
            conn.rset()
            raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
        sent[0] = True
        code, reply = conn.data(mail.as_bytes())
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
        return conn

    async def send(self, message: Message) -> Result:
        mail = self.build(message)
        async with self._slots:
            conn = self._idle.get_nowait() if not self._idle.empty() else None
            sent = [False]
            try:
                conn = await asyncio.to_thread(self._deliver, conn, mail, message.to, sent)
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                if conn is not None:
                    self._idle.put_nowait(conn)  # the session is still good
                return _reply(code, text)
            except smtplib.SMTPResponseException as exc:
                # The server answered: its reply class says what happened.
                _close(conn)
                return _reply(exc.smtp_code, exc.smtp_error)
            except (smtplib.SMTPException, OSError) as exc:
                _close(conn)
                # Before DATA nothing was queued; once DATA began we cannot know.
                outcome = "ambiguous" if sent[0] else "retryable"
                return Result(outcome, code=type(exc).__name__, detail=str(exc) or None)
            self._idle.put_nowait(conn)
            return Result("sent", provider_id=mail["Message-ID"])

    async def aclose(self) -> None:
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            try:
                conn.quit()
            except smtplib.SMTPException:
                conn.close()


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            conn.close()


def _reply(code: int, text: bytes | str) -> Result:
    detail = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    if code == 535:  # authentication refused: our credentials, not the recipient
        return Result("retryable", code="535", detail=detail, stall=True)
    if 400 <= code < 500:
        return Result("retryable", code=str(code), detail=detail)
    # Unknown mailbox (5.1.x, or 550/551/553 without an enhanced code) is a hard bounce; a
    # policy block (5.7.x) is not the address's fault.
    hard = "5.1." in detail or (code in (550, 551, 553) and "5.7." not in detail)
    return Result("permanent", code=str(code), detail=detail, fall_back=hard,
                  suppress="hard bounce" if hard else None)  # fmt: skip
