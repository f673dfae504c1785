"""WhatsApp Business Cloud API (Meta Graph): `POST /{version}/{phone_number_id}/messages`.

Meta branches on `error.code`, not on the HTTP status: throttling (130429) is an HTTP 400 like
a validation error, which is exactly what a client must get right, so the sandbox does the same.
"""

from __future__ import annotations

import re
import secrets
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

VERSION = re.compile(r"^v[0-9]+(\.[0-9]+)?$")
DIGITS = re.compile(r"^[1-9][0-9]{6,14}$")


def graph_error(
    status: int,
    code: int,
    message: str,
    details: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    error_type: str = "OAuthException",
) -> Response:
    error: dict[str, Any] = {"message": f"(#{code}) {message}", "type": error_type, "code": code}
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(15)
    return json_response(status, {"error": error}, headers)


def _invalid(details: str) -> Reject:
    return Reject("invalid_request", graph_error(400, 100, "Invalid parameter", details))


class WhatsApp(Emulator):
    key = "whatsapp"
    routes = (("/{version}/{phone_number_id}/messages", ("POST",)),)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.ids = Ids()

    def parse(self, request: Request, body: bytes) -> Message | Reject:
        version = request.path_params["version"]
        if not VERSION.match(version):
            return Reject(
                "not_found",
                graph_error(400, 2500, f"Unknown path components: /{version}"),
            )
        if bearer(request) is None:
            return Reject(
                "unauthorized",
                json_response(
                    401,
                    {
                        "error": {
                            "message": "Invalid OAuth access token - Cannot parse access token",
                            "type": "OAuthException",
                            "code": 190,
                            "fbtrace_id": "A" + secrets.token_urlsafe(15),
                        }
                    },
                ),
            )
        data = load_json(body)
        if data is INVALID or not isinstance(data, dict):
            return _invalid("The request body must be a JSON object")
        if data.get("messaging_product") != "whatsapp":
            return _invalid("The parameter messaging_product is required and must be 'whatsapp'")
        to = data.get("to")
        if not isinstance(to, str) or not to:
            return _invalid("The parameter to is required")
        if not DIGITS.match(to):
            return _invalid(f"Recipient phone number {to!r} is not valid (digits, no '+')")
        kind = data.get("type", "text")
        if kind == "template":
            problem = self._template(data.get("template"))
            if problem is not None:
                return problem
        elif kind == "text":
            body_text = data.get("text")
            if not isinstance(body_text, dict) or text(body_text.get("body")) is None:
                return _invalid("The parameter text['body'] is required")
        else:
            return _invalid(f"Unsupported message type {kind!r} (sandbox: template or text)")
        ref = data.get("biz_opaque_callback_data")
        return Message(
            ref if isinstance(ref, str) and ref else None,
            "+" + to,
            data,
            {"wa_id": to, "phone_number_id": request.path_params["phone_number_id"]},
        )

    def _template(self, template: Any) -> Reject | None:
        if not isinstance(template, dict):
            return _invalid("The parameter template is required")
        name = text(template.get("name"))
        language = template.get("language")
        code = text(language.get("code")) if isinstance(language, dict) else None
        if name is None:
            return _invalid("The parameter template['name'] is required")
        if code is None:
            return _invalid("The parameter template['language']['code'] is required")
        components = template.get("components", [])
        if not isinstance(components, list):
            return _invalid("template['components'] must be an array")
        count = 0
        for component in components:
            parameters = component.get("parameters", []) if isinstance(component, dict) else None
            if not isinstance(parameters, list):
                return _invalid("template['components'][]['parameters'] must be an array")
            count += len(parameters)
        approved = self.settings.templates
        if approved is None:
            return None
        languages = approved.get(name)
        if languages is None or code not in languages:
            return Reject(
                "unknown_template",
                graph_error(
                    400,
                    132001,
                    "Template name does not exist in the translation",
                    f"template name ({name}) does not exist in {code}",
                ),
            )
        if languages[code] != count:
            return Reject(
                "template_params",
                graph_error(
                    400,
                    132000,
                    "Number of parameters does not match the expected number of params",
                    f"body: number of localizable_params ({count}) does not match the expected "
                    f"number of params ({languages[code]})",
                ),
            )
        return None

    def new_id(self, message: Message) -> str:
        return "wamid." + self.ids.hex("HBgL")

    def answer(self, message: Message, provider_id: str, entry: dict[str, Any]) -> Response:
        wa_id = message.extra["wa_id"]
        return json_response(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": wa_id, "wa_id": wa_id}],
                "messages": [{"id": provider_id}],
            },
        )

    def throttled(self, retry_in: float, reset_at: float, limit: float) -> Response:
        return graph_error(
            400,
            130429,
            "Rate limit hit",
            "Cloud API message throughput has been reached.",
        )

    def transient(self, status: int, retry_after: int | None) -> Response:
        return graph_error(
            status,
            2,
            "Service temporarily unavailable",
            headers=retry_header(retry_after),
        )

    def permanent(self, kind: str, message: Message) -> Response | None:
        if kind == "undeliverable":
            return graph_error(
                400,
                131026,
                "Message Undeliverable",
                "Unable to deliver message. The recipient may not be on WhatsApp.",
            )
        if kind == "invalid":
            return graph_error(400, 100, "Invalid parameter", "Recipient phone number not valid")
        return None
