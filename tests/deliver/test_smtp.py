"""Email over SMTP against a real SMTP server (aiosmtpd): headers, our ref, one-click
unsubscribe on marketing mail, and RFC 5321 reply classes (4yz retry, 5yz permanent)."""

from __future__ import annotations

import asyncio
import email
import socket
from collections.abc import Iterator
from email.message import Message as MailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tasks.deliver.providers.base import Message
from tasks.deliver.providers.smtp import Smtp
from tasks.deliver.templates import Rendered

REF = "0b6c3f4e-8a1d-5e2f-9c3b-7d4e5f6a7b8c"


class Inbox:
    """Accepts mail; `unknown@` gets 550 5.1.1, `busy@` gets 451 4.3.0."""

    def __init__(self) -> None:
        self.mail: list[MailMessage] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:  # fmt: skip
        if address.startswith("unknown@"):
            return "550 5.1.1 User unknown"
        if address.startswith("busy@"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.mail.append(email.message_from_bytes(envelope.content))
        if any(r.startswith("slow@") for r in envelope.rcpt_tos):
            await asyncio.sleep(2)  # queued, but the answer comes too late
        return "250 Message accepted"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    with socket.socket() as probe:  # aiosmtpd checks its own port at start: pick a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def _message(to: str, purpose: str = "service") -> Message:
    rendered = Rendered(subject="Su factura F-1", text="Estimada Ana: ...",
                        html="<p>Estimada Ana: ...</p>", url="https://example.com/u/1")  # fmt: skip
    return Message(touch_id=1, ref=REF, channel="email", template="invoice_copy",
                   purpose=purpose, locale="es", to=to, rendered=rendered,
                   name="Ana García")  # fmt: skip


def _smtp(port: int) -> Smtp:
    return Smtp("127.0.0.1", port, "cobros@example.com", "Cobros", starttls=False,
                unsubscribe_mailto="baja@example.com")  # fmt: skip


def test_a_real_smtp_server_receives_the_message_with_our_ref(inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox

    async def run() -> list:
        smtp = _smtp(port)
        try:
            return [await smtp.send(_message("ana@example.com")),
                    await smtp.send(_message("ana@example.com", purpose="marketing"))]  # fmt: skip
        finally:
            await smtp.aclose()

    service, marketing = asyncio.run(run())
    assert service.outcome == marketing.outcome == "sent"
    assert REF.replace("-", "") in service.provider_id
    first, second = handler.mail
    assert first["X-Cadencia-Ref"] == REF
    assert first["Subject"] == "Su factura F-1" and "Ana" in first["To"]
    assert first.is_multipart()  # text and html alternatives
    assert "List-Unsubscribe" not in first  # transactional: exempt
    assert second["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "<https://example.com/u/1>" in second["List-Unsubscribe"]
    assert "mailto:baja@example.com" in second["List-Unsubscribe"]


def test_reply_codes_classify_as_permanent_or_retryable(inbox: tuple[Inbox, int]) -> None:
    _handler, port = inbox

    async def run() -> list:
        smtp = _smtp(port)
        try:
            return [await smtp.send(_message("unknown@example.com")),
                    await smtp.send(_message("busy@example.com"))]  # fmt: skip
        finally:
            await smtp.aclose()

    unknown, busy = asyncio.run(run())
    assert (unknown.outcome, unknown.code, unknown.suppress) == ("permanent", "550", "hard bounce")
    assert (busy.outcome, busy.code) == ("retryable", "451")


def test_no_server_is_retryable_not_lost() -> None:
    async def run() -> object:
        smtp = _smtp(1)  # nothing listens on port 1
        return await smtp.send(_message("ana@example.com"))

    assert asyncio.run(run()).outcome == "retryable"


def test_a_timeout_after_data_is_ambiguous_never_retried(inbox: tuple[Inbox, int]) -> None:
    """The server had the message when the client gave up waiting: sending it again would
    deliver it twice."""
    handler, port = inbox

    async def run() -> object:
        smtp = Smtp("127.0.0.1", port, "cobros@example.com", None, starttls=False, timeout=0.5)
        try:
            return await smtp.send(_message("slow@example.com"))
        finally:
            await smtp.aclose()

    result = asyncio.run(run())
    assert result.outcome == "ambiguous"  # type: ignore[attr-defined]
    assert len(handler.mail) == 1
