"""The webhook receiver end to end: signed requests in, ledger rows out.

Each provider: a signed request is recorded and moves its touch; the same request again changes
nothing; unsigned (401), wrongly signed or tampered (403) requests change nothing. Plus the
reconciliation of `unknown` touches, failures (suppression + fallback, once), out-of-order
receipts, the one-click unsubscribe, and one request through a real uvicorn server.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
from anyio.from_thread import start_blocking_portal
from cryptography.hazmat.primitives.asymmetric import ec

from config.settings import Settings
from tasks.deliver.receipts import parse_sendgrid
from tasks.deliver.signatures import (
    meta_signature,
    rbm_signature,
    sendgrid_keypair,
    sendgrid_sign,
    twilio_signature,
)
from tasks.deliver.webhooks import (
    create_webhook_app,
    one_click,
    public_url,
    start_webhooks_in_thread,
)
from tasks.ledger.db import dispose_engines, engine_for, migrate
from tasks.ledger.models import Contact, Event, Suppression, Touch
from tasks.ledger.outreach import received_events
from tasks.ledger.receipts import record_receipts

META = "sandbox-meta-secret"
RBM = "sandbox-rbm-token"
TWILIO = "sandbox"
T0 = 1772445600  # 2026-03-02 10:00 UTC
AS_OF = dt.date(2026, 3, 2)


def ref(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"cadencia-test/{name}"))


CONTACTS = [
    {
        "golden_id": "g1",
        "account_id": "A1",
        "email": "ada@example.com",
        "mobile_e164": "+34600000001",
        "phone_e164": None,
    },
    {
        "golden_id": "g2",
        "account_id": "A2",
        "email": "bob@example.com",
        "mobile_e164": "+34600000002",
        "phone_e164": "+34910000002",
    },
]
# name: (channel, status, provider_message_id, golden_id, fallback_channel)
TOUCHES = {
    "wa": ("whatsapp", "sent", "wamid.WA1", "g1", "sms"),
    "unknown": ("whatsapp", "unknown", None, "g1", None),
    "claimed": ("whatsapp", "claimed", None, "g2", None),
    "email": ("email", "sent", "XMSG1", "g2", None),
    "sms": ("sms", "sent", "SM1", "g1", None),
    "rcs": ("rcs", "sent", ref("rcs"), "g1", "sms"),
    "voice": ("voice", "sent", "CA1", "g2", None),
}


def _seed(engine: sa.Engine) -> None:
    send_at = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    rows = [
        {
            "idempotency_key": f"case-1|step-1|{name}",
            "message_ref": ref(name),
            "channel": ch,
            "status": status,
            "provider_message_id": pid,
            "golden_id": golden,
            "account_id": "A1" if golden == "g1" else "A2",
            "fallback_channel": fallback,
            "case_key": "A1|collections",
            "step": "reminder_1",
            "template": "reminder",
            "purpose": "service",
            "send_at": send_at,
            "as_of": AS_OF,
            "claimed_at": send_at,
            "context": {"invoices": 2},
        }
        for name, (ch, status, pid, golden, fallback) in TOUCHES.items()
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(Contact.__table__), CONTACTS)
        conn.execute(sa.insert(Touch.__table__), rows)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated and seeded ledger, copied per test (migrating each time costs ~0.3 s)."""
    path = tmp_path_factory.mktemp("template") / "ledger.db"
    url = f"sqlite:///{path}"
    migrate(url)
    _seed(engine_for(url))
    dispose_engines()
    return path


