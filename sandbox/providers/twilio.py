"""Twilio Messages and Calls: form-encoded `POST /2010-04-01/Accounts/{AccountSid}/...json`
with Basic auth. Twilio has no echo field, so our ref rides as `ref` in the StatusCallback URL;
the callbacks are signed with the Auth Token the request authenticated with.
"""

from __future__ import annotations

import email.utils
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from sandbox.providers.base import (
    E164,
    Emulator,
    Ids,
    Message,
    Reject,
    basic,
    json_response,
    retry_header,
    text,
)

API = "2010-04-01"


def twilio_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        headers,
    )


def _invalid(code: int, message: str) -> Reject:
    return Reject("invalid_request", twilio_error(400, code, message))


def _ref(callback: str | None) -> str | None:
    if not callback:
        return None
    values = parse_qs(urlsplit(callback).query).get("ref")
    return values[0] if values else None


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class _Twilio(Emulator):
    resource = ""
    sid_prefix = ""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.ids = Ids()

    def parse(self, request: Request, body: bytes) -> Message | Reject:
        account_sid = request.path_params["account_sid"]
        credentials = basic(request)
        # The Account SID and Auth Token, or an API key (SK...) and its secret.
        if (
            credentials is None
            or not credentials[1]
            or (credentials[0] != account_sid and not credentials[0].startswith("SK"))
        ):
            return Reject("unauthorized", twilio_error(401, 20003, "Authenticate"))
        try:
            form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            return _invalid(21601, "The request body is not valid form data.")
        to = form.get("To")
        if not to:
            return _invalid(21604, "A 'To' phone number is required.")
        number = to.removeprefix("whatsapp:")
        if not E164.match(number):
            return _invalid(21211, f"The 'To' number {to} is not a valid phone number.")
        problem = self.check(form)
        if problem is not None:
            return problem
        callback = form.get("StatusCallback") or None
        if callback is not None and not _is_http_url(callback):
            return _invalid(21609, f"The StatusCallback URL {callback} is not a valid URL.")
        extra = {"account_sid": account_sid, "auth_token": credentials[1], "callback": callback}
        return Message(_ref(callback), number, form, extra)

    def check(self, form: dict[str, str]) -> Reject | None:
        raise NotImplementedError

    def new_id(self, message: Message) -> str:
        return self.ids.hex(self.sid_prefix)

    def resource_fields(self, message: Message, sid: str) -> dict[str, Any]:
        raise NotImplementedError

    def answer(self, message: Message, provider_id: str, entry: dict[str, Any]) -> Response:
        account_sid = message.extra["account_sid"]
        now = email.utils.formatdate(entry["at"], usegmt=True)
        fields = {
            "sid": provider_id,
            "account_sid": account_sid,
            "date_created": now,
            "date_updated": now,
            "api_version": API,
            "uri": f"/{API}/Accounts/{account_sid}/{self.resource}/{provider_id}.json",
        }
        fields.update(self.resource_fields(message, provider_id))
        return json_response(201, fields)

    def throttled(self, retry_in: float, reset_at: float, limit: float) -> Response:
        return twilio_error(429, 20429, "Too Many Requests", retry_header(retry_in))

    def transient(self, status: int, retry_after: int | None) -> Response:
        message = "Service Unavailable" if status == 503 else "Internal Server Error"
        return twilio_error(status, 20000 + status, message, retry_header(retry_after))


class TwilioSms(_Twilio):
    key = "twilio_sms"
    routes = (("/2010-04-01/Accounts/{account_sid}/Messages.json", ("POST",)),)
    resource = "Messages"
    sid_prefix = "SM"

    def check(self, form: dict[str, str]) -> Reject | None:
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return _invalid(21603, "A 'From' phone number is required.")
        if not (text(form.get("Body")) or form.get("ContentSid") or form.get("MediaUrl")):
            return _invalid(21602, "Message body is required.")
        return None

    def resource_fields(self, message: Message, sid: str) -> dict[str, Any]:
        form = message.request
        body = form.get("Body", "")
        return {
            "from": form.get("From"),
            "to": form["To"],
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": body,
            "status": "queued",
            "num_segments": str(1 if len(body) <= 160 else -(-len(body) // 153)),  # GSM-7 sizes
            "num_media": "0",
            "direction": "outbound-api",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_sent": None,
        }

    def permanent(self, kind: str, message: Message) -> Response | None:
        if kind == "stop":
            return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        if kind == "invalid":
            to = message.request["To"]
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        return None


class TwilioCalls(_Twilio):
    key = "twilio_calls"
    routes = (("/2010-04-01/Accounts/{account_sid}/Calls.json", ("POST",)),)
    resource = "Calls"
    sid_prefix = "CA"

    def check(self, form: dict[str, str]) -> Reject | None:
        if not form.get("From"):
            return _invalid(21213, "No 'From' number is specified")
        if not (text(form.get("Twiml")) or text(form.get("Url")) or form.get("ApplicationSid")):
            return _invalid(21205, "Url, Twiml or ApplicationSid parameter is required.")
        return None

    def resource_fields(self, message: Message, sid: str) -> dict[str, Any]:
        form = message.request
        return {
            "from": form["From"],
            "to": form["To"],
            "status": "queued",
            "direction": "outbound-api",
            "start_time": None,
            "end_time": None,
            "duration": None,
            "price": None,
            "parent_call_sid": None,
            "answered_by": None,
        }

    def permanent(self, kind: str, message: Message) -> Response | None:
        if kind == "invalid":
            return twilio_error(400, 21217, "Phone number does not appear to be valid")
        return None
