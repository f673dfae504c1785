"""The provider sandbox against a real server (uvicorn in a thread): answer and error shapes per
provider, idempotency, every fault kind, and signed webhooks arriving at a real receiver and
verified with tasks/deliver/signatures.py."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.faults import chance
from sandbox.server import RunningSandbox, start_in_thread
from tasks.deliver.signatures import verify_meta, verify_rbm, verify_sendgrid, verify_twilio

BEARER = {"Authorization": "Bearer test-token"}
SENDGRID_AUTH = {"Authorization": "Bearer SG.test-key"}
ACCOUNT = "AC" + "0" * 31 + "1"
TWILIO_TOKEN = "twilio-auth-token"
META_SECRET = "meta-app-secret"
RBM_TOKEN = "rbm-client-token"
TEMPLATES = {"payment_reminder": {"en": 2, "es": 2}}


# --- a webhook receiver: a real server that keeps whatever is posted to it -------------------


class Receiver:
    def __init__(self) -> None:
        self.hits: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/{path:path}", self._keep, methods=["POST"])])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    async def _keep(self, request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:  # a reset cancelled the webhook mid-post
            return Response(b"", 400)
        hit = {"path": request.url.path, "url": str(request.url), "body": body}
        hit["headers"] = dict(request.headers)
        self.hits.append(hit)
        return Response(b"", 200)

    def wait(self, path: str, count: int, timeout: float = 3.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = [h for h in list(self.hits) if h["path"] == path]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.01)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    while not r.server.started:
        time.sleep(0.01)
    yield r
    r.server.should_exit = True
    r.thread.join(5)


@pytest.fixture(scope="module")
def sbx(receiver: Receiver) -> Iterator[RunningSandbox]:
    with start_in_thread(
        webhook_url=receiver.url + "/hooks",
        meta_app_secret=META_SECRET,
        rbm_client_token=RBM_TOKEN,
        templates=TEMPLATES,
    ) as running:
        yield running


@pytest.fixture
def client(sbx: RunningSandbox, receiver: Receiver) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sbx.url, timeout=5) as c:
        assert c.post("/_sandbox/reset").status_code == 200
        receiver.hits.clear()
        yield c


def set_faults(c: httpx.Client, **faults: Any) -> None:
    response = c.post("/_sandbox/faults", json=faults)
    assert response.status_code == 200, response.text


def summary(c: httpx.Client) -> dict[str, Any]:
    return c.get("/_sandbox/summary").json()


# --- one request per provider ------------------------------------------------------------------


def send_whatsapp(
    c: httpx.Client,
    ref: str | None = "wa-1",
    to: str = "15551234567",
    *,
    name: str = "payment_reminder",
    language: str = "en",
    params: int = 2,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": language},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "x"}] * params}
            ],
        },
    }
    if ref is not None:
        body["biz_opaque_callback_data"] = ref
    return c.post(
        "/v21.0/1065501/messages", json=body, headers=BEARER if headers is None else headers
    )


def send_rbm(
    c: httpx.Client, ref: str = "rbm-1", to: str = "+15551234567", agent: str = "agent-1"
) -> httpx.Response:
    return c.post(
        f"/v1/phones/{to.replace('+', '%2B')}/agentMessages",
        params={"messageId": ref, "agentId": agent},
        json={
            "contentMessage": {
                "text": "Invoice F-1 is due",
                "suggestions": [{"reply": {"text": "Pay", "postbackData": "pay"}}],
            },
            "ttl": "86400s",
        },
        headers=BEARER,
    )


def _callback(ref: str, base: str | None) -> str:
    return f"{base or 'http://127.0.0.1:9'}/twilio/status?ref={ref}"


def send_sms(
    c: httpx.Client,
    ref: str = "sms-1",
    to: str = "+15551234567",
    *,
    callback_base: str | None = None,
    auth: tuple[str, str] = (ACCOUNT, TWILIO_TOKEN),
    **form: str,
) -> httpx.Response:
    data = {"To": to, "From": "+15550001111", "Body": "Invoice F-1 is due"}
    data["StatusCallback"] = _callback(ref, callback_base)
    data.update(form)
    return c.post(f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json", data=data, auth=auth)


def send_call(
    c: httpx.Client,
    ref: str = "call-1",
    to: str = "+15551234567",
    *,
    callback_base: str | None = None,
    **form: str,
) -> httpx.Response:
    data = {
        "To": to,
        "From": "+15550001111",
        "Twiml": "<Response><Say>Invoice F-1 is due</Say></Response>",
        "StatusCallback": _callback(ref, callback_base),
        "StatusCallbackEvent": "initiated ringing answered completed",
    }
    data.update(form)
    return c.post(
        f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json", data=data, auth=(ACCOUNT, TWILIO_TOKEN)
    )


def email_body(ref: str = "mail-1", to: str = "ada@example.com") -> dict[str, Any]:
    return {
        "personalizations": [{"to": [{"email": to}], "custom_args": {"cadencia_ref": ref}}],
        "from": {"email": "billing@example.com"},
        "subject": "Invoice F-1",
        "content": [{"type": "text/plain", "value": "Pay at https://pay.example.com/F-1 today"}],
        "headers": {"List-Unsubscribe": "<https://example.com/u/1>"},
    }


def send_email(c: httpx.Client, ref: str = "mail-1", to: str = "ada@example.com") -> httpx.Response:
    return c.post("/v3/mail/send", json=email_body(ref, to), headers=SENDGRID_AUTH)


def upsert_salesforce(c: httpx.Client, ref: str = "sf-1", **fields: Any) -> httpx.Response:
    body = {"Subject": "Call Ada about F-1", "ActivityDate": "2026-11-20", "Priority": "High"}
    body.update(fields)
    return c.patch(
        f"/services/data/v60.0/sobjects/Task/Cadencia_Ref__c/{ref}", json=body, headers=BEARER
    )


def create_hubspot(c: httpx.Client, ref: str = "hs-1", **properties: Any) -> httpx.Response:
    body = {
        "hs_timestamp": "2026-11-20T09:00:00Z",
        "hs_task_subject": "Call Ada",
        "hs_task_body": "F-1 overdue",
        "hs_task_status": "NOT_STARTED",
        "hs_task_priority": "HIGH",
        "cadencia_ref": ref,
    }
    body.update(properties)
    return c.post("/crm/v3/objects/tasks", json={"properties": body}, headers=BEARER)


def call_task(c: httpx.Client, ref: str = "task-1") -> httpx.Response:
    body = {"ref": ref, "assignee": "ana", "subject": "Call Ada", "brief": "F-1", "context": {}}
    return c.post("/hooks/call-tasks", json=body)


def in_app(c: httpx.Client, ref: str = "app-1", user_id: str = "user-1") -> httpx.Response:
    body = {"ref": ref, "user_id": user_id, "title": "Invoice due", "body": "F-1", "url": "/f/1"}
    return c.post("/in-app/notifications", json=body, headers=BEARER)


SENDERS: dict[str, Callable[[httpx.Client, str], httpx.Response]] = {
    "whatsapp": send_whatsapp,
    "rbm": send_rbm,
    "twilio_sms": send_sms,
    "twilio_calls": send_call,
    "sendgrid": send_email,
    "salesforce": upsert_salesforce,
    "hubspot": create_hubspot,
    "call_webhook": call_task,
    "in_app": in_app,
}


# --- answers and validation --------------------------------------------------------------------


def test_whatsapp_answer_and_record(client: httpx.Client) -> None:
    response = send_whatsapp(client, "wa-ok")
    assert response.status_code == 200
    body = response.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "15551234567", "wa_id": "15551234567"}]
    wamid = body["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    [entry] = client.get("/_sandbox/messages", params={"provider": "whatsapp"}).json()
    assert entry["seq"] == 1 and entry["provider"] == "whatsapp" and entry["ref"] == "wa-ok"
    assert entry["provider_id"] == wamid and entry["to"] == "+15551234567"
    assert abs(entry["at"] - time.time()) < 5
    assert entry["request"]["template"]["name"] == "payment_reminder"


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"headers": {}}, 401, 190),
        ({"to": "+15551234567"}, 400, 100),
        ({"to": ""}, 400, 100),
        ({"name": "no_such_template"}, 400, 132001),
        ({"language": "fr"}, 400, 132001),
        ({"params": 1}, 400, 132000),
    ],
)
def test_whatsapp_errors(
    client: httpx.Client, kwargs: dict[str, Any], status: int, code: int
) -> None:
    response = send_whatsapp(client, **kwargs)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert client.get("/_sandbox/messages").json() == []


def test_whatsapp_missing_fields_and_bad_json(client: httpx.Client) -> None:
    url = "/v21.0/1065501/messages"
    no_template = {"messaging_product": "whatsapp", "to": "15551234567", "type": "template"}
    for payload in (b"{not json", json.dumps(no_template).encode()):
        response = client.post(url, content=payload, headers=BEARER)
        assert response.status_code == 400 and response.json()["error"]["code"] == 100
    assert summary(client)["rejected"] == {"whatsapp": {"invalid_request": 2}}


def test_whatsapp_accepts_any_template_when_none_are_configured() -> None:
    with start_in_thread() as running, httpx.Client(base_url=running.url) as c:
        assert send_whatsapp(c, name="anything", language="xx", params=7).status_code == 200


def test_rbm_answer_and_message_id_idempotency(client: httpx.Client) -> None:
    first = send_rbm(client, "6f0c-1")
    assert first.status_code == 200
    body = first.json()
    assert body["name"] == "phones/+15551234567/agentMessages/6f0c-1"
    assert body["sendTime"].endswith("Z")
    again = send_rbm(client, "6f0c-1")
    assert again.status_code == 200 and again.json() == body
    assert send_rbm(client, "6f0c-1", agent="agent-2").status_code == 200  # another agent
    entries = client.get("/_sandbox/messages", params={"provider": "rbm"}).json()
    assert [(e["ref"], e["to"]) for e in entries] == [("6f0c-1", "+15551234567")] * 2
    assert summary(client)["accepted"]["rbm"] == 2


def test_rbm_errors(client: httpx.Client) -> None:
    no_auth = client.post(
        "/v1/phones/%2B15551234567/agentMessages",
        params={"messageId": "m", "agentId": "a"},
        json={"contentMessage": {"text": "x"}},
    )
    assert no_auth.status_code == 401
    assert no_auth.json()["error"]["status"] == "UNAUTHENTICATED"
    bad_phone = send_rbm(client, to="15551234567")
    assert bad_phone.status_code == 400
    assert bad_phone.json()["error"]["status"] == "INVALID_ARGUMENT"
    no_id = client.post(
        "/v1/phones/%2B15551234567/agentMessages",
        params={"agentId": "a"},
        json={"contentMessage": {"text": "x"}},
        headers=BEARER,
    )
    assert no_id.status_code == 400


def test_twilio_sms_answer_and_errors(client: httpx.Client) -> None:
    response = send_sms(client, "sms-ok")
    assert response.status_code == 201
    body = response.json()
    assert body["sid"].startswith("SM") and len(body["sid"]) == 34
    assert body["status"] == "queued" and body["account_sid"] == ACCOUNT
    assert body["to"] == "+15551234567" and body["error_code"] is None
    [entry] = client.get("/_sandbox/messages").json()
    assert entry["ref"] == "sms-ok" and entry["provider_id"] == body["sid"]

    unauthenticated = send_sms(client, auth=("ACother", TWILIO_TOKEN))
    assert unauthenticated.status_code == 401 and unauthenticated.json()["code"] == 20003
    invalid = send_sms(client, to="555-1234")
    assert invalid.status_code == 400 and invalid.json()["code"] == 21211
    assert invalid.json()["more_info"].endswith("/21211")
    assert send_sms(client, Body="").json()["code"] == 21602
    assert send_sms(client, StatusCallback="not a url").json()["code"] == 21609
    assert send_sms(client, auth=("SK123", "api-key-secret")).status_code == 201  # API key


def test_twilio_calls_answer_and_errors(client: httpx.Client) -> None:
    response = send_call(client, "call-ok")
    assert response.status_code == 201
    assert response.json()["sid"].startswith("CA") and response.json()["status"] == "queued"
    assert send_call(client, to="0034 611").json()["code"] == 21211
    missing = send_call(client, Twiml="")
    assert missing.status_code == 400 and missing.json()["code"] == 21205


def test_sendgrid_answer_and_errors(client: httpx.Client) -> None:
    response = send_email(client, "mail-ok")
    assert response.status_code == 202 and response.content == b""
    message_id = response.headers["x-message-id"]
    [entry] = client.get("/_sandbox/messages").json()
    assert (entry["ref"], entry["to"], entry["provider_id"]) == (
        "mail-ok",
        "ada@example.com",
        message_id,
    )

    no_key = client.post("/v3/mail/send", json=email_body(), headers=BEARER)  # not "SG."
    assert no_key.status_code == 401 and "errors" in no_key.json()
    invalid = send_email(client, to="not-an-address")
    assert invalid.status_code == 400
    assert invalid.json()["errors"][0]["field"] == "personalizations.0.to.0.email"
    no_from = email_body()
    del no_from["from"]
    response = client.post("/v3/mail/send", json=no_from, headers=SENDGRID_AUTH)
    assert response.json()["errors"][0]["field"] == "from.email"


def test_salesforce_upsert_is_idempotent_by_external_id(client: httpx.Client) -> None:
    created = upsert_salesforce(client, "sf-ok")
    assert created.status_code == 201
    body = created.json()
    assert body["id"].startswith("00T") and len(body["id"]) == 18
    assert body == {"id": body["id"], "success": True, "errors": [], "created": True}
    updated = upsert_salesforce(client, "sf-ok", Priority="Low")
    assert updated.status_code == 200
    assert updated.json() == {"id": body["id"], "success": True, "errors": [], "created": False}
    [entry] = client.get("/_sandbox/messages").json()
    assert entry["ref"] == "sf-ok" and entry["request"]["Priority"] == "Low"
    assert summary(client)["duplicates"] == {"salesforce": 0}

    assert upsert_salesforce(client, Bogus="x").json()[0]["errorCode"] == "INVALID_FIELD"
    assert upsert_salesforce(client, ActivityDate="20/11/2026").status_code == 400
    no_auth = client.patch(
        "/services/data/v60.0/sobjects/Task/Cadencia_Ref__c/x", json={"Subject": "s"}
    )
    assert no_auth.status_code == 401 and no_auth.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_hubspot_answer_and_errors(client: httpx.Client) -> None:
    response = create_hubspot(client, "hs-ok")
    assert response.status_code == 201
    body = response.json()
    assert body["id"].isdigit() and body["properties"]["cadencia_ref"] == "hs-ok"
    assert body["properties"]["hs_object_id"] == body["id"] and body["createdAt"].endswith("Z")
    missing = create_hubspot(client, hs_timestamp=None)
    assert missing.status_code == 400 and missing.json()["category"] == "VALIDATION_ERROR"
    assert create_hubspot(client, hs_task_status="SOON").status_code == 400
    no_auth = client.post("/crm/v3/objects/tasks", json={"properties": {}})
    assert no_auth.status_code == 401


def test_call_webhook_and_in_app(client: httpx.Client) -> None:
    task = call_task(client, "task-ok")
    assert task.status_code == 202 and task.json() == {"ref": "task-ok", "status": "queued"}
    note = in_app(client, "app-ok", "user-9")
    assert note.status_code == 202 and note.json()["status"] == "queued"
    entries = client.get("/_sandbox/messages").json()
    assert [(e["provider"], e["ref"], e["to"]) for e in entries] == [
        ("call_webhook", "task-ok", "task-ok"),
        ("in_app", "app-ok", "user-9"),
    ]
    assert client.post("/hooks/call-tasks", json={"ref": "x"}).status_code == 400
    assert client.post("/in-app/notifications", json={"ref": "x"}).status_code == 401


# --- record, summary, control API --------------------------------------------------------------


def test_summary_counts_duplicates_and_rejections(client: httpx.Client) -> None:
    for ref in ("a", "a", "a", "b", "c", "c"):
        assert send_whatsapp(client, ref).status_code == 200
    send_whatsapp(client, None)  # no ref: accepted, never a duplicate
    send_sms(client, "s1")
    send_sms(client, "s1")
    send_whatsapp(client, headers={})
    result = summary(client)
    assert result["accepted"] == {"whatsapp": 7, "twilio_sms": 2}
    assert result["duplicates"] == {"whatsapp": 2, "twilio_sms": 1}
    assert result["rejected"] == {"whatsapp": {"unauthorized": 1}}
    assert [e["seq"] for e in client.get("/_sandbox/messages").json()] == list(range(1, 10))
    assert len(client.get("/_sandbox/messages", params={"provider": "twilio_sms"}).json()) == 2


def test_faults_are_validated(client: httpx.Client) -> None:
    for bad in (
        {"error_rate": 2},
        {"rate_limit_per_second": {"carrier_pigeon": 1}},
        {"permanent": {"+15551234567": "exploded"}},
        {"no_such_fault": True},
    ):
        response = client.post("/_sandbox/faults", json=bad)
        assert response.status_code == 422
        assert response.json()["detail"].startswith("invalid faults: ")
    assert client.post("/_sandbox/faults", content=b"{oops").status_code == 422
    set_faults(client, error_rate=0.25, seed=3)
    assert client.get("/_sandbox/faults").json()["error_rate"] == 0.25


def test_reset_clears_record_faults_and_idempotency(client: httpx.Client) -> None:
    send_rbm(client, "m-1")
    set_faults(client, error_rate=1.0)
    client.post("/_sandbox/reset")
    assert client.get("/_sandbox/messages").json() == []
    assert client.get("/_sandbox/faults").json()["error_rate"] == 0
    assert send_rbm(client, "m-1").status_code == 200
    assert summary(client)["accepted"] == {"rbm": 1}


def test_health_and_keys(client: httpx.Client, sbx: RunningSandbox) -> None:
    assert client.get("/_sandbox/health").json()["status"] == "ok"
    key = client.get("/_sandbox/keys").json()["sendgrid_public_key"]
    assert key == sbx.sendgrid_public_key and base64.b64decode(key)


def test_record_file_and_free_ports(tmp_path: Path) -> None:
    path = tmp_path / "record" / "messages.jsonl"
    with start_in_thread(record_file=path) as one, start_in_thread() as two:
        assert one.port != 0 and two.port != 0 and one.port != two.port
        assert one.url == f"http://127.0.0.1:{one.port}"
        with httpx.Client(base_url=one.url) as c:
            send_whatsapp(c, "file-1")
            send_email(c, "file-2")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["seq"], e["provider"], e["ref"]) for e in lines] == [
        (1, "whatsapp", "file-1"),
        (2, "sendgrid", "file-2"),
    ]
    with pytest.raises(httpx.ConnectError):
        httpx.get(one.url + "/_sandbox/health")


# --- faults ------------------------------------------------------------------------------------


THROTTLE = {
    "whatsapp": (400, lambda r: r.json()["error"]["code"] == 130429),
    "rbm": (429, lambda r: r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"),
    "twilio_sms": (429, lambda r: r.json()["code"] == 20429 and "retry-after" in r.headers),
    "twilio_calls": (429, lambda r: r.json()["code"] == 20429 and "retry-after" in r.headers),
    "sendgrid": (
        429,
        lambda r: (
            r.json()["errors"][0]["message"] == "too many requests"
            and int(r.headers["x-ratelimit-reset"]) >= int(time.time())
        ),
    ),
    "salesforce": (403, lambda r: r.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"),
    "hubspot": (429, lambda r: "retry-after" in r.headers),
    "call_webhook": (429, lambda r: "retry-after" in r.headers),
    "in_app": (429, lambda r: "retry-after" in r.headers),
}


def test_rate_limit_answers_each_providers_throttle_error(client: httpx.Client) -> None:
    set_faults(client, rate_limit_per_second={p: 3 for p in SENDERS})
    for provider, send in SENDERS.items():
        answers = [send(client, f"{provider}-{i}") for i in range(5)]
        status, is_throttle = THROTTLE[provider]
        assert all(a.status_code < 300 for a in answers[:3]), provider
        assert all(a.status_code == status and is_throttle(a) for a in answers[3:]), provider
    result = summary(client)
    assert result["accepted"] == {p: 3 for p in SENDERS}
    assert result["rejected"] == {p: {"rate_limited": 2} for p in SENDERS}
    assert all(n <= 3 for n in result["max_per_second"].values())


def test_a_fractional_rate_limit_rounds_down(client: httpx.Client) -> None:
    set_faults(client, rate_limit_per_second={"hubspot": 2.5})
    codes = [create_hubspot(client, f"h{i}").status_code for i in range(4)]
    assert codes == [201, 201, 429, 429]


def test_rate_limit_is_a_rolling_window(client: httpx.Client) -> None:
    set_faults(client, rate_limit_per_second={"whatsapp": 10})
    accepted_at: list[float] = []
    end = time.monotonic() + 1.4
    i = 0
    while time.monotonic() < end:
        i += 1
        if send_whatsapp(client, f"w{i}").status_code == 200:
            accepted_at.append(time.monotonic())
    result = summary(client)
    assert result["max_per_second"]["whatsapp"] == 10
    assert 10 < result["accepted"]["whatsapp"] <= 20  # the window rolled once, not per second
    assert result["rejected"]["whatsapp"]["rate_limited"] == i - result["accepted"]["whatsapp"]


def test_injected_5xx_is_not_recorded_and_is_deterministic(client: httpx.Client) -> None:
    set_faults(client, error_rate=1.0, error_status=503, retry_after=7)
    response = send_sms(client)
    assert response.status_code == 503 and response.headers["retry-after"] == "7"
    assert response.json()["status"] == 503
    assert send_whatsapp(client).json()["error"]["code"] == 2
    assert client.get("/_sandbox/messages").json() == []
    assert summary(client)["rejected"]["twilio_sms"] == {"server_error": 1}

    def pattern() -> list[int]:
        client.post("/_sandbox/reset")
        set_faults(client, error_rate=0.5, seed=42)
        return [send_whatsapp(client, f"d{i}").status_code for i in range(20)]

    first = pattern()
    assert first == pattern() and {200, 503} == set(first)


def test_faults_can_be_scoped_to_providers(client: httpx.Client) -> None:
    set_faults(client, error_rate=1.0, providers=["twilio_sms"])
    assert send_sms(client).status_code == 503
    assert send_whatsapp(client).status_code == 200


def test_slow_answers(client: httpx.Client) -> None:
    set_faults(client, slow_ms=200)
    started = time.monotonic()
    assert send_email(client).status_code == 202
    assert time.monotonic() - started >= 0.2


def test_timeout_after_accept_is_recorded_and_the_client_times_out(sbx: RunningSandbox) -> None:
    with httpx.Client(base_url=sbx.url, timeout=5) as c:
        c.post("/_sandbox/reset")
        set_faults(c, timeout_after_accept_rate=1.0, hang_seconds=3)
        with pytest.raises(httpx.ReadTimeout):
            c.post(
                "/v21.0/1065501/messages",
                json={
                    "messaging_product": "whatsapp",
                    "to": "15551234567",
                    "type": "text",
                    "text": {"body": "hi"},
                    "biz_opaque_callback_data": "hung",
                },
                headers=BEARER,
                timeout=0.3,
            )
        [entry] = c.get("/_sandbox/messages").json()
        assert entry["ref"] == "hung"


def test_drop_after_accept_is_recorded_and_the_client_sees_a_transport_error(
    client: httpx.Client,
) -> None:
    set_faults(client, drop_after_accept_rate=1.0, providers=["twilio_sms"])
    with pytest.raises(httpx.TransportError) as caught:
        send_sms(client, "dropped")
    assert isinstance(caught.value, httpx.RemoteProtocolError | httpx.ReadError)
    [entry] = client.get("/_sandbox/messages").json()
    assert entry["ref"] == "dropped"
    assert client.get("/_sandbox/health").status_code == 200  # the server carries on


@pytest.mark.parametrize(
    ("provider", "recipient", "kind", "status", "check"),
    [
        ("whatsapp", "15551230001", "undeliverable", 400, lambda b: b["error"]["code"] == 131026),
        ("whatsapp", "15551230001", "invalid", 400, lambda b: b["error"]["code"] == 100),
        ("twilio_sms", "+15551230001", "stop", 400, lambda b: b["code"] == 21610),
        ("twilio_sms", "+15551230001", "invalid", 400, lambda b: b["code"] == 21211),
        ("twilio_calls", "+15551230001", "invalid", 400, lambda b: b["code"] == 21217),
        (
            "sendgrid",
            "gone@example.com",
            "invalid",
            400,
            lambda b: b["errors"][0]["field"] == "personalizations.0.to.0.email",
        ),
        (
            "rbm",
            "+15551230001",
            "not_rcs",
            404,
            lambda b: (
                b
                == {
                    "error": {
                        "code": 404,
                        "message": "Requested entity was not found.",
                        "status": "NOT_FOUND",
                    }
                }
            ),
        ),
    ],
)
def test_permanent_recipient_faults(
    client: httpx.Client,
    provider: str,
    recipient: str,
    kind: str,
    status: int,
    check: Callable[[Any], bool],
) -> None:
    recorded_as = recipient if provider != "whatsapp" else "+" + recipient
    set_faults(client, permanent={recorded_as: kind})
    send = SENDERS[provider]
    response = send(client, "p-1", recipient)  # type: ignore[call-arg]
    assert response.status_code == status and check(response.json())
    assert client.get("/_sandbox/messages").json() == []
    assert summary(client)["rejected"] == {provider: {kind: 1}}
    other = "15551239999" if provider == "whatsapp" else "+15551239999"
    if provider == "sendgrid":
        other = "ok@example.com"
    assert send(client, "p-2", other).status_code < 300  # type: ignore[call-arg]


# --- signed webhooks ---------------------------------------------------------------------------


def test_whatsapp_webhooks_are_signed_and_echo_our_ref(
    client: httpx.Client, receiver: Receiver
) -> None:
    set_faults(client, webhook_delay_ms=1, engagement={"read": 1.0, "reply": 1.0})
    wamid = send_whatsapp(client, "wa-hook").json()["messages"][0]["id"]
    hits = receiver.wait("/hooks/whatsapp", 4)
    assert len(hits) == 4
    statuses, replies = [], []
    for hit in hits:
        assert verify_meta(META_SECRET, hit["body"], hit["headers"]["x-hub-signature-256"])
        assert not verify_meta("wrong-secret", hit["body"], hit["headers"]["x-hub-signature-256"])
        value = json.loads(hit["body"])["entry"][0]["changes"][0]["value"]
        assert value["metadata"]["phone_number_id"] == "1065501"
        statuses += value.get("statuses", [])
        replies += value.get("messages", [])
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert {(s["id"], s["biz_opaque_callback_data"], s["recipient_id"]) for s in statuses} == {
        (wamid, "wa-hook", "15551234567")
    }
    [reply] = replies
    assert reply["from"] == "15551234567" and reply["type"] == "text"
    assert reply["context"]["id"] == wamid


def test_whatsapp_failed_late(client: httpx.Client, receiver: Receiver) -> None:
    set_faults(client, webhook_delay_ms=1, permanent={"+15551230002": "failed_late"})
    assert send_whatsapp(client, "wa-late", "15551230002").status_code == 200
    hits = receiver.wait("/hooks/whatsapp", 2)
    statuses = [
        json.loads(h["body"])["entry"][0]["changes"][0]["value"]["statuses"][0] for h in hits
    ]
    assert [s["status"] for s in statuses] == ["sent", "failed"]
    assert statuses[1]["errors"][0]["code"] == 131026
    assert statuses[1]["biz_opaque_callback_data"] == "wa-late"


def test_rbm_webhooks_are_signed_over_the_decoded_data(
    client: httpx.Client, receiver: Receiver
) -> None:
    set_faults(client, webhook_delay_ms=1, engagement={"read": 1.0, "reply": 1.0})
    send_rbm(client, "rbm-hook")
    hits = receiver.wait("/hooks/rbm", 3)
    events = []
    for hit in hits:
        envelope = json.loads(hit["body"])
        data = base64.b64decode(envelope["message"]["data"])
        assert verify_rbm(RBM_TOKEN, data, hit["headers"]["x-goog-signature"])
        assert envelope["subscription"] and envelope["message"]["publishTime"].endswith("Z")
        events.append(json.loads(data))
    assert [e.get("eventType") for e in events] == ["DELIVERED", "READ", None]
    assert [e.get("messageId") for e in events[:2]] == ["rbm-hook", "rbm-hook"]
    assert events[2]["text"] and events[2]["senderPhoneNumber"] == "+15551234567"
    assert len({e["eventId"] for e in events}) == 3


def test_sendgrid_events_are_signed_with_the_sandbox_key(
    client: httpx.Client, receiver: Receiver
) -> None:
    public_key = client.get("/_sandbox/keys").json()["sendgrid_public_key"]
    set_faults(client, webhook_delay_ms=1, engagement={"open": 1.0, "click": 1.0})
    message_id = send_email(client, "mail-hook").headers["x-message-id"]
    hits = receiver.wait("/hooks/sendgrid", 4)
    events = []
    for hit in hits:
        headers = hit["headers"]
        signature = headers["x-twilio-email-event-webhook-signature"]
        timestamp = headers["x-twilio-email-event-webhook-timestamp"]
        assert verify_sendgrid(public_key, timestamp, hit["body"], signature)
        assert not verify_sendgrid(public_key, timestamp, hit["body"] + b" ", signature)
        events += json.loads(hit["body"])
    assert [e["event"] for e in events] == ["processed", "delivered", "open", "click"]
    assert all(e["sg_message_id"].startswith(message_id) for e in events)
    assert all(e["cadencia_ref"] == "mail-hook" and e["email"] == "ada@example.com" for e in events)
    assert len({e["sg_event_id"] for e in events}) == 4
    assert events[3]["url"] == "https://pay.example.com/F-1"


def test_sendgrid_hard_bounce(client: httpx.Client, receiver: Receiver) -> None:
    set_faults(client, webhook_delay_ms=1, permanent={"gone@example.com": "hard_bounce"})
    assert send_email(client, "mail-bounce", "gone@example.com").status_code == 202
    events = [json.loads(h["body"])[0] for h in receiver.wait("/hooks/sendgrid", 2)]
    assert [(e["event"], e.get("type")) for e in events] == [
        ("processed", None),
        ("bounce", "bounce"),
    ]


def _twilio_hits(receiver: Receiver, count: int) -> list[dict[str, str]]:
    hits = receiver.wait("/twilio/status", count)
    forms = []
    for hit in hits:
        params = dict(parse_qsl(hit["body"].decode()))
        signature = hit["headers"]["x-twilio-signature"]
        assert verify_twilio(TWILIO_TOKEN, hit["url"], params, signature)
        assert not verify_twilio("wrong", hit["url"], params, signature)
        forms.append(params)
    return forms


def test_twilio_status_callbacks_go_to_the_exact_url_signed(
    client: httpx.Client, receiver: Receiver
) -> None:
    set_faults(client, webhook_delay_ms=1)
    sid = send_sms(client, "sms-hook", callback_base=receiver.url).json()["sid"]
    forms = _twilio_hits(receiver, 2)
    assert [(f["MessageSid"], f["MessageStatus"]) for f in forms] == [
        (sid, "sent"),
        (sid, "delivered"),
    ]
    assert receiver.hits[0]["url"] == f"{receiver.url}/twilio/status?ref=sms-hook"


def test_twilio_undelivered_and_calls(client: httpx.Client, receiver: Receiver) -> None:
    set_faults(client, webhook_delay_ms=1, engagement={"delivered": 0.0})
    send_sms(client, "sms-lost", callback_base=receiver.url)
    forms = _twilio_hits(receiver, 2)
    assert [(f["MessageStatus"], f.get("ErrorCode")) for f in forms] == [
        ("sent", None),
        ("undelivered", "30003"),
    ]
    receiver.hits.clear()
    set_faults(client, webhook_delay_ms=1)
    sid = send_call(client, "call-hook", callback_base=receiver.url).json()["sid"]
    forms = _twilio_hits(receiver, 4)
    assert [f["CallStatus"] for f in forms] == ["initiated", "ringing", "in-progress", "completed"]
    assert {f["CallSid"] for f in forms} == {sid}


def test_engagement_is_fixed_per_ref_by_the_seed(client: httpx.Client, receiver: Receiver) -> None:
    refs = [f"e{i}" for i in range(12)]
    # The documented draw: delivered, then read, each fixed by (seed, ref, event).
    expected = {r for r in refs if chance(7, r, "read") < 0.5}
    assert 0 < len(expected) < len(refs)

    def read_refs(order: list[str]) -> set[str]:
        client.post("/_sandbox/reset")
        receiver.hits.clear()
        set_faults(client, seed=7, webhook_delay_ms=0, engagement={"read": 0.5})
        for ref in order:
            send_whatsapp(client, ref)
        hits = receiver.wait("/hooks/whatsapp", 2 * len(refs) + len(expected))
        statuses = [
            json.loads(h["body"])["entry"][0]["changes"][0]["value"]["statuses"][0] for h in hits
        ]
        return {s["biz_opaque_callback_data"] for s in statuses if s["status"] == "read"}

    assert read_refs(refs) == expected
    assert read_refs(list(reversed(refs))) == expected  # arrival order does not matter


def test_failing_webhooks_are_counted_not_raised() -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    url = f"http://127.0.0.1:{dead.getsockname()[1]}"
    with start_in_thread(webhook_url=url) as running, httpx.Client(base_url=running.url) as c:
        set_faults(c, webhook_delay_ms=0, engagement={"delivered": 0.0})
        assert send_whatsapp(c, "lost-hook").status_code == 200
        deadline = time.monotonic() + 3
        while not summary(c)["webhooks_failed"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert summary(c)["webhooks_failed"] == {"whatsapp": 1}
        assert send_whatsapp(c, "after").status_code == 200
    dead.close()


def test_no_webhook_url_means_no_webhooks_but_twilio_still_calls_back(
    receiver: Receiver,
) -> None:
    receiver.hits.clear()
    with start_in_thread() as running, httpx.Client(base_url=running.url) as c:
        set_faults(c, webhook_delay_ms=0)
        send_whatsapp(c, "quiet")
        send_sms(c, "loud", callback_base=receiver.url)
        assert len(receiver.wait("/twilio/status", 2)) == 2
        time.sleep(0.1)
        assert {h["path"] for h in receiver.hits} == {"/twilio/status"}
