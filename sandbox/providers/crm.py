"""CRM tasks for people to act on: Salesforce (upsert by our external id, so a resend updates
instead of duplicating) and HubSpot (create a task with our ref as a custom property)."""

from __future__ import annotations

import datetime as dt
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
)

SF_VERSION = re.compile(r"^v[0-9]{2,3}\.[0-9]$")
SF_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
SF_TASK_FIELDS = frozenset(
    {
        "Subject", "Description", "ActivityDate", "Priority", "Status", "OwnerId", "WhoId",
        "WhatId", "Type", "TaskSubtype", "CallType", "IsReminderSet", "ReminderDateTime",
    }
)  # fmt: skip
HS_STATUSES = frozenset({"NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"})
HS_PRIORITIES = frozenset({"NONE", "LOW", "MEDIUM", "HIGH"})


def salesforce_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return json_response(status, [{"message": message, "errorCode": code}], headers)


class Salesforce(Emulator):
    key = "salesforce"
    routes = (("/services/data/{version}/sobjects/{sobject}/{field}/{ref}", ("PATCH",)),)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.ids = Ids()
        self.tasks: dict[str, tuple[str, dict[str, Any]]] = {}  # ref → (id, record entry)

    def parse(self, request: Request, body: bytes) -> Message | Reject:
        params = request.path_params
        if not SF_VERSION.match(params["version"]) or params["sobject"] != "Task":
            return Reject(
                "not_found",
                salesforce_error(404, "NOT_FOUND", "The requested resource does not exist"),
            )
        if params["field"] != "Cadencia_Ref__c":
            return Reject(
                "not_found",
                salesforce_error(
                    404,
                    "NOT_FOUND",
                    f"Provided external ID field does not exist or is not accessible: "
                    f"{params['field']}",
                ),
            )
        if bearer(request) is None:
            return Reject(
                "unauthorized",
                salesforce_error(401, "INVALID_SESSION_ID", "Session expired or invalid"),
            )
        data = load_json(body)
        if data is INVALID or not isinstance(data, dict):
            return Reject(
                "invalid_request",
                salesforce_error(400, "JSON_PARSER_ERROR", "The request body is not a JSON object"),
            )
        for name, value in data.items():
            if name not in SF_TASK_FIELDS and not name.endswith("__c"):
                return Reject(
                    "invalid_request",
                    salesforce_error(
                        400, "INVALID_FIELD", f"No such column '{name}' on sobject of type Task"
                    ),
                )
            if name == "ActivityDate" and value is not None and not _is_date(value):
                return Reject(
                    "invalid_request",
                    salesforce_error(
                        400,
                        "JSON_PARSER_ERROR",
                        f"Cannot deserialize instance of date from VALUE_STRING value {value}",
                    ),
                )
        ref = params["ref"]
        return Message(ref, ref, data)

    def replay(self, message: Message) -> Response | None:
        known = self.tasks.get(message.ref or "")
        if known is None:
            return None
        task_id, entry = known
        entry["request"] = {**entry["request"], **message.request}  # an upsert updates
        return json_response(200, {"id": task_id, "success": True, "errors": [], "created": False})

    def new_id(self, message: Message) -> str:
        return "00T" + self.ids.hex("")[-15:].upper()

    def answer(self, message: Message, provider_id: str, entry: dict[str, Any]) -> Response:
        self.tasks[message.ref or ""] = (provider_id, entry)
        return json_response(
            201, {"id": provider_id, "success": True, "errors": [], "created": True}
        )

    def throttled(self, retry_in: float, reset_at: float, limit: float) -> Response:
        return salesforce_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")

    def transient(self, status: int, retry_after: int | None) -> Response:
        return salesforce_error(
            status,
            "SERVER_UNAVAILABLE",
            "Server temporarily unavailable, please try again later.",
            retry_header(retry_after),
        )

    def reset(self) -> None:
        self.tasks.clear()


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or not SF_DATE.match(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def hubspot_error(
    status: int, category: str, message: str, headers: dict[str, str] | None = None, **more: Any
) -> Response:
    payload = {
        "status": "error",
        "message": message,
        "correlationId": secrets.token_hex(16),
        "category": category,
        **more,
    }
    return json_response(status, payload, headers)


def _hubspot_invalid(name: str, message: str, error: str) -> Reject:
    detail = f'[{{"isValid":false,"message":"{message}","error":"{error}","name":"{name}"}}]'
    return Reject(
        "invalid_request",
        hubspot_error(400, "VALIDATION_ERROR", f"Property values were not valid: {detail}"),
    )


class HubSpot(Emulator):
    key = "hubspot"
    routes = (("/crm/v3/objects/tasks", ("POST",)),)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.ids = Ids()

    def parse(self, request: Request, body: bytes) -> Message | Reject:
        if bearer(request) is None:
            return Reject(
                "unauthorized",
                hubspot_error(
                    401,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication.",
                ),
            )
        data = load_json(body)
        properties = data.get("properties") if isinstance(data, dict) else None
        if not isinstance(properties, dict):
            return Reject(
                "invalid_request",
                hubspot_error(400, "VALIDATION_ERROR", "Invalid input JSON: 'properties'"),
            )
        if properties.get("hs_timestamp") in (None, ""):
            return _hubspot_invalid("hs_timestamp", "hs_timestamp is required", "REQUIRED")
        status = properties.get("hs_task_status")
        if status is not None and status not in HS_STATUSES:
            return _hubspot_invalid(
                "hs_task_status", f"{status} was not one of the allowed options", "INVALID_OPTION"
            )
        priority = properties.get("hs_task_priority")
        if priority is not None and priority not in HS_PRIORITIES:
            return _hubspot_invalid(
                "hs_task_priority",
                f"{priority} was not one of the allowed options",
                "INVALID_OPTION",
            )
        ref = properties.get("cadencia_ref")
        ref = ref if isinstance(ref, str) and ref else None
        return Message(ref, ref or "", data)

    def new_id(self, message: Message) -> str:
        return self.ids.digits()

    def answer(self, message: Message, provider_id: str, entry: dict[str, Any]) -> Response:
        created = dt.datetime.fromtimestamp(entry["at"], dt.UTC).isoformat(timespec="milliseconds")
        created = created.replace("+00:00", "Z")
        properties = {
            **message.request["properties"],
            "hs_createdate": created,
            "hs_lastmodifieddate": created,
            "hs_object_id": provider_id,
        }
        return json_response(
            201,
            {
                "id": provider_id,
                "properties": properties,
                "createdAt": created,
                "updatedAt": created,
                "archived": False,
            },
        )

    def throttled(self, retry_in: float, reset_at: float, limit: float) -> Response:
        return hubspot_error(
            429,
            "RATE_LIMITS",
            "You have reached your secondly limit.",
            retry_header(retry_in),
            errorType="RATE_LIMIT",
            policyName="SECONDLY",
        )

    def transient(self, status: int, retry_after: int | None) -> Response:
        return hubspot_error(
            status, "INTERNAL_ERROR", "Service temporarily unavailable", retry_header(retry_after)
        )
