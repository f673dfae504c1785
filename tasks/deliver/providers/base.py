"""The one interface every provider implements, and the error classes they share.

A provider turns a rendered `Message` into one request and classifies the answer:
- `sent`: accepted, with the provider's id;
- `retryable`: not processed (throttled, 503, connection refused), safe to send again;
- `permanent`: will never work as is (not on WhatsApp, STOP, invalid number), maybe with a
  suppression to record and a fallback channel to try;
- `ambiguous`: the request went out and no clear answer came back (read timeout, 500/502/504,
  dropped connection): the provider may have accepted it, so it is never blindly re-sent.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from tasks.deliver.templates import Rendered

Outcome = Literal["sent", "retryable", "permanent", "ambiguous"]


@dataclass(frozen=True)
class Message:
    """One touch ready to go: who, what (rendered), and our id for it (`ref`)."""

    touch_id: int
    ref: str
    channel: str
    template: str
    purpose: str
    locale: str
    to: str  # E.164 number, email address, product user id, or the assignee for a call task
    rendered: Rendered
    name: str | None = None
    assignee: str | None = None
    account_id: str | None = None
    golden_id: str | None = None
    case_key: str | None = None
    send_at: dt.datetime | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    provider_id: str | None = None
    code: str | None = None
    detail: str | None = None
    retry_after: float | None = None
    # A permanent failure that says the person must not get this channel again.
    suppress: str | None = None
    # A permanent failure the step's next channel may overcome (RBM 404, not on WhatsApp...).
    fall_back: bool = False
    # Our side is broken (credentials refused): stop this provider for this push, blame no
    # touch, retry nothing.
    stall: bool = False

    @property
    def final(self) -> bool:
        return self.outcome != "retryable"


class Provider(Protocol):
    name: str

    async def send(self, message: Message) -> Result: ...

    async def aclose(self) -> None: ...


class HttpProvider:
    """What the HTTP providers share: one client, one request with its transport failure
    classified, closing. `idempotent` providers deduplicate on our id, so a request that
    may have gone through is simply tried again."""

    name = ""
    idempotent = False

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response | Result:
        try:
            return await self._client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            failure = transport_failure(exc)
            if self.idempotent:
                return Result("retryable", code=failure.code, detail=failure.detail)
            return failure

    async def aclose(self) -> None:
        await self._client.aclose()


def accepted(response: httpx.Response, message: Message, *id_keys: str) -> Result | None:
    """`sent` for a 2xx answer of a simple endpoint, with its id (else our ref)."""
    if response.status_code not in (200, 201, 202):
        return None
    body = json_or_none(response)
    found = [body.get(k) for k in id_keys] if isinstance(body, dict) else []
    ident = next((v for v in found if v), None)
    return Result("sent", provider_id=str(ident or message.ref))


def transport_failure(exc: httpx.TransportError) -> Result:
    """Connection problems before the request left are safe to retry; anything after the
    request was written (read timeout, dropped connection) is ambiguous."""
    before_sending = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
    if isinstance(exc, before_sending):
        return Result("retryable", code=type(exc).__name__, detail=str(exc) or None)
    return Result("ambiguous", code=type(exc).__name__, detail=str(exc) or "no answer")


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds: delay-seconds or an HTTP-date (RFC 9110)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def http_status_result(response: httpx.Response, code: str | None, detail: str | None) -> Result:
    """The classification by HTTP status alone, for answers no provider code explains."""
    status = response.status_code
    if 200 <= status < 300:  # accepted, whatever the body says
        return Result("sent", code=code, detail=detail)
    if status in (401, 403):
        return Result("retryable", code=code or str(status), detail=detail, stall=True)
    if status in (429, 503):
        return Result("retryable", code=code or str(status), detail=detail,
                      retry_after=retry_after(response))  # fmt: skip
    if status in (500, 502, 504):
        return Result("ambiguous", code=code or str(status), detail=detail)
    if status >= 500:
        return Result("retryable", code=code or str(status), detail=detail,
                      retry_after=retry_after(response))  # fmt: skip
    return Result("permanent", code=code or str(status), detail=detail)


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
