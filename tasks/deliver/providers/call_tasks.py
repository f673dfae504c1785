"""Calls negotiate, so a voice step becomes a task for a person (account manager or collections
agent) carrying the context: open invoices, amounts, promises, last touches. Delivered to
Salesforce (Task upserted by our external id: idempotent), HubSpot (tasks API) or a webhook."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from tasks.deliver.providers.base import (
    HttpProvider,
    Message,
    Result,
    accepted,
    http_status_result,
    json_or_none,
    retry_after,
)


def _due(message: Message) -> dt.datetime:
    return message.send_at or dt.datetime.now(dt.UTC)


class SalesforceTasks(HttpProvider):
    name = "salesforce"
    idempotent = True  # PATCH by external id: a second call updates the same Task

    def __init__(
        self, client: httpx.AsyncClient, instance_url: str, token: str, version: str = "v60.0"
    ) -> None:
        super().__init__(client)
        self._base = f"{instance_url.rstrip('/')}/services/data/{version}/sobjects/Task"
        self._headers = {"Authorization": f"Bearer {token}"}

    def payload(self, message: Message) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Subject": message.rendered.subject or message.template,
            "Description": message.rendered.text,
            "ActivityDate": _due(message).date().isoformat(),
            "Priority": "High" if message.context.get("high_priority") else "Normal",
            "Status": "Not Started",
        }
        if message.assignee and message.assignee.startswith("005"):
            body["OwnerId"] = message.assignee  # a Salesforce user id
        return body

    async def send(self, message: Message) -> Result:
        url = f"{self._base}/Cadencia_Ref__c/{message.ref}"
        response = await self._request(
            "PATCH", url, json=self.payload(message), headers=self._headers
        )
        if isinstance(response, Result):
            return response
        body = json_or_none(response)
        if response.status_code in (200, 201) and isinstance(body, dict):
            return Result("sent", provider_id=str(body.get("id")))
        errors = body if isinstance(body, list) else []
        code = errors[0].get("errorCode") if errors and isinstance(errors[0], dict) else None
        detail = errors[0].get("message") if errors and isinstance(errors[0], dict) else None
        if code == "REQUEST_LIMIT_EXCEEDED":
            return Result("retryable", code=code, detail=detail, retry_after=retry_after(response))
        if response.status_code >= 500:
            return Result("retryable", code=code or str(response.status_code), detail=detail)
        return http_status_result(response, code, detail or response.reason_phrase)


class HubSpotTasks(HttpProvider):
    name = "hubspot"

    def __init__(self, client: httpx.AsyncClient, base_url: str, token: str) -> None:
        super().__init__(client)
        self._url = f"{base_url.rstrip('/')}/crm/v3/objects/tasks"
        self._headers = {"Authorization": f"Bearer {token}"}

    def payload(self, message: Message) -> dict[str, Any]:
        properties = {
            "hs_timestamp": _due(message).isoformat().replace("+00:00", "Z"),
            "hs_task_subject": message.rendered.subject or message.template,
            "hs_task_body": message.rendered.text,
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": "HIGH" if message.context.get("high_priority") else "MEDIUM",
            "hs_task_type": "CALL",
            "cadencia_ref": message.ref,
        }
        if message.assignee and message.assignee.isdigit():
            properties["hubspot_owner_id"] = message.assignee
        return {"properties": properties}

    async def send(self, message: Message) -> Result:
        response = await self._request(
            "POST", self._url, json=self.payload(message), headers=self._headers
        )
        if isinstance(response, Result):
            return response
        body = json_or_none(response)
        if response.status_code == 201 and isinstance(body, dict):
            return Result("sent", provider_id=str(body.get("id")))
        detail = body.get("message") if isinstance(body, dict) else None
        return http_status_result(response, body.get("category") if isinstance(body, dict)
                                  else None, detail or response.reason_phrase)  # fmt: skip


class CallWebhook(HttpProvider):
    """Your own task queue or dialer: one JSON POST per call task."""

    name = "call_webhook"

    def __init__(self, client: httpx.AsyncClient, url: str, token: str | None) -> None:
        super().__init__(client)
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def payload(self, message: Message) -> dict[str, Any]:
        return {
            "ref": message.ref,
            "assignee": message.assignee,
            "account_id": message.account_id,
            "case": message.case_key,
            "due": _due(message).isoformat(),
            "subject": message.rendered.subject,
            "brief": message.rendered.text,
            "context": message.context,
        }

    async def send(self, message: Message) -> Result:
        response = await self._request(
            "POST", self._url, json=self.payload(message), headers=self._headers
        )
        if isinstance(response, Result):
            return response
        return accepted(response, message, "id", "ref") or http_status_result(
            response, None, response.text[:200] or None
        )
