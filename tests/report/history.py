"""A plausible ledger history for report tests: 60 days of receivables, collections cases
(some in the holdout, most paid after their touches), promises and payments, renewals."""

from __future__ import annotations

import datetime as dt

import numpy as np
import sqlalchemy as sa

from tasks.ledger.models import Case, Event, Receivable, Touch

END = dt.date(2026, 11, 20)
BUCKETS = ["current", "1-30", "31-60", "61-90", "90+"]


def seed_history(engine: sa.Engine, cases: int = 400, days: int = 60, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    start = END - dt.timedelta(days=days - 1)
    receivables = []
    for i in range(days):
        day = start + dt.timedelta(days=i)
        for currency, scale in (("EUR", 1.0), ("MXN", 20.0)):
            for b, bucket in enumerate(BUCKETS):
                owed = scale * 10_000 * (5 - b) * (1.2 - 0.4 * i / days) * rng.uniform(0.9, 1.1)
                receivables.append(dict(as_of=day, currency=currency, bucket=bucket,
                                        open_amount=round(owed, 2), invoices=10 - b,
                                        invoiced_90d=round(scale * 30_000, 2)))  # fmt: skip
    case_rows, touch_rows, event_rows = [], [], []
    for n in range(cases):
        opened = start + dt.timedelta(days=int(rng.integers(0, days - 20)))
        holdout = n % 10 == 0
        paid = rng.random() < (0.45 if holdout else 0.75)
        wait = int(rng.integers(12, 30) if holdout else rng.integers(3, 20))
        closed = opened + dt.timedelta(days=wait) if paid else None
        key = f"collections|A{n:04d}|{opened.isoformat()}"
        amount = float(rng.integers(500, 5000))
        case_rows.append(dict(case_key=key, account_id=f"A{n:04d}", kind="collections",
                              status="closed" if paid else "open",
                              status_reason="closed: paid" if paid else "", stage="early",
                              opened_on=opened, closed_on=closed, amount=0 if paid else amount,
                              opening_amount=amount, currency="EUR", holdout=holdout))  # fmt: skip
        if not holdout:
            channels = ["email", "whatsapp"] if n % 3 else ["email", "voice"]
            for j, (step, channel) in enumerate(zip(["reminder", "nudge"], channels, strict=True)):
                sent = dt.datetime.combine(opened + dt.timedelta(days=2 * j), dt.time(9), dt.UTC)
                touch_rows.append(dict(idempotency_key=f"{key}|{step}", case_key=key,
                                       account_id=f"A{n:04d}", step=step, channel=channel,
                                       template=step, purpose="service", send_at=sent,
                                       sent_at=sent, status="sent"))  # fmt: skip
        if n % 4 == 0:
            made = dt.datetime.combine(opened + dt.timedelta(days=3), dt.time(10), dt.UTC)
            promised = opened + dt.timedelta(days=10)
            event_rows.append(dict(event_key=f"p{n}", source="export", event_type="promise_to_pay",
                                   occurred_at=made, account_id=f"A{n:04d}", amount=amount,
                                   currency="EUR", promised_date=promised))  # fmt: skip
            if paid:
                pay = dt.datetime.combine(closed, dt.time(12), dt.UTC)
                event_rows.append(dict(event_key=f"pay{n}", source="export", event_type="payment",
                                       occurred_at=pay, account_id=f"A{n:04d}", amount=amount,
                                       currency="EUR", promised_date=None))  # fmt: skip
    for n in range(60):
        opened = start + dt.timedelta(days=int(rng.integers(0, days - 20)))
        won = rng.random() < 0.7
        case_rows.append(dict(case_key=f"renewal|R{n:03d}|{opened}", account_id=f"R{n:03d}",
                              kind="renewal", status="closed",
                              status_reason="closed: deal won" if won else "closed: deal lost",
                              stage="renewal", opened_on=opened,
                              closed_on=opened + dt.timedelta(days=int(rng.integers(5, 40))),
                              amount=12_000.0, opening_amount=12_000.0, currency="EUR",
                              holdout=n % 10 == 0))  # fmt: skip
    with engine.begin() as conn:
        conn.execute(sa.insert(Receivable.__table__), receivables)
        conn.execute(sa.insert(Case.__table__), case_rows)
        conn.execute(sa.insert(Touch.__table__), touch_rows)
        conn.execute(sa.insert(Event.__table__), event_rows)
