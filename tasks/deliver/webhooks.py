"""The webhook receiver: provider status callbacks, replies and one-click unsubscribes → ledger.

A small Starlette app (`cadencia webhooks` serves it with uvicorn). Every provider request is
verified before anything is parsed into the ledger: a missing signature is 401, a wrong one 403,
and neither changes anything; a malformed body is 400. Accepted batches are written in one
transaction *before* answering 200, so a database failure becomes a 5xx that the provider
retries, instead of events silently lost; redeliveries are no-ops (see tasks/ledger/receipts.py).
"""

from __future__ import annotations

import copy
import datetime as dt
import hmac
import html
import json
import logging
import logging.config
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import sqlalchemy as sa
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from config.settings import Settings, get_settings
from tasks.deliver import signatures
from tasks.deliver.receipts import (
    ParseError,
    Receipt,
    open_pubsub,
    parse_rbm,
    parse_sendgrid,
    parse_twilio,
    parse_whatsapp,
    unsubscribe_receipt,
)
from tasks.deliver.serving import ThreadedServer
from tasks.ledger.db import engine_for, migrate
from tasks.ledger.receipts import Recorded, TouchRef, ping, record_receipts, touch_by_ref

log = logging.getLogger("cadencia.webhooks")

# What the local provider sandbox signs with when no secret is configured.
SANDBOX_SECRETS = {
    "meta_app_secret": "sandbox-meta-secret",
    "rbm_client_token": "sandbox-rbm-token",
    "twilio_auth_token": "sandbox",
}
MAX_BODY = 5 * 1024 * 1024  # a full SendGrid batch is ~1 MB
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Secrets:
    """The verification secrets in effect (sandbox defaults filled in), None when unset."""

    meta_app_secret: str | None
    meta_verify_token: str | None
    rbm_client_token: str | None
    twilio_auth_token: str | None
    sendgrid_public_key: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Secrets:
        sandbox = settings.provider_mode == "sandbox"

        def pick(name: str) -> str | None:
            value = getattr(settings, name)
            if value is not None:
                text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
                return str(text) or None
            return SANDBOX_SECRETS.get(name) if sandbox else None

        return cls(
            meta_app_secret=pick("meta_app_secret"),
            meta_verify_token=pick("meta_verify_token"),
            rbm_client_token=pick("rbm_client_token"),
            twilio_auth_token=pick("twilio_auth_token"),
            sendgrid_public_key=pick("sendgrid_webhook_public_key"),
        )


def _refuse(status: int, provider: str, why: str) -> Response:
    log.warning("%s webhook refused (%d): %s", provider, status, why)
    return PlainTextResponse(why, status)


def _unconfigured(provider: str, setting: str) -> Response:
    return _refuse(403, provider, f"no secret to verify with: set CADENCIA_{setting.upper()}")


def public_url(request: Request, base: str | None) -> str:
    """The URL as the provider called it (what Twilio signs). Behind a proxy the app sees its
    own scheme and host, so the public base (`webhooks_url`) is used when set; a base path that
    the proxy strips (https://host/prefix) is put back in front of the app's path."""
    if not base:
        return str(request.url)
    parts = urlsplit(base.rstrip("/"))
    path = request.url.path
    if not (parts.path and (path == parts.path or path.startswith(parts.path + "/"))):
        path = parts.path + path
    return urlunsplit((parts.scheme, parts.netloc, path, request.url.query, ""))


