"""Our own endpoints on the customer's side: the call-task webhook (a person phones the
contact) and in-app notifications. Plain JSON errors, since there is no provider to imitate."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.providers.base import (
    INVALID,
    Emulator,
    Ids,
    Message,
    Reject,
    bearer,
    json_response,
    load_json,
    retry_header,
    text,
)


def plain_error(
    status: int, error: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response(status, {"error": error, "message": message}, headers)


def _fields(
    body: bytes, required: tuple[str, ...], optional: dict[str, type]
) -> dict[str, Any] | Reject:
    data = load_json(body)
    if data is INVALID or not isinstance(data, dict):
        return Reject("invalid_request", plain_error(400, "invalid_request", "JSON object needed"))
    for name in required:
        if text(data.get(name)) is None:
            return Reject(
                "invalid_request", plain_error(400, "invalid_request", f"'{name}' is required")
            )
    for name, kind in optional.items():
        if data.get(name) is not None and not isinstance(data[name], kind):
            return Reject(
                "invalid_request",
                plain_error(400, "invalid_request", f"'{name}' must be {kind.__name__}"),
            )
    return data


class _Internal(Emulator):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.ids = Ids()

    def throttled(self, retry_in: float, reset_at: float, limit: float) -> Response:
        return plain_error(429, "rate_limited", "Too many requests", retry_header(retry_in))

    def transient(self, status: int, retry_after: int | None) -> Response:
        return plain_error(status, "unavailable", "Try again later", retry_header(retry_after))


class CallWebhook(_Internal):
    key = "call_webhook"
    routes = (("/hooks/call-tasks", ("POST",)),)

    def parse(self, request: Request, body: bytes) -> Message | Reject:
        data = _fields(body, ("ref", "assignee", "subject"), {"brief": str, "context": dict})
        if isinstance(data, Reject):
            return data
        return Message(data["ref"], data["ref"], data)

    def new_id(self, message: Message) -> str:
        return self.ids.hex("call_")

    def answer(self, message: Message, provider_id: str, entry: dict[str, Any]) -> Response:
        return json_response(202, {"ref": message.ref, "status": "queued"})


class InApp(_Internal):
    key = "in_app"
    routes = (("/in-app/notifications", ("POST",)),)

    def parse(self, request: Request, body: bytes) -> Message | Reject:
        if bearer(request) is None:
            return Reject("unauthorized", plain_error(401, "unauthorized", "Bearer token needed"))
        data = _fields(body, ("ref", "user_id", "title"), {"body": str, "url": str})
        if isinstance(data, Reject):
            return data
        return Message(data["ref"], data["user_id"], data)

    def new_id(self, message: Message) -> str:
        return self.ids.hex("ntf_")

    def answer(self, message: Message, provider_id: str, entry: dict[str, Any]) -> Response:
        return json_response(202, {"id": provider_id, "status": "queued"})
