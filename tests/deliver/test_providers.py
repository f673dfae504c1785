"""Each provider's request shape and error classification, against canned answers in the
providers' documented shapes (the sandbox tests cover the same against a live server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest

from tasks.deliver.providers.base import Message, Result, retry_after
from tasks.deliver.providers.call_tasks import CallWebhook, HubSpotTasks, SalesforceTasks
from tasks.deliver.providers.in_app import InApp
from tasks.deliver.providers.rbm import RcsBusinessMessaging
from tasks.deliver.providers.sendgrid import SendGrid
from tasks.deliver.providers.twilio import TwilioCalls, TwilioSms
from tasks.deliver.providers.whatsapp import WhatsAppCloud
from tasks.deliver.templates import Rendered

REF = "3f0e4a9c-1d2b-5c6d-8e7f-0a1b2c3d4e5f"


def _message(**kw: object) -> Message:
    rendered = Rendered(
        subject="Factura", text="Hola Ana", wa_name="payment_reminder", wa_language="es",
        wa_parameters=("Ana", "1.234,56 €"), url="https://example.com/u/1",
    )  # fmt: skip
    base = dict(touch_id=1, ref=REF, channel="whatsapp", template="payment_reminder",
                purpose="service", locale="es", to="+34600111222", rendered=rendered)  # fmt: skip
    base.update(kw)
    return Message(**base)  # type: ignore[arg-type]


def _client(handler: Callable[[httpx.Request], httpx.Response], seen: list) -> httpx.AsyncClient:
    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(record))


def _send(provider: object, message: Message) -> Result:
    return asyncio.run(provider.send(message))  # type: ignore[attr-defined]


def _wa_error(code: int, status: int = 400) -> Callable[[httpx.Request], httpx.Response]:
    body = {"error": {"message": f"(#{code})", "type": "OAuthException", "code": code}}
    return lambda r: httpx.Response(status, json=body)


def test_whatsapp_template_payload_echoes_our_ref() -> None:
    seen: list[httpx.Request] = []
    ok = {"messaging_product": "whatsapp", "contacts": [{"input": "34600111222"}],
          "messages": [{"id": "wamid.ABC"}]}  # fmt: skip
    wa = WhatsAppCloud(_client(lambda r: httpx.Response(200, json=ok), seen),
                       "http://x", "v21.0", "123", "tok")  # fmt: skip
    result = _send(wa, _message())
    assert result == Result("sent", provider_id="wamid.ABC")
    body = json.loads(seen[0].content)
    assert seen[0].url.path == "/v21.0/123/messages"
    assert seen[0].headers["authorization"] == "Bearer tok"
    assert body["to"] == "34600111222" and body["type"] == "template"
    assert body["biz_opaque_callback_data"] == REF
    assert body["template"]["language"]["code"] == "es"
    assert [p["text"] for p in body["template"]["components"][0]["parameters"]] == [
        "Ana", "1.234,56 €"]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "outcome", "fall_back", "suppress"),
    [
        (130429, "retryable", False, None),  # throughput: HTTP 400, not 429
        (131056, "retryable", False, None),
        (131026, "permanent", True, "whatsapp undeliverable"),
        (132001, "permanent", False, None),
        (131049, "permanent", False, None),
        (1, "ambiguous", False, None),  # unknown error: it may have been accepted
    ],
)
def test_whatsapp_classifies_on_error_code(
    code: int, outcome: str, fall_back: bool, suppress: str | None
) -> None:
    wa = WhatsAppCloud(_client(_wa_error(code), []), "http://x", "v21.0", "1", "t")
    result = _send(wa, _message())
    assert (result.outcome, result.fall_back, result.suppress) == (outcome, fall_back, suppress)
    assert result.code == str(code)


def test_refused_credentials_stall_the_provider_instead_of_failing_touches() -> None:
    expired = _wa_error(190, status=401)
    result = _send(WhatsAppCloud(_client(expired, []), "http://x", "v", "1", "t"), _message())
    assert (result.outcome, result.stall) == ("retryable", True)
    auth = {"code": 20003, "message": "Authenticate", "status": 401}
    sms = TwilioSms(_client(lambda r: httpx.Response(401, json=auth), []), "http://x", "AC1",
                    "bad", "+3491", None)  # fmt: skip
    assert _send(sms, _message(channel="sms")).stall


def test_a_success_without_the_usual_body_is_still_sent() -> None:
    empty = WhatsAppCloud(_client(lambda r: httpx.Response(200, json={}), []), "http://x",
                          "v", "1", "t")  # fmt: skip
    assert _send(empty, _message()).outcome == "sent"
    no_body = SalesforceTasks(_client(lambda r: httpx.Response(204), []), "http://x", "t")
    assert _send(no_body, _message(channel="voice")).outcome == "sent"


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (httpx.ConnectError("refused"), "retryable"),  # the request never left
        (httpx.ReadTimeout("slow"), "ambiguous"),  # it left; it may have been accepted
        (httpx.RemoteProtocolError("closed"), "ambiguous"),
    ],
)
def test_transport_failures_before_and_after_sending(error: Exception, outcome: str) -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise error

    wa = WhatsAppCloud(_client(boom, []), "http://x", "v21.0", "1", "t")
    assert _send(wa, _message()).outcome == outcome


def test_server_errors_500_is_ambiguous_503_retryable_with_retry_after() -> None:
    wa = WhatsAppCloud(_client(lambda r: httpx.Response(500, text="oops"), []), "http://x",
                       "v", "1", "t")  # fmt: skip
    assert _send(wa, _message()).outcome == "ambiguous"
    busy = lambda r: httpx.Response(503, headers={"Retry-After": "7"})  # noqa: E731
    result = _send(WhatsAppCloud(_client(busy, []), "http://x", "v", "1", "t"), _message())
    assert (result.outcome, result.retry_after) == ("retryable", 7.0)


def test_retry_after_as_http_date() -> None:
    response = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after(response) == 0.0  # in the past: go now


def test_rbm_uses_our_ref_as_message_id_and_404_falls_back() -> None:
    seen: list[httpx.Request] = []
    rbm = RcsBusinessMessaging(_client(lambda r: httpx.Response(200, json={"name": "x"}), seen),
                               "http://x", "agent", "tok")  # fmt: skip
    assert _send(rbm, _message(channel="rcs")).outcome == "sent"
    assert seen[0].url.path == "/v1/phones/+34600111222/agentMessages"
    assert seen[0].url.params["messageId"] == REF
    gone = {"error": {"code": 404, "message": "Requested entity was not found.",
                      "status": "NOT_FOUND"}}  # fmt: skip
    rbm404 = RcsBusinessMessaging(_client(lambda r: httpx.Response(404, json=gone), []),
                                  "http://x", "agent", "tok")  # fmt: skip
    result = _send(rbm404, _message(channel="rcs"))
    assert (result.outcome, result.fall_back) == ("permanent", True)

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    # messageId is an idempotency key: a timeout is safe to retry with the same id.
    rbm_slow = RcsBusinessMessaging(_client(timeout, []), "http://x", "agent", "tok")
    assert _send(rbm_slow, _message(channel="rcs")).outcome == "retryable"


def test_twilio_sms_form_callback_ref_and_stop() -> None:
    seen: list[httpx.Request] = []
    created = {"sid": "SM123", "status": "queued"}
    hook = "https://hooks.example.com/webhooks/twilio"
    sms = TwilioSms(_client(lambda r: httpx.Response(201, json=created), seen), "http://x",
                    "AC1", "secret", "+34910000000", hook)  # fmt: skip
    assert _send(sms, _message(channel="sms")) == Result("sent", provider_id="SM123")
    form = parse_qs(seen[0].content.decode())
    assert form["To"] == ["+34600111222"] and form["Body"] == ["Hola Ana"]
    assert form["StatusCallback"] == [f"https://hooks.example.com/webhooks/twilio?ref={REF}"]
    assert seen[0].url.path == "/2010-04-01/Accounts/AC1/Messages.json"
    stop = {"code": 21610, "message": "unsubscribed", "status": 400}
    sms_stop = TwilioSms(_client(lambda r: httpx.Response(400, json=stop), []), "http://x",
                         "AC1", "s", "+3491", None)  # fmt: skip
    result = _send(sms_stop, _message(channel="sms"))
    assert (result.outcome, result.suppress) == ("permanent", "sms stop")
    busy = {"code": 20429, "message": "Too Many Requests", "status": 429}
    sms_busy = TwilioSms(_client(lambda r: httpx.Response(429, json=busy), []), "http://x",
                         "AC1", "s", "+3491", None)  # fmt: skip
    assert _send(sms_busy, _message(channel="sms")).outcome == "retryable"


def test_twilio_call_speaks_escaped_text() -> None:
    seen: list[httpx.Request] = []
    calls = TwilioCalls(_client(lambda r: httpx.Response(201, json={"sid": "CA1"}), seen),
                        "http://x", "AC1", "s", "+3491", None)  # fmt: skip
    message = _message(channel="voice", rendered=Rendered(text="Pague <ya> & gracias"))
    assert _send(calls, message).provider_id == "CA1"
    twiml = parse_qs(seen[0].content.decode())["Twiml"][0]
    assert "Pague &lt;ya&gt; &amp; gracias" in twiml and 'language="es-ES"' in twiml


def test_sendgrid_custom_args_message_id_and_one_click_unsubscribe_on_marketing() -> None:
    seen: list[httpx.Request] = []
    accepted = lambda r: httpx.Response(202, headers={"X-Message-Id": "sg-1"})  # noqa: E731
    sg = SendGrid(_client(accepted, seen), "http://x", "SG.k", "cobros@example.com", "Cobros",
                  "unsub@example.com")  # fmt: skip
    result = _send(sg, _message(channel="email", to="ana@example.com", purpose="marketing"))
    assert result == Result("sent", provider_id="sg-1")
    body = json.loads(seen[0].content)
    assert body["personalizations"][0]["custom_args"] == {"cadencia_ref": REF}
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "<https://example.com/u/1>" in body["headers"]["List-Unsubscribe"]
    _send(sg, _message(channel="email", to="ana@example.com", purpose="service"))
    assert "headers" not in json.loads(seen[1].content)  # transactional mail: exempt
    limited = lambda r: httpx.Response(  # noqa: E731
        429,
        json={"errors": [{"field": None, "message": "too many requests"}]},
        headers={"X-RateLimit-Reset": "0"},
    )
    sg429 = SendGrid(_client(limited, []), "http://x", "SG.k", "a@example.com", None)
    assert _send(sg429, _message(channel="email", to="a@b.co")).outcome == "retryable"


def test_call_tasks_carry_the_context() -> None:
    seen: list[httpx.Request] = []
    ctx = {"invoices": [{"number": "F-1", "open_amount": 100.0}], "high_priority": True}
    call = _message(channel="voice", assignee="005000000000001", context=ctx,
                    rendered=Rendered(subject="Llamar a Ana", text="Brief"))  # fmt: skip
    made = {"id": "00T1", "success": True, "errors": [], "created": True}
    sf = SalesforceTasks(_client(lambda r: httpx.Response(201, json=made), seen), "http://x", "t")
    assert _send(sf, call).provider_id == "00T1"
    assert seen[-1].method == "PATCH"
    assert seen[-1].url.path.endswith(f"/sobjects/Task/Cadencia_Ref__c/{REF}")
    assert json.loads(seen[-1].content)["OwnerId"] == "005000000000001"
    hs = HubSpotTasks(_client(lambda r: httpx.Response(201, json={"id": "9"}), seen), "http://x",
                      "t")  # fmt: skip
    assert _send(hs, call).provider_id == "9"
    props = json.loads(seen[-1].content)["properties"]
    assert props["cadencia_ref"] == REF and props["hs_task_priority"] == "HIGH"
    hook = CallWebhook(_client(lambda r: httpx.Response(202, json={"ref": REF}), seen),
                       "http://x/hooks/call-tasks", None)  # fmt: skip
    assert _send(hook, call).outcome == "sent"
    assert json.loads(seen[-1].content)["context"]["invoices"][0]["number"] == "F-1"


def test_in_app_posts_to_the_product() -> None:
    seen: list[httpx.Request] = []
    app = InApp(_client(lambda r: httpx.Response(202, json={"id": "n1"}), seen),
                "http://x/in-app/notifications", "tok")  # fmt: skip
    result = _send(app, _message(channel="in_app", to="G123",
                                 rendered=Rendered(title="Factura", text="Pendiente")))  # fmt: skip
    assert result.provider_id == "n1"
    assert json.loads(seen[0].content) == {"ref": REF, "user_id": "G123", "title": "Factura",
                                           "body": "Pendiente", "url": None}  # fmt: skip
