"""SendGrid v3 mail/send. 202 means queued, not delivered: delivery, opens, clicks and bounces
come back through the event webhook, matched by `custom_args.cadencia_ref`."""

from __future__ import annotations

import httpx

from tasks.deliver.providers.base import (
    HttpProvider,
    Message,
    Result,
    http_status_result,
    json_or_none,
    retry_after,
)


def unsubscribe_headers(url: str | None, mailto: str | None) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe, required by Gmail/Yahoo for bulk marketing mail."""
    targets = [f"<{u}>" for u in (url, f"mailto:{mailto}" if mailto else None) if u]
    if not targets:
        return {}
    headers = {"List-Unsubscribe": ", ".join(targets)}
    if url:
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


class SendGrid(HttpProvider):
    name = "sendgrid"

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, api_key: str, sender: str,
        sender_name: str | None, unsubscribe_mailto: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(client)
        self._url = f"{base_url.rstrip('/')}/v3/mail/send"
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._from = {"email": sender, **({"name": sender_name} if sender_name else {})}
        self._mailto = unsubscribe_mailto

    def payload(self, message: Message) -> dict:
        r = message.rendered
        to = {"email": message.to, **({"name": message.name} if message.name else {})}
        content = [{"type": "text/plain", "value": r.text}]
        if r.html:
            content.append({"type": "text/html", "value": r.html})
        body: dict = {
            "personalizations": [{"to": [to], "custom_args": {"cadencia_ref": message.ref}}],
            "from": self._from,
            "subject": r.subject or "",
            "content": content,
        }
        if message.purpose == "marketing":
            body["headers"] = unsubscribe_headers(r.url, self._mailto)
        return body

    async def send(self, message: Message) -> Result:
        response = await self._request(
            "POST", self._url, json=self.payload(message), headers=self._headers
        )
        if isinstance(response, Result):
            return response
        if response.status_code == 202:
            return Result("sent", provider_id=response.headers.get("x-message-id"))
        body = json_or_none(response)
        errors = body.get("errors", []) if isinstance(body, dict) else []
        detail = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict)) or None
        if response.status_code == 429:
            return Result("retryable", code="429", detail=detail, retry_after=_reset(response))
        if response.status_code == 400 and any(
            str(e.get("field", "")).startswith("personalizations") for e in errors
        ):
            return Result("permanent", code="400", detail=detail, fall_back=True)
        return http_status_result(response, None, detail or response.reason_phrase)


def _reset(response: httpx.Response) -> float | None:
    """SendGrid says when the window resets (epoch seconds) rather than Retry-After."""
    after = retry_after(response)
    if after is not None:
        return after
    reset = response.headers.get("x-ratelimit-reset")
    if not reset:
        return None
    import time

    try:
        return max(0.0, float(reset) - time.time())
    except ValueError:
        return None
