"""What every emulated provider implements, and the small helpers they share.

The request pipeline (sandbox/app.py) is the same for all providers: parse and validate,
permanent recipient faults, rate limit, injected 5xx, idempotent replay, accept and record,
answer. A provider only supplies its own shapes: how to read a request, what its answers and
its errors look like. Validation is hand-written (no per-request pydantic) to keep the hot
path lean.
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import orjson
from starlette.requests import Request
from starlette.responses import Response

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
EMAIL = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")

# Templates approved on the (emulated) WhatsApp account: {name: {language code: parameters}}.
Templates = dict[str, dict[str, int]]


@dataclass(slots=True)
class Message:
    """One valid request, before the faults decide its fate."""

    ref: str | None  # our echo id, as the provider will echo it back
    to: str  # recipient as recorded and as `permanent` faults name it
    request: Any  # the parsed body, kept in the record
    extra: dict[str, Any] = field(default_factory=dict)  # what the answer and webhooks need
    late: str | None = None  # a permanent kind that only shows after acceptance


class Reject(NamedTuple):
    reason: str  # the key counted in summary["rejected"][provider]
    response: Response


@dataclass(frozen=True, slots=True)
class Settings:
    templates: Templates | None = None


class Emulator:
    """One provider's API. Subclasses set `key` and `routes` and override the shapes."""

    key: ClassVar[str]
    routes: ClassVar[tuple[tuple[str, tuple[str, ...]], ...]]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def parse(self, request: Request, body: bytes) -> Message | Reject:
        raise NotImplementedError

    def new_id(self, message: Message) -> str:
        raise NotImplementedError

    def answer(self, message: Message, provider_id: str, entry: dict[str, Any]) -> Response:
        raise NotImplementedError

    def throttled(self, retry_in: float, reset_at: float, limit: float) -> Response:
        raise NotImplementedError

    def transient(self, status: int, retry_after: int | None) -> Response:
        raise NotImplementedError

    def permanent(self, kind: str, message: Message) -> Response | None:
        """The immediate answer for a recipient's permanent fault, or None to accept (kinds
        that do not apply to this provider, or that only show in the webhooks)."""
        return None

    def replay(self, message: Message) -> Response | None:
        """The answer to an idempotent re-send (not recorded again), or None."""
        return None

    def reset(self) -> None:
        """Forget idempotency state (POST /_sandbox/reset)."""


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status, headers, "application/json")


def retry_header(seconds: float | None) -> dict[str, str] | None:
    """Retry-After in whole seconds (RFC 9110 delay-seconds), never 0 for a throttle."""
    if seconds is None:
        return None
    return {"Retry-After": str(max(0, int(seconds + 0.999)))}


def load_json(body: bytes) -> Any:
    """The parsed body, or `INVALID` (a distinct sentinel: `null` is valid JSON)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return INVALID


INVALID = object()


def bearer(request: Request) -> str | None:
    value = request.headers.get("authorization")
    if not value or value[:7].lower() != "bearer ":
        return None
    token = value[7:].strip()
    return token or None


def basic(request: Request) -> tuple[str, str] | None:
    value = request.headers.get("authorization")
    if not value or value[:6].lower() != "basic ":
        return None
    try:
        user, sep, password = base64.b64decode(value[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def text(value: Any) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value.strip() else None


class Ids:
    """Unique provider ids without uuid4 per request: a random prefix per sandbox run and a
    counter, so ids never repeat across restarts that share a record file."""

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(8)
        self.counter = itertools.count(1)

    def hex(self, prefix: str) -> str:  # Twilio: 2 letters + 32 hex
        return f"{prefix}{self.nonce}{next(self.counter):016x}"

    def url_safe(self) -> str:  # SendGrid X-Message-Id: 22 url-safe base64 characters
        raw = bytes.fromhex(self.nonce) + next(self.counter).to_bytes(8, "big")
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def digits(self, width: int = 11) -> str:
        return str(int(self.nonce[:6], 16) * 10**width + next(self.counter))
