"""In-app: a POST to the product's own notification endpoint (the person is active there)."""

from __future__ import annotations

import httpx

from tasks.deliver.providers.base import (
    HttpProvider,
    Message,
    Result,
    accepted,
    http_status_result,
)


class InApp(HttpProvider):
    name = "in_app"

    def __init__(self, client: httpx.AsyncClient, url: str, token: str | None) -> None:
        super().__init__(client)
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def payload(self, message: Message) -> dict:
        r = message.rendered
        return {"ref": message.ref, "user_id": message.to, "title": r.title or r.subject,
                "body": r.text, "url": r.url}  # fmt: skip

    async def send(self, message: Message) -> Result:
        response = await self._request(
            "POST", self._url, json=self.payload(message), headers=self._headers
        )
        if isinstance(response, Result):
            return response
        return accepted(response, message, "id") or http_status_result(
            response, None, response.text[:200] or None
        )