@pytest.fixture
def url(template_db: Path, tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "ledger.db"
    shutil.copy(template_db, path)
    yield f"sqlite:///{path}"
    dispose_engines()


@pytest.fixture(scope="module")
def sg_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    return sendgrid_keypair()


def _settings(tmp_path: Path, sg_public: str | None, **more: Any) -> Settings:
    values = {
        "state_dir": tmp_path,
        "provider_mode": "sandbox",
        "meta_verify_token": "verify-me",
        "sendgrid_webhook_public_key": sg_public,
    }
    return Settings(**(values | more))


class AppClient:
    """Synchronous calls into the ASGI app: httpx's ASGITransport on a background event loop
    (Starlette's TestClient deprecates httpx)."""

    def __init__(self, portal: Any, client: httpx.AsyncClient) -> None:
        self._portal, self._client = portal, client

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(partial(self._client.get, path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(partial(self._client.post, path, **kwargs))


@contextmanager
def serve(app: Any) -> Iterator[AppClient]:
    transport = httpx.ASGITransport(app=app)
    with start_blocking_portal() as portal:
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        try:
            yield AppClient(portal, client)
        finally:
            portal.call(client.aclose)


@pytest.fixture
def client(url: str, tmp_path: Path, sg_keys: tuple[Any, str]) -> Iterator[AppClient]:
    with serve(create_webhook_app(_settings(tmp_path, sg_keys[1]), url)) as test_client:
        yield test_client


# --- signed requests ---------------------------------------------------------------------------


def wa_status(wamid: str, status: str, at: int = T0, **more: Any) -> dict[str, Any]:
    return {
        "id": wamid,
        "status": status,
        "timestamp": str(at),
        "recipient_id": "34600000001",
        **more,
    }


def wa_body(statuses: Sequence[dict] = (), messages: Sequence[dict] = ()) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "statuses": list(statuses),
        "messages": list(messages),
    }
    entry = {"id": "WABA", "changes": [{"field": "messages", "value": value}]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


def post_wa(client: AppClient, body: bytes, secret: str | None = META) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-hub-signature-256"] = meta_signature(secret, body)
    return client.post("/webhooks/whatsapp", content=body, headers=headers)


def rbm_body(event: dict[str, Any]) -> tuple[bytes, bytes]:
    data = json.dumps(event).encode()
    message = {
        "data": base64.b64encode(data).decode(),
        "messageId": "1",
        "publishTime": "2026-03-02T10:00:00Z",
    }
    return json.dumps({"message": message, "subscription": "s"}).encode(), data


def post_rbm(client: AppClient, event: dict[str, Any], token: str | None = RBM) -> httpx.Response:
    body, data = rbm_body(event)
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["x-goog-signature"] = rbm_signature(token, data)
    return client.post("/webhooks/rbm", content=body, headers=headers)


def sg_event(name: str, event_id: str, **more: Any) -> dict[str, Any]:
    return {
        "email": "bob@example.com",
        "timestamp": T0,
        "event": name,
        "sg_event_id": event_id,
        "sg_message_id": "XMSG1.filterdrecv-1.0",
        **more,
    }


def post_sg(client: AppClient, body: bytes, key: ec.EllipticCurvePrivateKey | None) -> Any:
    headers = {"content-type": "application/json"}
    if key is not None:
        stamp = str(T0)
        headers["x-twilio-email-event-webhook-timestamp"] = stamp
        headers["x-twilio-email-event-webhook-signature"] = sendgrid_sign(key, stamp, body)
    return client.post("/webhooks/sendgrid", content=body, headers=headers)


def post_twilio(
    client: AppClient,
    params: dict[str, str],
    query: str = "",
    token: str | None = TWILIO,
    signed_url: str | None = None,
) -> httpx.Response:
    path = "/webhooks/twilio" + (f"?{query}" if query else "")
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if token is not None:
        headers["x-twilio-signature"] = twilio_signature(
            token, signed_url or f"http://testserver{path}", params
        )
    return client.post(path, content=urlencode(params).encode(), headers=headers)


# --- ledger views ------------------------------------------------------------------------------


def touch(url: str, name: str) -> sa.RowMapping:
    t = Touch.__table__
    with engine_for(url).connect() as conn:
        return conn.execute(sa.select(t).where(t.c.message_ref == ref(name))).mappings().one()


def events(url: str) -> list[sa.RowMapping]:
    e = Event.__table__
    with engine_for(url).connect() as conn:
        return list(conn.execute(sa.select(e).order_by(e.c.id)).mappings())


def suppressions(url: str) -> set[tuple[str, str, str]]:
    s = Suppression.__table__
    with engine_for(url).connect() as conn:
        return set(conn.execute(sa.select(s.c.golden_id, s.c.channel, s.c.reason)).tuples())


def snapshot(url: str) -> tuple[Any, ...]:
    """Everything a webhook may change."""
    t = Touch.__table__
    cols = [t.c.id, t.c.status, t.c.delivery_status, t.c.delivery_at, t.c.provider_message_id]
    with engine_for(url).connect() as conn:
        touches = conn.execute(sa.select(*cols).order_by(t.c.id)).all()
    return len(events(url)), touches, suppressions(url)


# --- WhatsApp ----------------------------------------------------------------------------------


def test_whatsapp_status_recorded_once(client: AppClient, url: str) -> None:
    body = wa_body([wa_status("wamid.WA1", "delivered", biz_opaque_callback_data=ref("wa"))])
    answer = post_wa(client, body)
    assert answer.status_code == 200 and answer.json() == {"received": 1, "new": 1}
    (event,) = events(url)
    assert (event["event_type"], event["channel"], event["golden_id"], event["account_id"]) == (
        "delivered",
        "whatsapp",
        "g1",
        "A1",
    )
    assert event["touch_id"] == touch(url, "wa")["id"]
    assert event["occurred_at"] == dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    assert "34600000001" not in json.dumps(event["payload"])
    row = touch(url, "wa")
    assert (row["delivery_status"], row["status"]) == ("delivered", "sent")

    before = snapshot(url)
    again = post_wa(client, body)
    assert again.status_code == 200 and again.json() == {"received": 1, "new": 0}
    assert snapshot(url) == before


def test_whatsapp_unsigned_or_forged_changes_nothing(client: AppClient, url: str) -> None:
    body = wa_body([wa_status("wamid.WA1", "read")])
    before = snapshot(url)
    assert post_wa(client, body, secret=None).status_code == 401
    assert post_wa(client, body, secret="not-the-secret").status_code == 403
    tampered = body.replace(b'"read"', b'"sent"')
    forged = client.post(
        "/webhooks/whatsapp",
        content=tampered,
        headers={"x-hub-signature-256": meta_signature(META, body)},
    )
    assert forged.status_code == 403
    assert snapshot(url) == before
    assert post_wa(client, b'{"entry": 5}').status_code == 400  # signed but malformed
    assert snapshot(url) == before


def test_meta_handshake(client: AppClient) -> None:
    ok = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    answer = client.get("/webhooks/whatsapp", params=ok)
    assert (answer.status_code, answer.text) == (200, "1158201444")
    assert (
        client.get("/webhooks/whatsapp", params=ok | {"hub.verify_token": "x"}).status_code == 403
    )
    assert client.get("/webhooks/whatsapp", params=ok | {"hub.mode": "x"}).status_code == 403


def test_unknown_and_claimed_touches_become_sent_on_evidence(client: AppClient, url: str) -> None:
    """Both in one request (one batched UPDATE); the provider id is learned from the webhook."""
    assert (touch(url, "unknown")["status"], touch(url, "claimed")["status"]) == (
        "unknown",
        "claimed",
    )
    body = wa_body(
        [
            wa_status("wamid.NEW", "delivered", biz_opaque_callback_data=ref("unknown")),
            wa_status("wamid.NEW2", "sent", at=T0 + 5, biz_opaque_callback_data=ref("claimed")),
        ]
    )
    assert post_wa(client, body).json() == {"received": 2, "new": 2}
    row = touch(url, "unknown")
    assert (row["status"], row["provider_message_id"], row["provider"]) == (
        "sent",
        "wamid.NEW",
        "whatsapp",
    )
    assert row["delivery_status"] == "delivered" and row["error"] is None
    assert row["sent_at"] == dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
    claimed = touch(url, "claimed")
    assert (claimed["status"], claimed["claim_token"], claimed["delivery_status"]) == (
        "sent",
        None,
        "sent",
    )
    assert touch(url, "wa")["status"] == "sent"  # settled touches are left alone


def test_whatsapp_undeliverable_suppresses_and_falls_back_once(client: AppClient, url: str) -> None:
    error = {"code": 131026, "title": "Message undeliverable"}
    failed = wa_status("wamid.WA1", "failed", errors=[error])
    for _ in range(2):
        assert post_wa(client, wa_body([failed])).status_code == 200
    assert ("g1", "whatsapp", "WhatsApp undeliverable") in suppressions(url)
    assert touch(url, "wa")["delivery_status"] == "failed"
    t = Touch.__table__
    with engine_for(url).connect() as conn:
        fallbacks = conn.execute(sa.select(t).where(t.c.fallback_of.is_not(None))).mappings().all()
    (fallback,) = fallbacks
    assert (fallback["channel"], fallback["status"], fallback["step"]) == (
        "sms",
        "planned",
        "reminder_1",
    )
    assert fallback["idempotency_key"] == "case-1|step-1|wa|fallback:sms"
    assert fallback["fallback_of"] == touch(url, "wa")["id"]
    assert fallback["context"] == {"invoices": 2}


def test_out_of_order_never_downgrades(client: AppClient, url: str) -> None:
    read = wa_status("wamid.WA1", "read", at=T0 + 60)
    delivered = wa_status("wamid.WA1", "delivered", at=T0 + 30)
    sent = wa_status("wamid.WA1", "sent", at=T0)
    post_wa(client, wa_body([read]))
    post_wa(client, wa_body([delivered, sent]))
    row = touch(url, "wa")
    assert row["delivery_status"] == "read"
    assert row["delivery_at"] == dt.datetime(2026, 3, 2, 10, 1, tzinfo=dt.UTC)
    assert len(events(url)) == 3  # every event is kept, only the touch stays put
    post_wa(client, wa_body([wa_status("wamid.WA1", "failed", errors=[{"code": 131000}])]))
    post_wa(client, wa_body([wa_status("wamid.WA1", "read", at=T0 + 90)]))  # a late duplicate
    assert touch(url, "wa")["delivery_status"] == "failed"  # failures always win


def test_whatsapp_reply_feeds_the_next_run(client: AppClient, url: str) -> None:
    reply = {
        "from": "34600000001",
        "id": "wamid.IN1",
        "timestamp": str(T0),
        "type": "text",
        "text": {"body": "Pagaré el viernes"},
        "context": {"id": "wamid.WA1"},
    }
    stranger = reply | {"from": "34699999999", "id": "wamid.IN2", "context": None}
    assert post_wa(client, wa_body(messages=[reply, stranger])).json()["new"] == 2
    assert touch(url, "wa")["delivery_status"] == "replied"
    frame = received_events(engine_for(url), AS_OF)
    assert frame[["event_type", "channel", "golden_id", "account_id"]].values.tolist() == [
        ["replied", "whatsapp", "g1", "A1"]
    ]
    assert "Pagaré" not in json.dumps([e["payload"] for e in events(url)])


# --- RBM ---------------------------------------------------------------------------------------


def test_rbm(client: AppClient, url: str) -> None:
    delivered = {
        "senderPhoneNumber": "+34600000001",
        "eventType": "DELIVERED",
        "eventId": "E1",
        "messageId": ref("rcs"),
        "sendTime": "2026-03-02T10:00:01Z",
        "agentId": "a",
    }
    before = snapshot(url)
    assert post_rbm(client, delivered, token=None).status_code == 401
    assert post_rbm(client, delivered, token="wrong").status_code == 403
    body, data = rbm_body(delivered)
    tampered = body.replace(b'"1"', b'"2"')  # envelope changes are not signed...
    signed = {"x-goog-signature": rbm_signature(RBM, data)}
    assert client.post("/webhooks/rbm", content=tampered, headers=signed).status_code == 200
    forged, _ = rbm_body(delivered | {"eventType": "READ"})  # ...but the data is
    assert client.post("/webhooks/rbm", content=forged, headers=signed).status_code == 403
    assert post_rbm(client, delivered).json() == {"received": 1, "new": 0}
    assert snapshot(url) != before
    assert touch(url, "rcs")["delivery_status"] == "delivered"
    (event,) = events(url)
    assert (event["event_type"], event["channel"], event["golden_id"]) == ("delivered", "rcs", "g1")
    bad = client.post("/webhooks/rbm", content=b'{"message": {"data": "%%"}}', headers=signed)
    assert bad.status_code == 400


def test_rbm_expiry_falls_back_and_webhook_verification(client: AppClient, url: str) -> None:
    expired = {"eventType": "TTL_EXPIRATION_REVOKED", "eventId": "E9", "messageId": ref("rcs")}
    assert post_rbm(client, expired).status_code == 200
    # The same failure reported again under another event id: still one fallback touch.
    assert post_rbm(client, expired | {"eventId": "E10"}).json() == {"received": 1, "new": 1}
    t = Touch.__table__
    with engine_for(url).connect() as conn:
        channels = conn.execute(sa.select(t.c.channel).where(t.c.fallback_of.is_not(None)))
        assert channels.scalars().all() == ["sms"]
    handshake = json.dumps({"clientToken": RBM, "secret": "s3cr3t"}).encode()
    answer = client.post("/webhooks/rbm", content=handshake)
    assert (answer.status_code, answer.text) == (200, "s3cr3t")
    wrong = json.dumps({"clientToken": "x", "secret": "s3cr3t"}).encode()
    assert client.post("/webhooks/rbm", content=wrong).status_code == 403


# --- SendGrid ----------------------------------------------------------------------------------


def test_sendgrid_batch(
    client: AppClient, url: str, sg_keys: tuple[Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    batch = [
        sg_event("delivered", "ev1"),
        sg_event("open", "ev2", timestamp=T0 + 60),
        sg_event("click", "ev3", timestamp=T0 + 120, url="https://pay.example.com/A2?t=x"),
        sg_event(
            "bounce",
            "ev4",
            email="carol@example.com",
            sg_message_id="OTHER.x",
            type="bounce",
            reason="550 5.1.1 <carol@example.com> unknown",
        ),
    ]
    body = json.dumps(batch).encode() + b"\r\n"
    before = snapshot(url)
    assert post_sg(client, body, key=None).status_code == 401
    other_key, _ = sendgrid_keypair()
    assert post_sg(client, body, key=other_key).status_code == 403
    stamp = str(T0)
    tampered = client.post(
        "/webhooks/sendgrid",
        content=body.replace(b"ev1", b"ev0"),
        headers={
            "x-twilio-email-event-webhook-timestamp": stamp,
            "x-twilio-email-event-webhook-signature": sendgrid_sign(sg_keys[0], stamp, body),
        },
    )
    assert tampered.status_code == 403
    assert snapshot(url) == before

    with caplog.at_level(logging.INFO, logger="cadencia.webhooks"):
        answer = post_sg(client, body, key=sg_keys[0])
    assert answer.json() == {"received": 4, "new": 4}
    row = touch(url, "email")  # matched by the X-Message-Id prefix of sg_message_id
    assert (row["delivery_status"], row["delivery_at"]) == (
        "clicked",
        dt.datetime(2026, 3, 2, 10, 2, tzinfo=dt.UTC),
    )
    linked = [(e["event_type"], e["golden_id"]) for e in events(url)]
    assert linked == [("delivered", "g2"), ("opened", "g2"), ("clicked", "g2"), ("bounced", None)]
    assert suppressions(url) == set()  # carol is nobody we know
    assert "carol@example.com" not in caplog.text and "bob@example.com" not in caplog.text

    before = snapshot(url)
    assert post_sg(client, body, key=sg_keys[0]).json() == {"received": 4, "new": 0}
    assert snapshot(url) == before
    assert post_sg(client, b'{"not": "a list"}', key=sg_keys[0]).status_code == 400


def test_sendgrid_bounce_and_unsubscribe_suppress(
    client: AppClient, url: str, sg_keys: tuple[Any, str]
) -> None:
    batch = [
        sg_event("bounce", "b1", type="bounce", cadencia_ref=ref("email"), sg_message_id=None),
        sg_event("spamreport", "s1"),
    ]
    assert post_sg(client, json.dumps(batch).encode(), key=sg_keys[0]).status_code == 200
    assert suppressions(url) == {("g2", "email", "hard bounce")}  # first reason wins
    assert touch(url, "email")["delivery_status"] == "bounced"


def test_sendgrid_without_key_is_refused(
    url: str, tmp_path: Path, sg_keys: tuple[Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    app = create_webhook_app(_settings(tmp_path, None), url)
    body = json.dumps([sg_event("delivered", "ev1")]).encode()
    with serve(app) as client, caplog.at_level(logging.WARNING, "cadencia.webhooks"):
        assert post_sg(client, body, key=sg_keys[0]).status_code == 403
    assert "CADENCIA_SENDGRID_WEBHOOK_PUBLIC_KEY" in caplog.text
    assert events(url) == []


# --- Twilio ------------------------------------------------------------------------------------


def test_twilio_status_callbacks(client: AppClient, url: str) -> None:
    params = {
        "MessageSid": "SM1",
        "MessageStatus": "delivered",
        "To": "+34600000001",
        "From": "+34910000000",
        "AccountSid": "AC0",
    }
    query = f"ref={ref('sms')}"
    before = snapshot(url)
    assert post_twilio(client, params, query, token=None).status_code == 401
    assert post_twilio(client, params, query, token="wrong").status_code == 403
    no_ref = post_twilio(client, params, query, signed_url="http://testserver/webhooks/twilio")
    assert no_ref.status_code == 403  # the query is part of what Twilio signs
    assert snapshot(url) == before

    answer = post_twilio(client, params, query)
    assert answer.status_code == 200 and "<Response>" in answer.text
    assert touch(url, "sms")["delivery_status"] == "delivered"
    before = snapshot(url)
    assert post_twilio(client, params, query).status_code == 200
    assert snapshot(url) == before

    call = {
        "CallSid": "CA1",
        "CallStatus": "completed",
        "Timestamp": "Mon, 02 Mar 2026 10:05:00 +0000",
        "To": "+34910000002",
    }
    assert post_twilio(client, call, f"ref={ref('voice')}").status_code == 200
    row = touch(url, "voice")
    assert (row["delivery_status"], row["delivery_at"]) == (
        "delivered",
        dt.datetime(2026, 3, 2, 10, 5, tzinfo=dt.UTC),
    )

    stop = {
        "MessageSid": "SM2",
        "MessageStatus": "undelivered",
        "ErrorCode": "21610",
        "To": "+34600000002",
    }
    assert post_twilio(client, stop).status_code == 200  # no touch: found by number
    assert ("g2", "sms", "SMS STOP") in suppressions(url)


def test_twilio_inbound_stop(client: AppClient, url: str, caplog: pytest.LogCaptureFixture) -> None:
    inbound = {
        "MessageSid": "SMin1",
        "SmsStatus": "received",
        "From": "+34600000001",
        "To": "+34910000000",
        "Body": "STOP",
    }
    with caplog.at_level(logging.INFO, logger="cadencia.webhooks"):
        assert post_twilio(client, inbound).status_code == 200
        assert post_twilio(client, inbound).status_code == 200
    assert suppressions(url) == {("g1", "sms", "SMS STOP")}
    (event,) = events(url)
    assert (event["event_type"], event["channel"], event["golden_id"]) == (
        "unsubscribed",
        "sms",
        "g1",
    )
    assert "600000001" not in caplog.text


def test_twilio_signature_uses_public_url(url: str, tmp_path: Path) -> None:
    hooks = "https://hooks.example.com"
    app = create_webhook_app(_settings(tmp_path, None, webhooks_url=hooks), url)
    params = {"MessageSid": "SM1", "MessageStatus": "sent"}
    query = f"ref={ref('sms')}"
    public = f"{hooks}/webhooks/twilio?{query}"
    with serve(app) as client:
        assert post_twilio(client, params, query).status_code == 403  # signed for testserver
        assert post_twilio(client, params, query, signed_url=public).status_code == 200
    assert touch(url, "sms")["delivery_status"] == "sent"


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://h.example.com", "https://h.example.com/webhooks/twilio?ref=1"),
        ("https://h.example.com/webhooks/", "https://h.example.com/webhooks/twilio?ref=1"),
        ("https://h.example.com/cadencia", "https://h.example.com/cadencia/webhooks/twilio?ref=1"),
        (None, "http://testserver/webhooks/twilio?ref=1"),
    ],
)
def test_public_url(base: str | None, expected: str) -> None:
    from starlette.requests import Request

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/webhooks/twilio",
        "query_string": b"ref=1",
        "headers": [(b"host", b"testserver")],
        "scheme": "http",
    }
    assert public_url(Request(scope), base) == expected


# --- unsubscribe, health, real server ----------------------------------------------------------


def test_one_click_unsubscribe(client: AppClient, url: str) -> None:
    page = client.get(f"/unsubscribe/{ref('email')}")
    assert page.status_code == 200 and 'name="List-Unsubscribe"' in page.text
    assert events(url) == []  # a GET (link scanners) changes nothing
    one_click = {
        "content": b"List-Unsubscribe=One-Click",
        "headers": {"content-type": "application/x-www-form-urlencoded"},
    }
    assert client.post(f"/unsubscribe/{ref('email')}", **one_click).status_code == 200
    assert client.post(f"/unsubscribe/{ref('email')}", **one_click).status_code == 200
    assert suppressions(url) == {("g2", "email", "unsubscribed from email")}
    (event,) = events(url)
    assert (event["event_type"], event["channel"], event["golden_id"], event["account_id"]) == (
        "unsubscribed",
        "email",
        "g2",
        "A2",
    )
    assert client.post(f"/unsubscribe/{ref('email')}", content=b"").status_code == 400
    assert client.get(f"/unsubscribe/{ref('nobody')}").status_code == 404
    assert client.post(f"/unsubscribe/{ref('nobody')}", **one_click).status_code == 404
    assert client.get("/unsubscribe/not-a-uuid").status_code == 404


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click", True),
        ("application/x-www-form-urlencoded", b"List-Unsubscribe=Other", False),
        (
            "multipart/form-data; boundary=XyZ",
            b'--XyZ\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
            b"One-Click\r\n--XyZ--\r\n",
            True,
        ),
        ("multipart/form-data; boundary=XyZ", b"garbage", False),
    ],
)
def test_one_click_body(content_type: str, body: bytes, expected: bool) -> None:
    assert one_click(body, content_type) is expected


def test_health(client: AppClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_real_server(url: str, tmp_path: Path) -> None:
    with start_webhooks_in_thread(_settings(tmp_path, None), url) as server:
        body = wa_body([wa_status("wamid.WA1", "read")])
        answer = httpx.post(
            f"{server.url}/webhooks/whatsapp",
            content=body,
            headers={"x-hub-signature-256": meta_signature(META, body)},
        )
        assert answer.status_code == 200
        assert httpx.get(f"{server.url}/health").status_code == 200
    assert touch(url, "wa")["delivery_status"] == "read"


# --- PostgreSQL --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ledger_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_concurrent_redelivery_on_postgres(ledger_url: str) -> None:
    """The same batch delivered twice at once: one set of events, one fallback, one suppression."""
    migrate(ledger_url)
    engine = engine_for(ledger_url)
    _seed(engine)
    batch = [
        sg_event("delivered", "ev1"),
        sg_event("bounce", "ev2", type="bounce"),
    ]
    receipts = parse_sendgrid(json.dumps(batch).encode(), dt.datetime.now(dt.UTC))
    with engine.begin() as conn:  # give the email touch a fallback to create
        t = Touch.__table__
        conn.execute(
            sa.update(t).where(t.c.message_ref == ref("email")).values(fallback_channel="sms")
        )
    start = threading.Barrier(2)
    results = []

    def deliver() -> None:
        start.wait()
        results.append(record_receipts(engine, receipts))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.new for r in results) == [0, 2]
    assert len(events(ledger_url)) == 2
    assert suppressions(ledger_url) == {("g2", "email", "hard bounce")}
    with engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).where(Touch.__table__.c.fallback_of.is_not(None))
        ).scalar_one()
    assert count == 1
    assert touch(ledger_url, "email")["delivery_status"] == "bounced"
    assert record_receipts(engine, receipts).new == 0
