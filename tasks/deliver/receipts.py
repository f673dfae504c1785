"""Provider webhooks → `Receipt`s: one normalised shape for every delivery, engagement and
reply event, whatever the provider called it.

Pure parsing: no database, no secrets (the receiver verifies signatures before calling in).
Providers deliver at least once and out of order, so every receipt carries a deterministic
`event_key` (the dedupe key). A malformed body raises `ParseError` (the receiver answers 400);
a malformed *item* inside a valid batch is skipped and logged, so one bad event cannot make
the provider retry (and lose) the other 999 for days.

Personal data: `recipient` (a phone number or address) is only used to find the contact; it is
never logged (see `mask`) and never stored. `detail` is scrubbed of addresses and numbers.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tasks.privacy import mask, scrub  # noqa: F401 - re-exported for the receiver

log = logging.getLogger("cadencia.webhooks")

# Project vocabulary (tasks/sources/schemas.py EVENT_TYPES) plus `sent` and `accepted`.
FAILURES = ("failed", "bounced")
# How far each event moves a touch's delivery_status; failures always win (see ledger).
DELIVERY_RANK = {
    "accepted": 0,
    "sent": 1,
    "delivered": 2,
    "read": 3,
    "opened": 3,
    "clicked": 4,
    "replied": 4,
    "failed": 9,
    "bounced": 9,
}
# Any of these proves the provider accepted the message (reconciles an `unknown` touch).
EVIDENCE = (*DELIVERY_RANK, "unsubscribed")

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "BAJA"})
# The reasons the decide step already uses (tasks/decide/engagement.py SUPPRESSING).
OPT_OUT = {
    "email": "unsubscribed from email",
    "sms": "SMS STOP",
    "whatsapp": "WhatsApp opt-out",
    "rcs": "RCS opt-out",
}
WA_UNDELIVERABLE = "131026"
# Meta's quality / per-user marketing limits: do not push the step onto another channel now.
WA_HOLD_BACK = frozenset({"131048", "131049"})
TWILIO_STOP = "21610"

_MAX_KEY = 200  # events.event_key length


class ParseError(ValueError):
    """The body is not the provider's shape at all (answered with 400)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """One provider event, normalised. `ref` is our message_ref when the provider echoed it."""

    event_key: str
    source: str
    provider: str
    event_type: str
    channel: str | None
    occurred_at: dt.datetime
    ref: str | None = None
    provider_message_id: str | None = None
    # The other party: our message's recipient, or an inbound message's sender. Never stored.
    recipient: str | None = field(default=None, repr=False)
    error_code: str | None = None
    detail: str | None = None
    # A suppression this event puts on the contact's channel (the reason), if any.
    suppress: str | None = None
    inbound: bool = False

    @property
    def is_failure(self) -> bool:
        return self.event_type in FAILURES

    @property
    def wants_fallback(self) -> bool:
        """A failure that should move the step to the touch's fallback channel."""
        if not self.is_failure:
            return False
        return not (self.provider == "whatsapp" and self.error_code in WA_HOLD_BACK)

    def payload(self) -> dict[str, Any]:
        """What `events.payload` keeps: nothing personal (no address, number or text)."""
        out = {
            "provider": self.provider,
            "ref": self.ref,
            "provider_message_id": self.provider_message_id,
            "error_code": self.error_code,
            "detail": self.detail,
            "inbound": self.inbound or None,
        }
        return {k: v for k, v in out.items() if v is not None}


# --- masking -------------------------------------------------------------------------------


def is_stop(body: str | None) -> bool:
    """A one-word opt-out (Twilio's keywords plus Spanish BAJA), case and punctuation aside."""
    if not body:
        return False
    word = re.sub(r"[\s.!¡]+", "", body).upper()
    return word in STOP_WORDS


# --- small helpers -------------------------------------------------------------------------


def _key(*parts: Any) -> str:
    key = ":".join(str(p) for p in parts)
    if len(key) <= _MAX_KEY:
        return key
    import hashlib

    return key[:150] + "#" + hashlib.sha256(key.encode()).hexdigest()[:40]


def _text(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value.strip() or None if isinstance(value, str) else None


def _epoch(value: Any, now: dt.datetime) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return now


def _iso(value: Any, now: dt.datetime) -> dt.datetime:
    try:
        stamp = dt.datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return now
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC)


def _rfc2822(value: Any, now: dt.datetime) -> dt.datetime:
    try:
        stamp = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return now
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC)


def _phone(value: str | None) -> str | None:
    """`whatsapp:+34600…`, `34600…` or `+34 600…` → `+34600…` (how contacts store it)."""
    if not value:
        return None
    digits = re.sub(r"\D", "", value.removeprefix("whatsapp:"))
    return f"+{digits}" if digits else None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"not JSON: {exc}") from exc


