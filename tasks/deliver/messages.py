"""From claimed ledger rows to rendered messages: recipient address, locale, template context.

The context holds exactly the keys templates may use (docs/templates.md). A message that
cannot be rendered (a value the template needs is missing for this person) fails on its own
with the reason; the template catalogue itself was checked before anything was claimed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from config.settings import Settings
from tasks.decide.channels import MOBILE_TYPES
from tasks.deliver.providers.base import Message
from tasks.deliver.templates import Catalogue, TemplateError, locale_for


@dataclass(frozen=True)
class Unsendable:
    touch_id: int
    reason: str
    code: str


def recipient(row: dict[str, Any], channel: str, provider: str) -> str | None:
    """The address this channel needs: email, a mobile-capable number, a phone for automated
    calls, the assignee for a call task, the contact's product id for in-app."""
    if channel == "email":
        return row["email"]
    if channel in ("whatsapp", "sms", "rcs"):
        for number, kind in ((row["mobile_e164"], row["mobile_type"]),
                             (row["phone_e164"], row["phone_type"])):  # fmt: skip
            if number and str(kind).lower() in MOBILE_TYPES:
                return number
        return None
    if channel == "voice":
        if provider == "twilio_calls":
            return row["mobile_e164"] or row["phone_e164"]
        return row["assignee"] or row["owner"] or "unassigned"
    return row["golden_id"]  # in_app


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def template_context(
    row: dict[str, Any], locale: str, settings: Settings, history: list[dict[str, Any]]
) -> dict[str, Any]:
    context = row["context"] or {}
    invoices = [
        {**inv, "due_date": _date(inv.get("due_date"))} for inv in context.get("invoices", [])
    ]
    dues = [inv["due_date"] for inv in invoices if inv["due_date"] is not None]
    first, last = row["first_name"] or "", row["last_name"] or ""
    ref, account = row["message_ref"], row["account_id"] or ""
    fill = {"account_id": account, "ref": ref}
    return {
        "first_name": first,
        "last_name": last,
        "full_name": " ".join(p for p in (first, last) if p),
        "account_id": account,
        "account_name": row["account_name"] or account,
        "company_name": settings.company_name,
        "support_email": settings.support_email,
        "support_phone": settings.support_phone,
        "kind": row["kind"],
        "stage": row["stage"],
        "amount": _number(row["amount"]) or 0.0,
        "currency": row["currency"] or (invoices[0]["currency"] if invoices else "EUR"),
        "open_invoices": int(row["open_invoices"] or len(invoices)),
        "worst_days_overdue": row["worst_days_overdue"],
        "due_date": min(dues) if dues else None,
        "renewal_date": _date(row["renewal_date"]),
        "promise_date": _date(row["promise_date"]),
        "promise_amount": _number(row["promise_amount"]),
        "owner": row["owner"],
        "assignee": row["assignee"],
        "pay_url": settings.pay_url.format(**fill),
        "portal_url": settings.portal_url,
        "unsubscribe_url": settings.unsubscribe_url.format(**fill)
        if row["purpose"] == "marketing" else None,
        "invoices": invoices,
        "last_touches": history,
        "step": row["step"],
        "locale": locale,
    }  # fmt: skip


def build_messages(
    rows: list[dict[str, Any]],
    provider_of: dict[int, str],
    catalogue: Catalogue,
    settings: Settings,
    histories: dict[str, list[dict[str, Any]]],
) -> tuple[list[tuple[Message, str]], list[Unsendable]]:
    """(messages with their provider, touches that cannot be sent and why)."""
    ready: list[tuple[Message, str]] = []
    unsendable: list[Unsendable] = []
    for row in rows:
        tid = row["id"]
        provider = provider_of[tid]
        channel = row["channel"]
        to = recipient(row, channel, provider)
        if not to:
            unsendable.append(Unsendable(tid, f"no {channel} address on the contact", "address"))
            continue
        locale = locale_for(row["language"], row["country"])
        variant = "voice_auto" if provider == "twilio_calls" else channel
        history = histories.get(row["case_key"], []) if channel == "voice" else []
        context = template_context(row, locale, settings, history)
        try:
            rendered = catalogue.render(row["template"], variant, locale, context)
        except TemplateError as problem:
            unsendable.append(Unsendable(tid, str(problem), "template"))
            continue
        send_at = row["send_at"]
        if send_at.tzinfo is None:
            send_at = send_at.replace(tzinfo=dt.UTC)
        ready.append(
            (
                Message(
                    touch_id=tid,
                    ref=row["message_ref"],
                    channel=channel,
                    template=row["template"],
                    purpose=row["purpose"],
                    locale=locale,
                    to=to,
                    rendered=rendered,
                    name=" ".join(p for p in (row["first_name"], row["last_name"]) if p) or None,
                    assignee=row["assignee"],
                    account_id=row["account_id"],
                    golden_id=row["golden_id"],
                    case_key=row["case_key"],
                    send_at=send_at,
                    context=call_context(context) if channel == "voice" else {},
                ),
                provider,
            )
        )
    return ready, unsendable


def call_context(context: dict[str, Any]) -> dict[str, Any]:
    """What an agent's task carries beyond the brief, as plain JSON."""
    keys = ("kind", "stage", "amount", "currency", "open_invoices", "worst_days_overdue",
            "due_date", "renewal_date", "promise_date", "promise_amount", "owner")  # fmt: skip
    out = {k: _plain(context[k]) for k in keys}
    out["invoices"] = [{k: _plain(v) for k, v in inv.items()} for inv in context["invoices"]]
    out["last_touches"] = [{k: _plain(v) for k, v in t.items()} for t in context["last_touches"]]
    out["high_priority"] = (context["worst_days_overdue"] or 0) > 30
    return out


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value