class _Receiver:
    """The endpoints, sharing the settings, the secrets and the ledger engine."""

    def __init__(self, settings: Settings, engine: sa.Engine) -> None:
        self.settings = settings
        self.secrets = Secrets.from_settings(settings)
        self.engine = engine

    async def _body(self, request: Request) -> bytes | Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY:
            return PlainTextResponse("body too large", 413)
        body = await request.body()
        return body if len(body) <= MAX_BODY else PlainTextResponse("body too large", 413)

    async def _record(self, provider: str, receipts: Sequence[Receipt]) -> Recorded:
        result = await run_in_threadpool(record_receipts, self.engine, receipts)
        log.info(
            "%s webhook: %d event(s), %d new, %d matched, %d delivery update(s), "
            "%d reconciled, %d fallback(s), %d suppression(s)",
            provider, result.received, result.new, result.matched, result.delivery_updated,
            result.reconciled, result.fallbacks, result.suppressions,
        )  # fmt: skip
        return result

    async def _accepted(self, provider: str, receipts: Sequence[Receipt]) -> Response:
        result = await self._record(provider, receipts)
        return JSONResponse({"received": result.received, "new": result.new})

    # --- WhatsApp ------------------------------------------------------------------------

    async def whatsapp_verify(self, request: Request) -> Response:
        """Meta's subscription handshake: echo the challenge if the verify token matches."""
        q = request.query_params
        token, expected = q.get("hub.verify_token") or "", self.secrets.meta_verify_token
        if expected is None:
            return _unconfigured("whatsapp", "meta_verify_token")
        if q.get("hub.mode") != "subscribe" or not hmac.compare_digest(
            token.encode(), expected.encode()
        ):
            return _refuse(403, "whatsapp", "verification token mismatch")
        return PlainTextResponse(q.get("hub.challenge") or "")

    async def whatsapp(self, request: Request) -> Response:
        header = request.headers.get("x-hub-signature-256")
        if not header:
            return _refuse(401, "whatsapp", "missing X-Hub-Signature-256")
        if self.secrets.meta_app_secret is None:
            return _unconfigured("whatsapp", "meta_app_secret")
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if not signatures.verify_meta(self.secrets.meta_app_secret, body, header):
            return _refuse(403, "whatsapp", "invalid X-Hub-Signature-256")
        return await self._parsed("whatsapp", lambda: parse_whatsapp(body, _now()))

    # --- RBM -----------------------------------------------------------------------------

    async def rbm(self, request: Request) -> Response:
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        token = self.secrets.rbm_client_token
        handshake = _rbm_handshake(body)
        if handshake is not None:
            client_token, secret = handshake
            if token is None:
                return _unconfigured("rbm", "rbm_client_token")
            if not hmac.compare_digest(client_token.encode(), token.encode()):
                return _refuse(403, "rbm", "webhook verification: clientToken mismatch")
            return PlainTextResponse(secret)
        header = request.headers.get("x-goog-signature")
        if not header:
            return _refuse(401, "rbm", "missing X-Goog-Signature")
        if token is None:
            return _unconfigured("rbm", "rbm_client_token")
        try:
            message = open_pubsub(body)
        except ParseError as exc:
            return _refuse(400, "rbm", str(exc))
        if not signatures.verify_rbm(token, message.data, header):
            return _refuse(403, "rbm", "invalid X-Goog-Signature")
        return await self._parsed("rbm", lambda: parse_rbm(message, _now()))

    # --- SendGrid ------------------------------------------------------------------------

    async def sendgrid(self, request: Request) -> Response:
        signature = request.headers.get("x-twilio-email-event-webhook-signature")
        timestamp = request.headers.get("x-twilio-email-event-webhook-timestamp")
        if not signature or not timestamp:
            return _refuse(401, "sendgrid", "missing X-Twilio-Email-Event-Webhook-* headers")
        key = self.secrets.sendgrid_public_key
        if key is None:
            where = (self.settings.sandbox_url or "{sandbox}").rstrip("/")
            hint = f" (the sandbox publishes its key at GET {where}/_sandbox/keys)"
            sandbox = self.settings.provider_mode == "sandbox"
            return _refuse(
                403,
                "sendgrid",
                "no public key to verify with: set CADENCIA_SENDGRID_WEBHOOK_PUBLIC_KEY"
                + (hint if sandbox else ""),
            )
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if not signatures.verify_sendgrid(key, timestamp, body, signature):
            return _refuse(403, "sendgrid", "invalid event webhook signature")
        return await self._parsed("sendgrid", lambda: parse_sendgrid(body, _now()))

    # --- Twilio --------------------------------------------------------------------------

    async def twilio(self, request: Request) -> Response:
        header = request.headers.get("x-twilio-signature")
        if not header:
            return _refuse(401, "twilio", "missing X-Twilio-Signature")
        if self.secrets.twilio_auth_token is None:
            return _unconfigured("twilio", "twilio_auth_token")
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        try:
            params = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError):
            return _refuse(400, "twilio", "body is not form data")
        url = public_url(request, self.settings.webhooks_url)
        if not signatures.verify_twilio(self.secrets.twilio_auth_token, url, params, header):
            return _refuse(403, "twilio", "invalid X-Twilio-Signature (for the URL as rebuilt)")
        form = dict(params)
        ref = request.query_params.get("ref")
        response = await self._parsed("twilio", lambda: parse_twilio(form, ref, _now()))
        if response.status_code != 200:
            return response
        return Response(TWIML_EMPTY, 200, media_type="application/xml")

    async def _parsed(self, provider: str, parse: Callable[[], list[Receipt]]) -> Response:
        try:
            receipts = parse()
        except ParseError as exc:
            return _refuse(400, provider, str(exc))
        return await self._accepted(provider, receipts)

    # --- one-click unsubscribe (RFC 8058) --------------------------------------------------

    async def _touch(self, request: Request) -> tuple[str, TouchRef] | Response:
        ref = request.path_params["ref"]
        try:
            ref = str(uuid.UUID(ref))
        except ValueError:
            return PlainTextResponse("not found", 404)
        touch = await run_in_threadpool(touch_by_ref, self.engine, ref)
        if touch is None:
            return PlainTextResponse("not found", 404)
        return ref, touch

    async def unsubscribe_page(self, request: Request) -> Response:
        """A confirmation page: link scanners GET every link, so only the POST unsubscribes."""
        found = await self._touch(request)
        if isinstance(found, Response):
            return found
        return HTMLResponse(_page(self.settings.company_name, done=False))

    async def unsubscribe(self, request: Request) -> Response:
        found = await self._touch(request)
        if isinstance(found, Response):
            return found
        ref, touch = found
        body = await self._body(request)
        if isinstance(body, Response):
            return body
        if not one_click(body, request.headers.get("content-type", "")):
            return PlainTextResponse("expected List-Unsubscribe=One-Click", 400)
        receipt = unsubscribe_receipt(ref, touch.channel or "email", _now())
        await self._record("unsubscribe", [receipt])
        return HTMLResponse(_page(self.settings.company_name, done=True))

    async def health(self, request: Request) -> Response:
        try:
            await run_in_threadpool(ping, self.engine)
        except sa.exc.SQLAlchemyError:
            log.exception("health: ledger unreachable")
            return JSONResponse({"status": "error", "ledger": "unreachable"}, 503)
        return JSONResponse({"status": "ok"})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def one_click(body: bytes, content_type: str) -> bool:
    """Whether a POST says `List-Unsubscribe=One-Click`. RFC 8058 allows both form encodings,
    and some mailbox providers send multipart/form-data (parsed with the stdlib, no extra
    dependency)."""
    if content_type.lower().startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
        message = BytesParser(policy=HTTP).parsebytes(head + body)
        if not isinstance(message, EmailMessage) or not message.is_multipart():
            return False
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "List-Unsubscribe":
                return str(part.get_content()).strip() == "One-Click"
        return False
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return form.get("List-Unsubscribe", "").strip() == "One-Click"


