"""Google RCS Business Messaging: `POST /v1/phones/{E.164}/agentMessages?messageId=&agentId=`.

`messageId` is Google's idempotency key: a reused id from the same agent is answered like the
first time but not delivered (nor recorded) again, which is what makes RBM retries safe.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.providers.base import (
    E164,
    INVALID,
    Emulator,
    Message,
    Reject,
    bearer,
    json_response,
    load_json,
    retry_header,
    text,
)

CONTENT_KINDS = ("text", "richCard", "uploadedRbmFile", "contentInfo")


def google_error(status: int, state: str, message: str, headers: dict | None = None) -> Response:
    return json_response(
        status, {"error": {"code": status, "message": message, "status": state}}, headers
    )


def _invalid(message: str) -> Reject:
    return Reject("invalid_request", google_error(400, "INVALID_ARGUMENT", message))


def rfc3339(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="microseconds")[:-6] + "Z"


class Rbm(Emulator):
    key = "rbm"
    routes = (("/v1/phones/{phone}/agentMessages", ("POST",)),)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sent: dict[tuple[str, str], dict[str, str]] = {}

    def parse(self, request: Request, body: bytes) -> Message | Reject:
        if bearer(request) is None:
            return Reject(
                "unauthorized",
                google_error(
                    401,
                    "UNAUTHENTICATED",
                    "Request is missing required authentication credential. Expected OAuth 2 "
                    "access token, login cookie or other valid authentication credential.",
                ),
            )
        phone = request.path_params["phone"]
        if not E164.match(phone):
            return _invalid(f"Invalid phone number: {phone!r} is not in E.164 format")
        query = request.query_params
        message_id, agent_id = text(query.get("messageId")), text(query.get("agentId"))
        if message_id is None:
            return _invalid("messageId is required")
        if agent_id is None:
            return _invalid("agentId is required")
        data = load_json(body)
        if data is INVALID or not isinstance(data, dict):
            return _invalid("Invalid JSON payload received.")
        content = data.get("contentMessage")
        if not isinstance(content, dict):
            return _invalid("contentMessage is required")
        kinds = [k for k in CONTENT_KINDS if k in content]
        if len(kinds) != 1:
            return _invalid(f"contentMessage must hold exactly one of {', '.join(CONTENT_KINDS)}")
        if kinds == ["text"] and text(content["text"]) is None:
            return _invalid("contentMessage.text must be a non-empty string")
        suggestions = content.get("suggestions", [])
        if not isinstance(suggestions, list) or len(suggestions) > 11:
            return _invalid("contentMessage.suggestions must be a list of at most 11")
        if "ttl" in data and "expireTime" in data:
            return _invalid("Only one of ttl and expireTime may be set")
        return Message(message_id, phone, data, {"agent_id": agent_id})

    def replay(self, message: Message) -> Response | None:
        first = self.sent.get((message.extra["agent_id"], message.ref or ""))
        return None if first is None else json_response(200, first)

    def new_id(self, message: Message) -> str:
        return f"phones/{message.to}/agentMessages/{message.ref}"

    def answer(self, message: Message, provider_id: str, entry: dict[str, Any]) -> Response:
        created = {"name": provider_id, "sendTime": rfc3339(entry["at"])}
        self.sent[(message.extra["agent_id"], message.ref or "")] = created
        return json_response(200, created)

    def throttled(self, retry_in: float, reset_at: float, limit: float) -> Response:
        return google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Agent messages' of service "
            "'rcsbusinessmessaging.googleapis.com'.",
            retry_header(retry_in),
        )

    def transient(self, status: int, retry_after: int | None) -> Response:
        return google_error(
            status,
            "UNAVAILABLE",
            "The service is currently unavailable.",
            retry_header(retry_after),
        )

    def permanent(self, kind: str, message: Message) -> Response | None:
        if kind == "not_rcs":
            return google_error(404, "NOT_FOUND", "Requested entity was not found.")
        if kind == "invalid":
            return google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
        return None

    def reset(self) -> None:
        self.sent.clear()
