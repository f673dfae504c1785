"""The sandbox as one Starlette app: every provider's send endpoint, the control API under
`/_sandbox`, and the request pipeline they share.

The pipeline, in order: slow_ms → parse and validate (auth, fields, templates) → permanent
recipient faults → rate limit → injected 5xx → idempotent replay → accept (record, answer,
webhooks) → timeout or drop after accepting. Only accepted messages are recorded; everything
else is counted under `rejected[provider][reason]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.callbacks import Callbacks, WebhookConfig
from sandbox.faults import PROVIDERS, Faults, FaultState
from sandbox.providers import build
from sandbox.providers.base import Emulator, Reject, Settings, Templates, json_response
from sandbox.record import Record
from tasks.deliver.signatures import sendgrid_keypair


class ConnectionDropped(Exception):
    """Raised after the response has started, so the server aborts the connection."""


class DropConnection(Response):
    """Half an answer: the status line and headers promise a body that never comes, then the
    server closes the connection. The client sees a protocol error, not a clean 5xx."""

    def __init__(self) -> None:
        super().__init__(b"", 200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )
        raise ConnectionDropped


class _QuietDrops(logging.Filter):
    """uvicorn logs every exception from the app; a deliberate drop is not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


class Sandbox:
    """Everything one running sandbox knows; `app` serves it."""

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        meta_app_secret: str = "sandbox-meta-secret",
        rbm_client_token: str = "sandbox-rbm-token",
        faults: Faults | dict[str, Any] | None = None,
        record_file: str | Path | None = None,
        templates: Templates | None = None,
        webhooks: bool = True,
    ) -> None:
        self.record = Record(record_file)
        self.faults = FaultState(_faults(faults))
        self.emulators = build(Settings(templates=templates))
        self.sendgrid_key, self.sendgrid_public_key = sendgrid_keypair()
        config = WebhookConfig(webhook_url, meta_app_secret, rbm_client_token, webhooks)
        self.callbacks = Callbacks(config, self.record, self.sendgrid_key)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.app = Starlette(routes=self._routes(), lifespan=self._lifespan)
        _install_log_filter()

    def _routes(self) -> list[Route]:
        control = [
            Route("/_sandbox/health", self.health, methods=["GET"]),
            Route("/_sandbox/messages", self.messages, methods=["GET"]),
            Route("/_sandbox/summary", self.summary, methods=["GET"]),
            Route("/_sandbox/faults", self.get_faults, methods=["GET"]),
            Route("/_sandbox/faults", self.set_faults, methods=["POST"]),
            Route("/_sandbox/reset", self.reset, methods=["POST"]),
            Route("/_sandbox/keys", self.keys, methods=["GET"]),
        ]
        providers = [
            Route(path, self._endpoint(emulator), methods=list(methods))
            for emulator in self.emulators.values()
            for path, methods in emulator.routes
        ]
        return control + providers

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        await self.callbacks.open()
        try:
            yield
        finally:
            await self.callbacks.close()
            self.record.close()

    def _endpoint(self, emulator: Emulator) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self.handle(emulator, request)

        return endpoint

    # --- the request pipeline ------------------------------------------------------------------

    async def handle(self, emulator: Emulator, request: Request) -> Response:
        key = emulator.key
        state = self.faults
        if state.random_faults and state.config.slow_ms and state.applies(key):
            await asyncio.sleep(state.config.slow_ms / 1000)
        body = await request.body()
        state = self.faults  # no await below until the record: one fault config throughout
        f = state.config
        scoped = state.random_faults and state.applies(key)
        parsed = emulator.parse(request, body)
        if isinstance(parsed, Reject):
            self.record.reject(key, parsed.reason)
            return parsed.response
        message = parsed
        if f.permanent:
            kind = f.permanent.get(message.to)
            if kind is not None:
                refusal = emulator.permanent(kind, message)
                if refusal is not None:
                    self.record.reject(key, kind)
                    return refusal
                message.late = kind
        now = time.time()  # the same instant for the rate window and the record
        window = state.window(key, now)
        if window is not None:
            limit = f.rate_limit_per_second[key]
            if len(window) + 1 > limit:  # at most `limit` (a float) in any window
                self.record.reject(key, "rate_limited")
                reset_at = (window[0] if window else now) + 1.0
                return emulator.throttled(reset_at - now, reset_at, limit)
        if scoped and state.draw(f.error_rate):
            self.record.reject(key, "server_error")
            return emulator.transient(f.error_status, f.retry_after)
        replayed = emulator.replay(message)
        if replayed is not None:
            return replayed
        provider_id = emulator.new_id(message)
        entry = self.record.accept(key, message.ref, provider_id, message.to, now, message.request)
        if window is not None:
            window.append(now)
        response = emulator.answer(message, provider_id, entry)
        self.callbacks.schedule(key, message, provider_id, f)
        if scoped:
            if state.draw(f.timeout_after_accept_rate):
                await self._hang(f.hang_seconds)
            elif state.draw(f.drop_after_accept_rate):
                return DropConnection()
        return response

    async def _hang(self, seconds: float) -> None:
        """Hold the answer; cut short when the server stops so shutdown does not wait."""
        assert self.stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    # --- control API ---------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return json_response(200, {"status": "ok", "providers": list(PROVIDERS)})

    async def messages(self, request: Request) -> Response:
        query = request.query_params
        entries = self.record.messages(query.get("provider"), query.get("ref"))
        return json_response(200, entries)

    async def summary(self, request: Request) -> Response:
        return json_response(200, self.record.summary())

    async def get_faults(self, request: Request) -> Response:
        return json_response(200, self.faults.config.model_dump(mode="json"))

    async def set_faults(self, request: Request) -> Response:
        body = await request.body()
        try:
            faults = Faults.model_validate_json(body or b"{}")
        except ValidationError as exc:
            problems = exc.errors(include_url=False, include_context=False)
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in problems
            )
            payload = {"detail": f"invalid faults: {detail}", "errors": problems}
            return Response(orjson.dumps(payload, default=str), 422, None, "application/json")
        self.faults = FaultState(faults)
        return json_response(200, faults.model_dump(mode="json"))

    async def reset(self, request: Request) -> Response:
        self.clear()
        return json_response(200, {"status": "reset"})

    async def keys(self, request: Request) -> Response:
        return json_response(200, {"sendgrid_public_key": self.sendgrid_public_key})

    def clear(self) -> None:
        """Forget messages, counters, idempotency keys and pending webhooks; faults off."""
        self.callbacks.cancel()
        self.record.clear()
        self.faults = FaultState(Faults())
        for emulator in self.emulators.values():
            emulator.reset()


def _faults(faults: Faults | dict[str, Any] | None) -> Faults:
    if faults is None:
        return Faults()
    return faults if isinstance(faults, Faults) else Faults.model_validate(faults)


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


def create_app(**options: Any) -> Starlette:
    """The ASGI app alone (e.g. `uvicorn --factory sandbox.app:create_app`)."""
    return Sandbox(**options).app