def _rbm_handshake(body: bytes) -> tuple[str, str] | None:
    """RBM's webhook verification request `{"clientToken", "secret"}`, if that is what this is."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or "message" in data:
        return None
    token, secret = data.get("clientToken"), data.get("secret")
    if isinstance(token, str) and isinstance(secret, str):
        return token, secret
    return None


def _page(company: str, done: bool) -> str:
    name = html.escape(company)
    if done:
        inner = f"<p>You will no longer receive these emails from {name}.</p>"
    else:
        inner = (
            f"<p>Stop receiving these emails from {name}?</p>"
            '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit">Unsubscribe</button></form>'
        )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex">'
        f"<title>Unsubscribe</title></head><body>{inner}</body></html>"
    )


def create_webhook_app(settings: Settings, ledger_url: str) -> Starlette:
    """The receiver for one ledger. Migrates the ledger first (a no-op at head)."""
    migrate(ledger_url)
    receiver = _Receiver(settings, engine_for(ledger_url))
    s = receiver.secrets
    log.info(
        "webhooks: verification %s",
        ", ".join(
            f"{name} {'on' if value else 'UNSET (refused)'}"
            for name, value in (
                ("whatsapp", s.meta_app_secret), ("rbm", s.rbm_client_token),
                ("twilio", s.twilio_auth_token), ("sendgrid", s.sendgrid_public_key),
            )
        ),
    )  # fmt: skip
    routes: list[tuple[str, Handler, list[str]]] = [
        ("/webhooks/whatsapp", receiver.whatsapp_verify, ["GET"]),
        ("/webhooks/whatsapp", receiver.whatsapp, ["POST"]),
        ("/webhooks/rbm", receiver.rbm, ["POST"]),
        ("/webhooks/sendgrid", receiver.sendgrid, ["POST"]),
        ("/webhooks/twilio", receiver.twilio, ["POST"]),
        ("/unsubscribe/{ref}", receiver.unsubscribe_page, ["GET"]),
        ("/unsubscribe/{ref}", receiver.unsubscribe, ["POST"]),
        ("/health", receiver.health, ["GET"]),
    ]
    return Starlette(routes=[Route(path, fn, methods=methods) for path, fn, methods in routes])


def serve_webhooks(
    host: str = "127.0.0.1", port: int = 8788, settings: Settings | None = None
) -> None:
    """Serve the receiver until interrupted (`cadencia webhooks`)."""
    # uvicorn's own log setup, plus our lines (they name no number or address), set up before
    # the app so that its start-up line (which verifications are on) shows too.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["cadencia"] = {"handlers": ["default"], "level": "INFO"}
    logging.config.dictConfig(log_config)
    settings = settings or get_settings()
    app = create_webhook_app(settings, settings.ledger_url)
    uvicorn.run(app, host=host, port=port, proxy_headers=True, access_log=False, log_config=None)


WebhookServer = ThreadedServer  # a receiver running on a background thread


def start_webhooks_in_thread(
    settings: Settings, ledger_url: str, port: int = 0, host: str = "127.0.0.1"
) -> WebhookServer:
    """Start the receiver on `host:port` (0: any free port) and return once it accepts."""
    app = create_webhook_app(settings, ledger_url)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    return ThreadedServer(config, host, port).start()
