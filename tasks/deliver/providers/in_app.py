"""In-app: a POST to the product's own notification endpoint (the person is active there)."""

from __future__ import annotations

import httpx

from tasks.deliver.providers.base import (
    Message,
    Result,
    http_status_result,
    json_or_none,
    transport_failure,
)


class InApp:
    name = "in_app"

    def __init__(self, client: httpx.AsyncClient, url: str, token: str | None) -> None:
        self._client = client
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def payload(self, message: Message) -> dict:
        r = message.rendered
        return {"ref": message.ref, "user_id": message.to, "title": r.title or r.subject,
                "body": r.text, "url": r.url}  # fmt: skip

    async def send(self, message: Message) -> Result:
        try:
            response = await self._client.post(
                self._url, json=self.payload(message), headers=self._headers
            )
        except httpx.TransportError as exc:
            return transport_failure(exc)
        if response.status_code in (200, 201, 202):
            body = json_or_none(response)
            ident = body.get("id") if isinstance(body, dict) else None
            return Result("sent", provider_id=str(ident or message.ref))
        return http_status_result(response, None, response.text[:200] or None)

    async def aclose(self) -> None:
        await self._client.aclose()