def _skip(provider: str, why: str) -> None:
    log.warning("%s webhook: skipped an event (%s)", provider, why)


# --- WhatsApp Cloud API --------------------------------------------------------------------

WA_STATUSES = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}


def parse_whatsapp(body: bytes, now: dt.datetime) -> list[Receipt]:
    """Meta's `whatsapp_business_account` notification: statuses and inbound messages."""
    data = _json(body)
    if not isinstance(data, dict) or not isinstance(data.get("entry"), list):
        raise ParseError("expected an object with an 'entry' array")
    out: list[Receipt] = []
    for entry in data["entry"]:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                continue
            for status in _items(value.get("statuses")):
                receipt = _wa_status(status, now)
                if receipt is not None:
                    out.append(receipt)
            for message in _items(value.get("messages")):
                receipt = _wa_message(message, now)
                if receipt is not None:
                    out.append(receipt)
    return out


def _items(value: Any) -> Iterable[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _wa_status(status: dict[str, Any], now: dt.datetime) -> Receipt | None:
    wamid, raw = _text(status.get("id")), _text(status.get("status"))
    if wamid is None or raw is None:
        _skip("whatsapp", "status without id or status")
        return None
    kind = WA_STATUSES.get(raw)
    if kind is None:
        return None  # e.g. "deleted", "warning": nothing to act on
    code = detail = None
    errors = _items(status.get("errors"))
    if errors:
        code = _text(errors[0].get("code"))
        data = errors[0].get("error_data")
        detail = scrub(
            (data.get("details") if isinstance(data, dict) else None)
            or errors[0].get("title")
            or errors[0].get("message")
        )
    suppress = "WhatsApp undeliverable" if kind == "failed" and code == WA_UNDELIVERABLE else None
    return Receipt(
        event_key=_key("whatsapp", wamid, raw),
        source="whatsapp_webhook",
        provider="whatsapp",
        event_type=kind,
        channel="whatsapp",
        occurred_at=_epoch(status.get("timestamp"), now),
        ref=_text(status.get("biz_opaque_callback_data")),
        provider_message_id=wamid,
        recipient=_phone(_text(status.get("recipient_id"))),
        error_code=code,
        detail=detail,
        suppress=suppress,
    )


def _wa_message(message: dict[str, Any], now: dt.datetime) -> Receipt | None:
    wamid = _text(message.get("id"))
    if wamid is None:
        _skip("whatsapp", "inbound message without id")
        return None
    text = message.get("text")
    body = text.get("body") if isinstance(text, dict) else None
    button = message.get("button")
    if body is None and isinstance(button, dict):
        body = button.get("text")
    stop = is_stop(body if isinstance(body, str) else None)
    context = message.get("context")
    replied_to = _text(context.get("id")) if isinstance(context, dict) else None
    return Receipt(
        event_key=_key("whatsapp", "in", wamid),
        source="whatsapp_webhook",
        provider="whatsapp",
        event_type="unsubscribed" if stop else "replied",
        channel="whatsapp",
        occurred_at=_epoch(message.get("timestamp"), now),
        provider_message_id=replied_to,  # the message replied to (ours), if quoted
        recipient=_phone(_text(message.get("from"))),
        detail="stop word" if stop else _text(message.get("type")),
        suppress=OPT_OUT["whatsapp"] if stop else None,
        inbound=True,
    )


# --- Google RBM (Pub/Sub push) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PubSub:
    """A Pub/Sub push envelope, opened: the decoded `message.data` is what RBM signs."""

    data: bytes
    publish_time: str | None
    message_id: str | None


def open_pubsub(body: bytes) -> PubSub:
    envelope = _json(body)
    message = envelope.get("message") if isinstance(envelope, dict) else None
    raw = message.get("data") if isinstance(message, dict) else None
    if not isinstance(raw, str):
        raise ParseError("expected a Pub/Sub envelope with message.data")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ParseError("message.data is not base64") from exc
    return PubSub(
        data,
        _text(message.get("publishTime") or message.get("publish_time")),
        _text(message.get("messageId") or message.get("message_id")),
    )


RBM_EVENTS = {
    "DELIVERED": "delivered",
    "READ": "read",
    # RBM gave up on an offline device: the message will never arrive (SMS fallback time).
    "TTL_EXPIRATION_REVOKED": "failed",
}


def parse_rbm(message: PubSub, now: dt.datetime) -> list[Receipt]:
    """One RBM event (delivery receipt, read, or a user message) per Pub/Sub push."""
    event = _json(message.data)
    if not isinstance(event, dict):
        raise ParseError("message.data is not a JSON object")
    occurred = _iso(event.get("sendTime") or message.publish_time, now)
    sender = _phone(_text(event.get("senderPhoneNumber")))
    event_id, message_id = _text(event.get("eventId")), _text(event.get("messageId"))
    kind_raw = _text(event.get("eventType"))
    if kind_raw is not None:
        kind = RBM_EVENTS.get(kind_raw)
        if kind is None:
            return []  # IS_TYPING and friends
        if event_id is None:
            _skip("rbm", "event without eventId")
            return []
        return [
            Receipt(
                event_key=_key("rbm", event_id),
                source="rbm_webhook",
                provider="rbm",
                event_type=kind,
                channel="rcs",
                occurred_at=occurred,
                ref=message_id,  # our messageId: the ref itself
                provider_message_id=message_id,
                recipient=sender,
                error_code=kind_raw if kind == "failed" else None,
                detail="ttl expired" if kind_raw == "TTL_EXPIRATION_REVOKED" else None,
            )
        ]
    text = event.get("text")
    suggestion = event.get("suggestionResponse")
    if text is None and not isinstance(suggestion, dict):
        return []  # nothing we understand (e.g. a location share)
    if event_id is None and message_id is None:
        _skip("rbm", "user message without eventId or messageId")
        return []
    stop = is_stop(text if isinstance(text, str) else None)
    return [
        Receipt(
            event_key=_key("rbm", event_id) if event_id else _key("rbm", "in", message_id),
            source="rbm_webhook",
            provider="rbm",
            event_type="unsubscribed" if stop else "replied",
            channel="rcs",
            occurred_at=occurred,
            recipient=sender,
            detail="stop word" if stop else ("suggestion" if text is None else "text"),
            suppress=OPT_OUT["rcs"] if stop else None,
            inbound=True,
        )
    ]


# --- SendGrid event webhook ----------------------------------------------------------------

SENDGRID_EVENTS = {
    "processed": "accepted",
    "deferred": "accepted",
    "delivered": "delivered",
    "open": "opened",
    "click": "clicked",
    "bounce": "bounced",
    "dropped": "failed",
    "spamreport": "unsubscribed",
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
}
# SendGrid drops mail to addresses on its own suppression lists: mirror them.
_DROPPED = {
    "bounced address": "hard bounce",
    "unsubscribed address": OPT_OUT["email"],
    "spam reporting address": "spam report",
}


def parse_sendgrid(body: bytes, now: dt.datetime) -> list[Receipt]:
    """SendGrid's batch (a JSON array of up to ~1,000 events)."""
    data = _json(body)
    if not isinstance(data, list):
        raise ParseError("expected a JSON array of events")
    out: list[Receipt] = []
    for item in data:
        if not isinstance(item, dict):
            _skip("sendgrid", "event is not an object")
            continue
        receipt = _sendgrid_event(item, now)
        if receipt is not None:
            out.append(receipt)
    return out


def _sendgrid_event(item: dict[str, Any], now: dt.datetime) -> Receipt | None:
    event_id, raw = _text(item.get("sg_event_id")), _text(item.get("event"))
    if event_id is None or raw is None:
        _skip("sendgrid", "event without sg_event_id or event")
        return None
    kind = SENDGRID_EVENTS.get(raw)
    if kind is None:
        return None  # group_resubscribe and anything new: no effect here
    bounce_type = _text(item.get("type"))
    if raw == "bounce" and bounce_type == "blocked":
        kind = "failed"  # blocked: this message refused, the address is fine
    reason = scrub(item.get("reason") or item.get("response"))
    suppress = None
    if kind == "bounced":
        suppress = "hard bounce"
    elif raw == "spamreport":
        suppress = "spam report"
    elif kind == "unsubscribed":
        suppress = OPT_OUT["email"]
    elif raw == "dropped" and reason:
        suppress = _DROPPED.get(reason.strip().lower())
    detail = reason
    if raw == "click":
        detail = _bare_url(item.get("url"))
    elif raw in ("deferred", "spamreport", "group_unsubscribe") or bounce_type == "blocked":
        detail = raw if not reason else f"{raw}: {reason}"
    elif raw == "open" and item.get("sg_machine_open"):
        detail = "machine open"
    sg_message_id = _text(item.get("sg_message_id"))
    return Receipt(
        event_key=_key("sendgrid", event_id),
        source="sendgrid_webhook",
        provider="sendgrid",
        event_type=kind,
        channel="email",
        occurred_at=_epoch(item.get("timestamp"), now),
        ref=_text(item.get("cadencia_ref")),
        # Events carry "<X-Message-Id>.<filter>..."; the touch stored the X-Message-Id.
        provider_message_id=sg_message_id.split(".", 1)[0] if sg_message_id else None,
        recipient=_text(item.get("email")),
        error_code=_text(item.get("status")) if kind in FAILURES else None,
        detail=detail,
        suppress=suppress,
    )


def _bare_url(url: Any) -> str | None:
    """A clicked link without its query (which may carry ids or tokens)."""
    if not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:300]


