"""Google RCS Business Messaging `agentMessages`. Our ref is RBM's `messageId`, an idempotency
key: a reused id is ignored by Google, so a retry after an ambiguous failure is safe here."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from tasks.deliver.providers.base import (
    HttpProvider,
    Message,
    Result,
    http_status_result,
    json_or_none,
)


class RcsBusinessMessaging(HttpProvider):
    name = "rbm"
    idempotent = True

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, agent_id: str, token: str,
        ttl_seconds: int = 86400,
    ) -> None:  # fmt: skip
        super().__init__(client)
        self._base = base_url.rstrip("/")
        self._agent = agent_id
        self._headers = {"Authorization": f"Bearer {token}"}
        self._ttl = f"{ttl_seconds}s"

    def payload(self, message: Message) -> dict:
        content: dict = {"text": message.rendered.text}
        if message.rendered.suggestions:
            content["suggestions"] = list(message.rendered.suggestions)
        return {"contentMessage": content, "ttl": self._ttl}

    async def send(self, message: Message) -> Result:
        url = f"{self._base}/v1/phones/{quote(message.to)}/agentMessages"
        params = {"messageId": message.ref, "agentId": self._agent}
        response = await self._request(
            "POST", url, params=params, json=self.payload(message), headers=self._headers
        )
        if isinstance(response, Result):  # same messageId next time: Google drops duplicates
            return response
        if response.status_code == 200:
            return Result("sent", provider_id=message.ref)
        body = json_or_none(response)
        error = body.get("error", {}) if isinstance(body, dict) else {}
        detail = error.get("message") or response.reason_phrase
        status = error.get("status")
        if response.status_code == 404:
            # Not RCS-capable (device, carrier, RCS off): SMS instead, never retry.
            return Result("permanent", code="NOT_FOUND", detail=detail, fall_back=True)
        if (
            response.status_code == 403
            and status == "PERMISSION_DENIED"
            and "launch" in (detail or "").lower()
        ):  # agent not launched on this carrier: SMS instead
            return Result("permanent", code=status, detail=detail, fall_back=True)
        if response.status_code >= 500:
            return Result("retryable", code=status or str(response.status_code), detail=detail)
        return http_status_result(response, status, detail)
