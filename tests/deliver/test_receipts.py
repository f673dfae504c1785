"""Provider payloads → Receipts: vocabulary, dedupe keys, echoed refs, suppressions, masking."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import pytest

from tasks.deliver.receipts import (
    ParseError,
    Receipt,
    is_stop,
    mask,
    open_pubsub,
    parse_rbm,
    parse_sendgrid,
    parse_twilio,
    parse_whatsapp,
    scrub,
    unsubscribe_receipt,
)

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
REF = "6f1c1a52-6d43-5a0c-9d5e-2f1f7c1b9a10"


def _wa(statuses: Sequence[dict[str, Any]] = (), messages: Sequence[dict[str, Any]] = ()) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "statuses": list(statuses),
        "messages": list(messages),
    }
    change = {"field": "messages", "value": value}
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    return json.dumps(body).encode()


def test_whatsapp_statuses() -> None:
    body = _wa(
        [
            {
                "id": "wamid.A",
                "status": "delivered",
                "timestamp": "1772445600",
                "recipient_id": "34600000001",
                "biz_opaque_callback_data": REF,
            },
            {"id": "wamid.A", "status": "read", "timestamp": "1772445660"},
            {
                "id": "wamid.B",
                "status": "failed",
                "timestamp": "1772445600",
                "errors": [
                    {
                        "code": 131026,
                        "title": "Message undeliverable",
                        "error_data": {"details": "+34 600 000 002 is not on WhatsApp"},
                    }
                ],
            },
            {
                "id": "wamid.C",
                "status": "failed",
                "errors": [{"code": 131049, "title": "per-user marketing limit"}],
            },
            {"id": "wamid.D", "status": "deleted"},  # not ours to act on
            {"status": "sent"},  # broken item: skipped, not the whole batch
        ]
    )
    delivered, read, undeliverable, limited = parse_whatsapp(body, NOW)
    assert delivered.event_key == "whatsapp:wamid.A:delivered"
    assert (delivered.event_type, delivered.channel, delivered.ref) == (
        "delivered",
        "whatsapp",
        REF,
    )
    assert delivered.occurred_at == dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    assert delivered.recipient == "+34600000001"
    assert read.event_key == "whatsapp:wamid.A:read" and read.ref is None
    assert undeliverable.error_code == "131026"
    assert undeliverable.suppress == "WhatsApp undeliverable" and undeliverable.wants_fallback
    assert "600" not in (undeliverable.detail or "").replace("***002", "")  # number masked
    assert limited.suppress is None and not limited.wants_fallback  # hold back, no fallback
    assert limited.occurred_at == NOW  # no timestamp: when we heard it


def test_whatsapp_inbound_replies_and_stop() -> None:
    body = _wa(
        messages=[
            {
                "from": "34600000001",
                "id": "wamid.IN1",
                "timestamp": "1772445600",
                "type": "text",
                "text": {"body": "Ya he pagado"},
                "context": {"id": "wamid.A"},
            },
            {
                "from": "34600000002",
                "id": "wamid.IN2",
                "timestamp": "1772445600",
                "type": "text",
                "text": {"body": " Stop. "},
            },
        ]
    )
    reply, stop = parse_whatsapp(body, NOW)
    assert (reply.event_type, reply.inbound, reply.provider_message_id) == (
        "replied",
        True,
        "wamid.A",
    )
    assert reply.event_key == "whatsapp:in:wamid.IN1" and reply.recipient == "+34600000001"
    assert "pagado" not in json.dumps(reply.payload())  # message text is never kept
    assert (stop.event_type, stop.suppress) == ("unsubscribed", "WhatsApp opt-out")


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"object": "x"}'])
def test_whatsapp_malformed(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_whatsapp(body, NOW)


def _sg(**fields: Any) -> dict[str, Any]:
    return {
        "email": "ada@example.com",
        "timestamp": 1772445600,
        "sg_event_id": "ev-" + fields.get("event", "x"),
        "sg_message_id": "XMSG1.filter0001.123.0",
        "cadencia_ref": REF,
    } | fields


def test_sendgrid_batch() -> None:
    events = [
        _sg(event="processed"),
        _sg(event="delivered"),
        _sg(event="open", sg_machine_open=True),
        _sg(event="click", url="https://pay.example.com/A1?token=secret"),
        _sg(
            event="bounce",
            type="bounce",
            status="5.1.1",
            reason="550 5.1.1 <ada@example.com>: Recipient address rejected",
        ),
        _sg(event="bounce", type="blocked", sg_event_id="ev-blocked", reason="IP blocked"),
        _sg(event="dropped", reason="Bounced Address"),
        _sg(event="spamreport"),
        _sg(event="group_unsubscribe"),
        _sg(event="group_resubscribe"),  # no effect here
        "garbage",
        _sg(event="delivered", sg_event_id=None),
    ]
    out = parse_sendgrid(json.dumps(events).encode(), NOW)
    types = [r.event_type for r in out]
    assert types == [
        "accepted",
        "delivered",
        "opened",
        "clicked",
        "bounced",
        "failed",
        "failed",
        "unsubscribed",
        "unsubscribed",
    ]
    assert {r.provider_message_id for r in out} == {"XMSG1"}  # the X-Message-Id prefix
    assert {r.ref for r in out} == {REF} and {r.channel for r in out} == {"email"}
    assert out[0].event_key == "sendgrid:ev-processed"
    assert out[2].detail == "machine open"
    assert out[3].detail == "https://pay.example.com/A1"  # query (tokens, ids) dropped
    bounce, blocked, dropped, spam, group = out[4:]
    assert (bounce.suppress, bounce.error_code) == ("hard bounce", "5.1.1")
    assert "ada@example.com" not in (bounce.detail or "") and "a***@example.com" in bounce.detail
    assert blocked.suppress is None and blocked.wants_fallback
    assert dropped.suppress == "hard bounce"
    assert (spam.suppress, group.suppress) == ("spam report", "unsubscribed from email")
    assert out[0].occurred_at == dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("body", [b"{", b'{"event": "open"}', b'"x"'])
def test_sendgrid_malformed(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_sendgrid(body, NOW)


def _pubsub(event: dict[str, Any]) -> bytes:
    data = base64.b64encode(json.dumps(event).encode()).decode()
    message = {"data": data, "messageId": "p1", "publishTime": "2026-03-02T10:00:00.123Z"}
    return json.dumps({"message": message, "subscription": "s"}).encode()


def test_rbm_events_and_replies() -> None:
    delivered = open_pubsub(
        _pubsub(
            {
                "senderPhoneNumber": "+34600000001",
                "eventType": "DELIVERED",
                "eventId": "E1",
                "messageId": REF,
                "agentId": "a",
                "sendTime": "2026-03-02T09:59:00.5Z",
            }
        )
    )
    (receipt,) = parse_rbm(delivered, NOW)
    assert (receipt.event_key, receipt.event_type, receipt.channel) == (
        "rbm:E1",
        "delivered",
        "rcs",
    )
    assert receipt.ref == REF == receipt.provider_message_id
    assert receipt.occurred_at == dt.datetime(2026, 3, 2, 9, 59, 0, 500000, tzinfo=dt.UTC)

    typing = open_pubsub(_pubsub({"eventType": "IS_TYPING", "eventId": "E2", "messageId": REF}))
    assert parse_rbm(typing, NOW) == []
    expired = open_pubsub(
        _pubsub({"eventType": "TTL_EXPIRATION_REVOKED", "eventId": "E3", "messageId": REF})
    )
    (failed,) = parse_rbm(expired, NOW)
    assert failed.event_type == "failed" and failed.wants_fallback
    assert failed.occurred_at == dt.datetime(2026, 3, 2, 10, 0, 0, 123000, tzinfo=dt.UTC)

    reply = open_pubsub(
        _pubsub(
            {"senderPhoneNumber": "+34600000001", "text": "BAJA", "eventId": "E4", "agentId": "a"}
        )
    )
    (stop,) = parse_rbm(reply, NOW)
    assert (stop.event_type, stop.suppress, stop.inbound) == ("unsubscribed", "RCS opt-out", True)


@pytest.mark.parametrize(
    "body",
    [
        b"nope",
        b'{"message": {}}',
        b'{"message": {"data": "***"}}',
        b'{"message": {"data": "WzFd"}}',
    ],
)
def test_rbm_malformed(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_rbm(open_pubsub(body), NOW)


def test_twilio_callbacks() -> None:
    (delivered,) = parse_twilio(
        {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+34600000001"}, REF, NOW
    )
    assert (delivered.event_key, delivered.event_type, delivered.channel) == (
        "twilio:SM1:delivered",
        "delivered",
        "sms",
    )
    assert delivered.ref == REF and delivered.provider_message_id == "SM1"

    (stopped,) = parse_twilio(
        {
            "MessageSid": "SM2",
            "MessageStatus": "undelivered",
            "ErrorCode": "21610",
            "To": "+34600000001",
        },
        None,
        NOW,
    )
    assert (stopped.event_type, stopped.error_code, stopped.suppress) == (
        "failed",
        "21610",
        "SMS STOP",
    )
    (wa,) = parse_twilio(
        {"MessageSid": "SM3", "MessageStatus": "read", "To": "whatsapp:+34600000001"}, None, NOW
    )
    assert (wa.channel, wa.recipient) == ("whatsapp", "+34600000001")

    (call,) = parse_twilio(
        {
            "CallSid": "CA1",
            "CallStatus": "no-answer",
            "Timestamp": "Mon, 02 Mar 2026 10:00:05 +0000",
        },
        REF,
        NOW,
    )
    assert (call.event_key, call.event_type, call.channel) == (
        "twilio:CA1:no-answer",
        "failed",
        "voice",
    )
    assert call.occurred_at == dt.datetime(2026, 3, 2, 10, 0, 5, tzinfo=dt.UTC)

    (inbound,) = parse_twilio(
        {"MessageSid": "SM4", "SmsStatus": "received", "From": "+34600000001", "Body": "stopall"},
        None,
        NOW,
    )
    assert (inbound.event_key, inbound.event_type, inbound.suppress) == (
        "twilio:in:SM4",
        "unsubscribed",
        "SMS STOP",
    )
    (chat,) = parse_twilio({"MessageSid": "SM5", "From": "+34600000001", "Body": "hola"}, None, NOW)
    assert (chat.event_type, chat.suppress) == ("replied", None)
    with pytest.raises(ParseError):
        parse_twilio({"Body": "no sid"}, None, NOW)


def test_unsubscribe_receipt() -> None:
    receipt = unsubscribe_receipt(REF, "email", NOW)
    assert receipt.event_key == f"unsubscribe:{REF}"
    assert (receipt.event_type, receipt.suppress) == ("unsubscribed", "unsubscribed from email")


def test_masking_and_stop_words() -> None:
    assert mask("ada.lovelace@example.com") == "a***@example.com"
    assert mask("+34 600 000 123") == "***123"
    assert mask(None) == "-"
    text = scrub("550 <bob@corp.example>: user +34600000123 unknown")
    assert text == "550 <b***@corp.example>: user ***123 unknown"
    assert all(is_stop(w) for w in ("STOP", "stop", " Baja ", "Unsubscribe!", "STOPALL"))
    assert not any(is_stop(w) for w in ("stop sending invoices", "hola", "", None))
    receipt = Receipt("k", "s", "p", "delivered", "sms", NOW, recipient="+34600000123")
    assert "600000123" not in repr(receipt) and "600000123" not in json.dumps(receipt.payload())
