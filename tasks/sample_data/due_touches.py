"""Planned touches written straight into a ledger, due now: the input of delivery tests and of
`bench/push.py` (what the daily plan would leave, without running the whole plan)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tasks.decide.plan import message_ref
from tasks.ledger.bulk import bulk_insert
from tasks.ledger.models import Case, Contact, Touch

# channel → (template, step, purpose, fallback channel)
STEPS = {
    "whatsapp": ("payment_reminder", "preventive_nudge", "service", "sms"),
    "rcs": ("payment_reminder", "preventive_nudge", "service", "sms"),
    "sms": ("payment_reminder", "preventive_nudge", "service", "email"),
    "email": ("invoice_copy", "preventive_invoice_copy", "service", None),
    "voice": ("collections_call", "early_negotiation_call", "service", None),
    "in_app": ("payment_reminder", "preventive_nudge", "service", None),
}


def phone(i: int) -> str:
    return f"+346{i:08d}"


def email(i: int) -> str:
    return f"person{i}@example.com"


def seed_due_touches(
    engine: sa.Engine,
    n: int,
    channels: tuple[str, ...] = ("whatsapp",),
    now: dt.datetime | None = None,
    start: int = 0,
    as_of: dt.date | None = None,
    with_cases: bool = True,
) -> pd.DataFrame:
    """`n` contacts with one open collections case each and one touch due now, channels in
    rotation. Contact i has phone `phone(i)` and email `email(i)`. Returns the touches.

    Without cases the touches belong to no case, so a daily run over other exports (which
    closes cases it no longer sees) leaves them due: load for a run's push."""
    now = now or dt.datetime.now(dt.UTC)
    as_of = as_of or now.date()
    ids = np.arange(start, start + n)
    golden = [f"G{i:08d}" for i in ids]
    accounts = [f"A{i:08d}" for i in ids]
    spanish = ids % 3 != 0
    contacts = pd.DataFrame({
        "golden_id": golden, "account_id": accounts,
        "first_name": [f"Ana{i}" for i in ids], "last_name": "García",
        "email": [email(i) for i in ids], "mobile_e164": [phone(i) for i in ids],
        "mobile_type": "mobile", "phone_e164": None, "phone_type": None,
        "country": np.where(spanish, "ES", "GB"), "language": np.where(spanish, "es", "en"),
        "time_zone": np.where(spanish, "Europe/Madrid", "Europe/London"),
        "account_name": [f"Cliente {i} S.L." for i in ids],
        "email_role": False, "records": 1, "receives_collections": True,
        "receives_renewals": True,
    })  # fmt: skip
    case_keys = [f"collections:{a}:{as_of.isoformat()}" for a in accounts]
    touch_cases: list[str | None] = case_keys if with_cases else [None] * n
    cases = pd.DataFrame({
        "case_key": case_keys, "account_id": accounts, "kind": "collections",
        "status": "open", "stage": "preventive", "opened_on": as_of, "stage_since": as_of,
        "amount": 1234.56, "currency": "EUR", "open_invoices": 1, "worst_days_overdue": 5,
        "owner": "collections-es",
    })  # fmt: skip
    channel = np.array(channels, dtype=object)[np.arange(n) % len(channels)]
    spec = pd.DataFrame([STEPS[c] for c in channel],
                        columns=["template", "step", "purpose", "fallback_channel"])  # fmt: skip
    day = as_of.isoformat()
    parts = zip(case_keys, spec["step"], channel, golden, strict=True)
    keys = [f"{k}|{s}|{c}|{g}|{day}" for k, s, c, g in parts]
    due = (as_of - dt.timedelta(days=5)).isoformat()
    context = {"invoices": [{"number": "F-2026-0001", "due_date": due, "open_amount": 1234.56,
                             "currency": "EUR", "days_overdue": 5}]}  # fmt: skip
    touches = pd.DataFrame({
        "idempotency_key": keys, "case_key": touch_cases, "account_id": accounts,
        "golden_id": golden, "step": spec["step"], "channel": channel,
        "template": spec["template"], "purpose": spec["purpose"], "send_at": now,
        "status": "planned", "as_of": as_of,
        "assignee": np.where(channel == "voice", "collections-es", None),
        "message_ref": [message_ref(k) for k in keys],
        "fallback_channel": spec["fallback_channel"], "context": [context] * n,
    })  # fmt: skip
    with engine.begin() as conn:
        bulk_insert(conn, Contact.__table__, contacts, list(contacts.columns))
        if with_cases:
            bulk_insert(conn, Case.__table__, cases, list(cases.columns))
        bulk_insert(conn, Touch.__table__, touches, list(touches.columns))
    return touches
