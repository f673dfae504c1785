"""WhatsApp Business Cloud API: approved template messages (business-initiated messages must be
templates). Meta answers throttling with HTTP 400 and a code, so classify on `error.code`."""

from __future__ import annotations

import httpx

from tasks.deliver.providers.base import (
    HttpProvider,
    Message,
    Result,
    http_status_result,
    json_or_none,
)

RETRYABLE = {2, 4, 80007, 130429, 131016, 131056, 131057}
# Unknown error: it may have been accepted (not on the safe-to-retry list).
AMBIGUOUS = {1}
AUTH = {190}
# Not on WhatsApp / cannot receive: another channel may reach the person.
UNDELIVERABLE = {131026}
# Quality or per-user marketing limits: do not resend now, and do not hammer another channel.
HOLD_BACK = {131048, 131049}


class WhatsAppCloud(HttpProvider):
    name = "whatsapp"

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, version: str, phone_number_id: str,
        token: str,
    ) -> None:  # fmt: skip
        super().__init__(client)
        self._url = f"{base_url.rstrip('/')}/{version}/{phone_number_id}/messages"
        self._headers = {"Authorization": f"Bearer {token}"}

    def payload(self, message: Message) -> dict:
        r = message.rendered
        parameters = [{"type": "text", "text": p} for p in r.wa_parameters]
        template: dict = {"name": r.wa_name, "language": {"code": r.wa_language}}
        if parameters:
            template["components"] = [{"type": "body", "parameters": parameters}]
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.to.lstrip("+"),
            "type": "template",
            "template": template,
            "biz_opaque_callback_data": message.ref,
        }

    async def send(self, message: Message) -> Result:
        response = await self._request(
            "POST", self._url, json=self.payload(message), headers=self._headers
        )
        if isinstance(response, Result):
            return response
        body = json_or_none(response)
        if response.status_code == 200 and isinstance(body, dict) and body.get("messages"):
            return Result("sent", provider_id=str(body["messages"][0].get("id")))
        if response.is_success:  # accepted, but no id came back: webhooks will tell
            return Result("sent")
        error = body.get("error", {}) if isinstance(body, dict) else {}
        code = error.get("code")
        detail = error.get("message") or response.reason_phrase
        if code in AUTH:
            return Result("retryable", code=str(code), detail=detail, stall=True)
        if code in AMBIGUOUS:
            return Result("ambiguous", code=str(code), detail=detail)
        if code in RETRYABLE:
            return Result("retryable", code=str(code), detail=detail, retry_after=None)
        if code in UNDELIVERABLE:
            return Result("permanent", code=str(code), detail=detail, fall_back=True,
                          suppress="whatsapp undeliverable")  # fmt: skip
        if code in HOLD_BACK:
            return Result("permanent", code=str(code), detail=detail)
        if code is not None and response.status_code < 500:
            return Result("permanent", code=str(code), detail=detail)
        return http_status_result(response, str(code) if code else None, detail)
