"""Twilio Messages (SMS) and Calls (automated reminder calls). Form-encoded, Basic auth; our ref
rides in the StatusCallback URL because Twilio has no echo field."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from tasks.deliver.providers.base import (
    HttpProvider,
    Message,
    Result,
    http_status_result,
    json_or_none,
    retry_after,
)

RETRYABLE = {20429, 14107, 63017, 63018, 30022}
STOP = {21610}
INVALID_RECIPIENT = {21211, 21614, 21612, 21635, 21217}
AUTH = {20003}


class _Twilio(HttpProvider):
    resource = ""

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, account_sid: str, auth_token: str,
        sender: str, status_callback: str | None,
    ) -> None:  # fmt: skip
        super().__init__(client)
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/{self.resource}"
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._sender = sender
        self._callback = status_callback

    def callback(self, message: Message) -> str | None:
        if not self._callback:
            return None
        joiner = "&" if "?" in self._callback else "?"
        return f"{self._callback}{joiner}{urlencode({'ref': message.ref})}"

    def form(self, message: Message) -> dict[str, str]:
        raise NotImplementedError

    async def send(self, message: Message) -> Result:
        response = await self._request("POST", self._url, data=self.form(message), auth=self._auth)
        if isinstance(response, Result):
            return response
        body = json_or_none(response)
        if response.status_code in (200, 201) and isinstance(body, dict) and body.get("sid"):
            return Result("sent", provider_id=str(body["sid"]))
        code = body.get("code") if isinstance(body, dict) else None
        detail = (body.get("message") if isinstance(body, dict) else None) or response.reason_phrase
        if code in AUTH:
            return Result("retryable", code=str(code), detail=detail, stall=True)
        if code in RETRYABLE or response.status_code == 429:
            return Result("retryable", code=str(code or 429), detail=detail,
                          retry_after=retry_after(response))  # fmt: skip
        if code in STOP:
            return Result("permanent", code=str(code), detail=detail, fall_back=True,
                          suppress="sms stop")  # fmt: skip
        if code in INVALID_RECIPIENT:
            return Result("permanent", code=str(code), detail=detail, fall_back=True)
        if code is not None and response.status_code < 500:
            return Result("permanent", code=str(code), detail=detail)
        return http_status_result(response, str(code) if code else None, detail)


class TwilioSms(_Twilio):
    name = "twilio_sms"
    resource = "Messages.json"

    def form(self, message: Message) -> dict[str, str]:
        form = {"To": message.to, "Body": message.rendered.text}
        key = "MessagingServiceSid" if self._sender.startswith("MG") else "From"
        form[key] = self._sender
        callback = self.callback(message)
        if callback:
            form["StatusCallback"] = callback
        return form


class TwilioCalls(_Twilio):
    name = "twilio_calls"
    resource = "Calls.json"

    def form(self, message: Message) -> dict[str, str]:
        language = "es-ES" if message.locale == "es" else "en-US"
        say = _xml_escape(message.rendered.text)
        form = {
            "To": message.to,
            "From": self._sender,
            "Twiml": f'<Response><Say language="{language}">{say}</Say></Response>',
        }
        callback = self.callback(message)
        if callback:
            form["StatusCallback"] = callback
            form["StatusCallbackEvent"] = "initiated ringing answered completed"
        return form


def _xml_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
