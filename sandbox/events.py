"""What each provider's status webhooks look like, and which ones a message gets.

`Plans.steps` decides a message's whole story when it is accepted (engagement drawn per ref
from the seed, late permanent failures) and returns one builder per webhook; each builder
makes and signs its body when it is posted, so timestamps and signatures are those of the
moment of sending, as with the real providers.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import itertools
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox.faults import Faults, chance
from sandbox.providers.base import Message
from sandbox.providers.rbm import rfc3339
from tasks.deliver.signatures import (
    meta_signature,
    rbm_signature,
    sendgrid_sign,
    twilio_signature,
)

# One webhook: (url, raw body, headers), built when it is sent.
Step = Callable[[], tuple[str, bytes, dict[str, str]]]

WABA_ID = "102290129340398"
DISPLAY_PHONE = "15550783881"
REPLY_TEXT = "Thanks, I will pay this week"
RBM_SUBSCRIPTION = "projects/rbm-sandbox/subscriptions/rbm-agent-events"
URL_IN_TEXT = re.compile(r"https?://[^\s\"'<>]+")
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    url: str | None  # base URL: WhatsApp posts to {url}/whatsapp, RBM /rbm, SendGrid /sendgrid
    meta_app_secret: str
    rbm_client_token: str
    enabled: bool = True  # False: no webhook at all, Twilio's StatusCallback included


class Plans:
    def __init__(self, config: WebhookConfig, sendgrid_key: ec.EllipticCurvePrivateKey) -> None:
        self.config = config
        self.base = config.url.rstrip("/") if config.url else None
        self.sendgrid_key = sendgrid_key
        self.ids = itertools.count(1)
        self.nonce = secrets.token_hex(4)
        self.plans: dict[str, Callable[[Message, str, Faults], list[Step]]] = {
            "whatsapp": self._whatsapp,
            "rbm": self._rbm,
            "sendgrid": self._sendgrid,
            "twilio_sms": self._twilio_sms,
            "twilio_calls": self._twilio_calls,
        }

    def steps(self, provider: str, message: Message, provider_id: str, f: Faults) -> list[Step]:
        plan = self.plans.get(provider)
        return [] if plan is None else plan(message, provider_id, f)

    def _unique(self) -> str:
        return f"{self.nonce}{next(self.ids):010d}"

    # --- WhatsApp ------------------------------------------------------------------------------

    def _whatsapp(self, m: Message, wamid: str, f: Faults) -> list[Step]:
        if self.base is None:
            return []
        key, e = m.ref or wamid, f.engagement
        statuses = ["sent"]
        delivered = False
        if m.late == "failed_late":
            statuses.append("failed")
        elif chance(f.seed, key, "delivered") < e.delivered:
            delivered = True
            statuses.append("delivered")
            if chance(f.seed, key, "read") < e.read:
                statuses.append("read")
        steps: list[Step] = [partial(self._wa_status, m, wamid, s) for s in statuses]
        if delivered and chance(f.seed, key, "reply") < e.reply:
            steps.append(partial(self._wa_reply, m, wamid))
        return steps

    def _wa_post(self, m: Message, value: dict[str, Any]) -> tuple[str, bytes, dict[str, str]]:
        phone_number_id = m.extra["phone_number_id"]
        metadata = {"display_phone_number": DISPLAY_PHONE, "phone_number_id": phone_number_id}
        value = {"messaging_product": "whatsapp", "metadata": metadata, **value}
        payload = {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}],
        }
        body = orjson.dumps(payload)
        signature = meta_signature(self.config.meta_app_secret, body)
        headers = {"content-type": JSON, "x-hub-signature-256": signature}
        return f"{self.base}/whatsapp", body, headers

    def _wa_status(self, m: Message, wamid: str, status: str) -> tuple[str, bytes, dict[str, str]]:
        wa_id = m.extra["wa_id"]
        entry: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": wa_id,
        }
        if m.ref is not None:
            entry["biz_opaque_callback_data"] = m.ref
        if status in ("sent", "delivered"):
            conversation = hashlib.blake2b(wa_id.encode(), digest_size=16).hexdigest()
            entry["conversation"] = {"id": conversation, "origin": {"type": "utility"}}
            entry["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "utility"}
        if status == "failed":
            entry["errors"] = [
                {
                    "code": 131026,
                    "title": "Message undeliverable",
                    "message": "Message undeliverable",
                    "error_data": {"details": "Message Undeliverable."},
                }
            ]
        return self._wa_post(m, {"statuses": [entry]})

    def _wa_reply(self, m: Message, wamid: str) -> tuple[str, bytes, dict[str, str]]:
        wa_id = m.extra["wa_id"]
        inbound = {
            "from": wa_id,
            "id": f"wamid.IN{self._unique()}",
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": REPLY_TEXT},
            "context": {"from": DISPLAY_PHONE, "id": wamid},
        }
        contacts = [{"profile": {"name": "Sandbox Contact"}, "wa_id": wa_id}]
        return self._wa_post(m, {"contacts": contacts, "messages": [inbound]})

    # --- RBM -----------------------------------------------------------------------------------

    def _rbm(self, m: Message, name: str, f: Faults) -> list[Step]:
        if self.base is None or m.ref is None:
            return []
        e = f.engagement
        if chance(f.seed, m.ref, "delivered") >= e.delivered:
            return []
        steps: list[Step] = [partial(self._rbm_event, m, "DELIVERED")]
        if chance(f.seed, m.ref, "read") < e.read:
            steps.append(partial(self._rbm_event, m, "READ"))
        if chance(f.seed, m.ref, "reply") < e.reply:
            steps.append(partial(self._rbm_event, m, None))
        return steps

    def _rbm_event(self, m: Message, kind: str | None) -> tuple[str, bytes, dict[str, str]]:
        now = rfc3339(time.time())
        event: dict[str, Any] = {"senderPhoneNumber": m.to}
        if kind is None:  # the user's text reply
            event.update(text=REPLY_TEXT, eventId=f"MU{self._unique()}")
        else:
            event.update(eventType=kind, eventId=f"ME{self._unique()}", messageId=m.ref)
        event.update(sendTime=now, agentId=m.extra["agent_id"])
        data = orjson.dumps(event)
        pubsub_id = str(next(self.ids))
        message = {
            "data": base64.b64encode(data).decode(),
            "messageId": pubsub_id,
            "message_id": pubsub_id,
            "publishTime": now,
            "publish_time": now,
        }
        body = orjson.dumps({"message": message, "subscription": RBM_SUBSCRIPTION})
        signature = rbm_signature(self.config.rbm_client_token, data)
        return f"{self.base}/rbm", body, {"content-type": JSON, "x-goog-signature": signature}

    # --- SendGrid ------------------------------------------------------------------------------

    def _sendgrid(self, m: Message, message_id: str, f: Faults) -> list[Step]:
        if self.base is None:
            return []
        key, e = m.ref or message_id, f.engagement
        events: list[tuple[str, dict[str, Any]]] = [("processed", {})]
        if m.late == "hard_bounce":
            events.append(
                (
                    "bounce",
                    {
                        "type": "bounce",
                        "reason": "550 5.1.1 The email account that you tried to reach does "
                        "not exist.",
                        "status": "5.1.1",
                        "bounce_classification": "Invalid Address",
                    },
                )
            )
        elif chance(f.seed, key, "delivered") < e.delivered:
            events.append(("delivered", {"response": "250 2.0.0 OK"}))
            client = {"useragent": "Mozilla/5.0 (sandbox)", "ip": "127.0.0.1"}
            if chance(f.seed, key, "open") < e.open:
                events.append(("open", {**client, "sg_machine_open": False}))
            if chance(f.seed, key, "click") < e.click:
                events.append(("click", {**client, "url": _first_url(m.extra["content"])}))
        return [partial(self._sg_event, m, message_id, name, more) for name, more in events]

    def _sg_event(
        self, m: Message, message_id: str, name: str, more: dict[str, Any]
    ) -> tuple[str, bytes, dict[str, str]]:
        event: dict[str, Any] = {
            "email": m.to,
            "timestamp": int(time.time()),
            "event": name,
            "sg_event_id": base64.urlsafe_b64encode(self._unique().encode()).decode(),
            "sg_message_id": f"{message_id}.sandbox-{self._unique()}-0",
            "smtp-id": f"<{message_id}@sandbox.sendgrid.net>",
            **more,
            **{k: v for k, v in m.extra["custom_args"].items() if isinstance(v, str)},
        }
        body = orjson.dumps([event]) + b"\r\n"
        timestamp = str(int(time.time()))
        headers = {
            "content-type": JSON,
            "x-twilio-email-event-webhook-signature": sendgrid_sign(
                self.sendgrid_key, timestamp, body
            ),
            "x-twilio-email-event-webhook-timestamp": timestamp,
        }
        return f"{self.base}/sendgrid", body, headers

    # --- Twilio --------------------------------------------------------------------------------

    def _twilio_sms(self, m: Message, sid: str, f: Faults) -> list[Step]:
        if not m.extra["callback"]:
            return []
        key = m.ref or sid
        delivered = m.late != "undeliverable" and (
            chance(f.seed, key, "delivered") < f.engagement.delivered
        )
        final = ("delivered", None) if delivered else ("undelivered", "30003")
        return [
            partial(self._sms_status, m, sid, "sent", None),
            partial(self._sms_status, m, sid, *final),
        ]

    def _sms_status(
        self, m: Message, sid: str, status: str, error_code: str | None
    ) -> tuple[str, bytes, dict[str, str]]:
        form = m.request
        params = {
            "AccountSid": m.extra["account_sid"],
            "ApiVersion": "2010-04-01",
            "From": form.get("From", ""),
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": form["To"],
        }
        if form.get("MessagingServiceSid"):
            params["MessagingServiceSid"] = form["MessagingServiceSid"]
        if error_code is not None:
            params["ErrorCode"] = error_code
        return self._twilio_post(m, params)

    def _twilio_calls(self, m: Message, sid: str, f: Faults) -> list[Step]:
        if not m.extra["callback"]:
            return []
        key = m.ref or sid
        requested = set(m.request.get("StatusCallbackEvent", "").replace(",", " ").split())
        answered = m.late != "undeliverable" and (
            chance(f.seed, key, "delivered") < f.engagement.delivered
        )
        statuses = [s for s in ("initiated", "ringing") if s in requested]
        if answered and "answered" in requested:
            statuses.append("in-progress")
        if answered:
            statuses.append("completed")
        else:
            statuses.append("failed" if m.late == "undeliverable" else "no-answer")
        return [partial(self._call_status, m, sid, status, n) for n, status in enumerate(statuses)]

    def _call_status(
        self, m: Message, sid: str, status: str, sequence: int
    ) -> tuple[str, bytes, dict[str, str]]:
        params = {
            "AccountSid": m.extra["account_sid"],
            "ApiVersion": "2010-04-01",
            "CallSid": sid,
            "CallStatus": status,
            "CallbackSource": "call-progress-events",
            "Direction": "outbound-api",
            "From": m.request["From"],
            "SequenceNumber": str(sequence),
            "Timestamp": email.utils.formatdate(usegmt=True),
            "To": m.request["To"],
        }
        if status == "completed":
            params["CallDuration"] = params["Duration"] = "1"
        return self._twilio_post(m, params)

    def _twilio_post(self, m: Message, params: dict[str, str]) -> tuple[str, bytes, dict[str, str]]:
        url = m.extra["callback"]
        signature = twilio_signature(m.extra["auth_token"], url, params)
        headers = {"content-type": FORM, "x-twilio-signature": signature}
        return url, urlencode(params).encode(), headers


def _first_url(content: Any) -> str:
    """The link a click event reports: the first URL in the message, as a reader would."""
    for block in content if isinstance(content, list) else []:
        found = URL_IN_TEXT.search(block.get("value", "")) if isinstance(block, dict) else None
        if found:
            return found.group(0)
    return "https://example.com/"
