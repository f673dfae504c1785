"""SendGrid v3 `POST /v3/mail/send`: 202 with an empty body and `X-Message-Id`; every event's
`sg_message_id` starts with that id, and our ref comes back as the `cadencia_ref` custom arg.
One request is recorded as one message, addressed to the first recipient.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.providers.base import (
    EMAIL,
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

HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"


def sendgrid_error(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    error: dict[str, Any] = {"message": message, "field": field}
    if field is not None:
        error["help"] = f"{HELP}#message.{field.split('.')[0]}"
    return json_response(status, {"errors": [error]}, headers)


def _invalid(message: str, field: str | None) -> Reject:
    return Reject("invalid_request", sendgrid_error(400, message, field))


class SendGrid(Emulator):
    key = "sendgrid"
    routes = (("/v3/mail/send", ("POST",)),)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.ids = Ids()

    def parse(self, request: Request, body: bytes) -> Message | Reject:
        token = bearer(request)
        if token is None or not token.startswith("SG."):
            return Reject(
                "unauthorized",
                sendgrid_error(
                    401, "The provided authorization grant is invalid, expired, or revoked"
                ),
            )
        data = load_json(body)
        if data is INVALID or not isinstance(data, dict):
            return _invalid("Bad Request", None)
        personalizations = data.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            return _invalid(
                "The personalizations field is required and must have at least one "
                "personalization.",
                "personalizations",
            )
        for i, personalization in enumerate(personalizations):
            to = personalization.get("to") if isinstance(personalization, dict) else None
            if not isinstance(to, list) or not to:
                return _invalid(
                    "The to array is required for all personalization objects, and must have "
                    "at least one email object with a valid email address.",
                    f"personalizations.{i}.to",
                )
            for j, recipient in enumerate(to):
                address = recipient.get("email") if isinstance(recipient, dict) else None
                if not isinstance(address, str) or not EMAIL.match(address):
                    return _invalid(
                        "Does not contain a valid address.", f"personalizations.{i}.to.{j}.email"
                    )
        sender = data.get("from")
        address = sender.get("email") if isinstance(sender, dict) else None
        if not isinstance(address, str) or not EMAIL.match(address):
            return _invalid(
                "The from object must be provided for every email send. It is an object that "
                "requires an email parameter, but may also contain a name parameter.",
                "from.email",
            )
        templated = bool(data.get("template_id"))
        first = personalizations[0]
        if not templated and not (text(data.get("subject")) or text(first.get("subject"))):
            return _invalid("The subject is required.", "subject")
        content = data.get("content")
        if not templated and not _has_content(content):
            return _invalid(
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block.",
                "content",
            )
        headers = data.get("headers")
        if headers is not None and not isinstance(headers, dict):
            return _invalid("Invalid type. Expected: object, given: other.", "headers")
        custom_args = first.get("custom_args") or {}
        if not isinstance(custom_args, dict):
            return _invalid("Invalid type. Expected: object, given: other.", "custom_args")
        ref = custom_args.get("cadencia_ref")
        email = first["to"][0]["email"]
        extra = {"custom_args": custom_args, "content": content or []}
        return Message(ref if isinstance(ref, str) and ref else None, email, data, extra)

    def new_id(self, message: Message) -> str:
        return self.ids.url_safe()

    def answer(self, message: Message, provider_id: str, entry: dict[str, Any]) -> Response:
        return Response(b"", 202, {"X-Message-Id": provider_id})

    def throttled(self, retry_in: float, reset_at: float, limit: float) -> Response:
        headers = {
            "X-RateLimit-Limit": str(int(limit)),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(math.ceil(reset_at)),
        }
        return sendgrid_error(429, "too many requests", None, headers)

    def transient(self, status: int, retry_after: int | None) -> Response:
        message = "Service Unavailable" if status == 503 else "Internal Server Error"
        return sendgrid_error(status, message, None, retry_header(retry_after))

    def permanent(self, kind: str, message: Message) -> Response | None:
        if kind == "invalid":
            return sendgrid_error(
                400, "Does not contain a valid address.", "personalizations.0.to.0.email"
            )
        return None


def _has_content(content: Any) -> bool:
    return (
        isinstance(content, list)
        and bool(content)
        and all(
            isinstance(c, dict) and text(c.get("type")) and isinstance(c.get("value"), str)
            for c in content
        )
    )