# --- Twilio (SMS, WhatsApp via Twilio, Voice) ----------------------------------------------

TWILIO_MESSAGE = {
    "accepted": "accepted",
    "scheduled": "accepted",
    "queued": "accepted",
    "sending": "accepted",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
TWILIO_CALL = {
    "queued": "accepted",
    "initiated": "sent",
    "ringing": "sent",
    "in-progress": "delivered",  # answered: the reminder reached someone
    "completed": "delivered",
    "busy": "failed",
    "no-answer": "failed",
    "failed": "failed",
    "canceled": "failed",
}


def parse_twilio(params: Mapping[str, str], ref: str | None, now: dt.datetime) -> list[Receipt]:
    """A status callback (message or call) or an inbound SMS; `ref` comes from our
    StatusCallback URL's query, since Twilio has no echo field."""
    call_sid, call_status = params.get("CallSid"), params.get("CallStatus")
    if call_sid and call_status:
        return _twilio_call(params, call_sid, call_status, ref, now)
    sid = params.get("MessageSid") or params.get("SmsSid")
    status = params.get("MessageStatus") or params.get("SmsStatus")
    if not sid:
        raise ParseError("expected MessageSid/MessageStatus, CallSid/CallStatus or an inbound SMS")
    if status == "received" or (status is None and "Body" in params):
        return [_twilio_inbound(params, sid, now)]
    if status is None:
        raise ParseError("MessageSid without MessageStatus")
    kind = TWILIO_MESSAGE.get(status)
    if kind is None:
        return []
    to = params.get("To") or ""
    channel = "whatsapp" if to.startswith("whatsapp:") else "sms"
    code = (params.get("ErrorCode") or "").strip() or None
    suppress = OPT_OUT["sms"] if kind == "failed" and code == TWILIO_STOP else None
    return [
        Receipt(
            event_key=_key("twilio", sid, status),
            source="twilio_webhook",
            provider="twilio",
            event_type=kind,
            channel=channel,
            occurred_at=now,  # message callbacks carry no timestamp
            ref=ref,
            provider_message_id=sid,
            recipient=_phone(to),
            error_code=code if kind == "failed" else None,
            detail=status if status != kind else None,
            suppress=suppress if channel == "sms" else None,
        )
    ]


def _twilio_call(
    params: Mapping[str, str], sid: str, status: str, ref: str | None, now: dt.datetime
) -> list[Receipt]:
    kind = TWILIO_CALL.get(status)
    if kind is None:
        return []
    code = (params.get("ErrorCode") or "").strip() or None
    return [
        Receipt(
            event_key=_key("twilio", sid, status),
            source="twilio_webhook",
            provider="twilio",
            event_type=kind,
            channel="voice",
            occurred_at=_rfc2822(params["Timestamp"], now) if params.get("Timestamp") else now,
            ref=ref,
            provider_message_id=sid,
            recipient=_phone(params.get("To")),
            error_code=code,
            detail=status if status != kind else None,
        )
    ]


def _twilio_inbound(params: Mapping[str, str], sid: str, now: dt.datetime) -> Receipt:
    sender = params.get("From") or ""
    channel = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    # Advanced Opt-Out tells us itself; otherwise read the keyword.
    stop = params.get("OptOutType", "").upper() == "STOP" or is_stop(params.get("Body"))
    return Receipt(
        event_key=_key("twilio", "in", sid),
        source="twilio_webhook",
        provider="twilio",
        event_type="unsubscribed" if stop else "replied",
        channel=channel,
        occurred_at=now,
        recipient=_phone(sender),
        detail="stop word" if stop else None,
        suppress=OPT_OUT[channel] if stop else None,
        inbound=True,
    )


# --- our own one-click unsubscribe ---------------------------------------------------------


def unsubscribe_receipt(ref: str, channel: str, now: dt.datetime) -> Receipt:
    """RFC 8058 one-click unsubscribe from the link in our message `ref` (once per message)."""
    return Receipt(
        event_key=_key("unsubscribe", ref),
        source="unsubscribe_link",
        provider="cadencia",
        event_type="unsubscribed",
        channel=channel,
        occurred_at=now,
        ref=ref,
        detail="one-click unsubscribe",
        suppress=OPT_OUT.get(channel, f"unsubscribed from {channel}"),
    )
