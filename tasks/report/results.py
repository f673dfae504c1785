"""What the results report reads from the ledger: daily receivables, cases, sent touches and
the business events (payments, promises). No names, addresses or numbers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from tasks.ledger.models import Case, Event, Receivable, Touch

CASE_COLUMNS = [
    "case_key", "account_id", "kind", "status", "status_reason", "stage", "opened_on",
    "closed_on", "amount", "opening_amount", "currency", "holdout",
]  # fmt: skip
EVENT_COLUMNS = ["event_type", "account_id", "occurred_at", "amount", "currency", "promised_date"]
RECEIVABLE_COLUMNS = ["as_of", "currency", "bucket", "open_amount", "invoices", "invoiced_90d"]


@dataclass
class ResultsData:
    as_of: dt.date
    receivables: pd.DataFrame
    cases: pd.DataFrame
    sent: pd.DataFrame
    events: pd.DataFrame


def _frame(conn: sa.Connection, query: sa.Select, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(conn.execute(query).all(), columns=columns)


def load_results(
    engine: sa.Engine, since: dt.date | None = None, until: dt.date | None = None
) -> ResultsData:
    """The ledger's history between `since` and `until` (cases by opening day)."""
    r, c, t, e = (Receivable.__table__, Case.__table__, Touch.__table__, Event.__table__)
    day_filter = []
    case_filter = []
    if since:
        day_filter.append(r.c.as_of >= since)
        case_filter.append(c.c.opened_on >= since)
    if until:
        day_filter.append(r.c.as_of <= until)
        case_filter.append(c.c.opened_on <= until)
    with engine.connect() as conn:
        receivables = _frame(
            conn, sa.select(*[r.c[n] for n in RECEIVABLE_COLUMNS]).where(*day_filter),
            RECEIVABLE_COLUMNS,
        )  # fmt: skip
        cases = _frame(
            conn, sa.select(*[c.c[n] for n in CASE_COLUMNS]).where(*case_filter), CASE_COLUMNS
        )
        sent = _frame(
            conn,
            sa.select(t.c.case_key, t.c.step, t.c.channel, t.c.sent_at).where(
                t.c.status == "sent", t.c.case_key.is_not(None)
            ),
            ["case_key", "step", "channel", "sent_at"],
        )
        events = _frame(
            conn,
            sa.select(*[e.c[n] for n in EVENT_COLUMNS]).where(
                e.c.event_type.in_(["payment", "promise_to_pay"])
            ),
            EVENT_COLUMNS,
        )
        last_day = conn.execute(sa.select(sa.func.max(r.c.as_of))).scalar()
    for col in ("open_amount", "invoiced_90d"):
        receivables[col] = receivables[col].astype("float64")
    for col in ("amount", "opening_amount"):
        cases[col] = cases[col].astype("float64")
    events["amount"] = events["amount"].astype("float64")
    sent["sent_at"] = pd.to_datetime(sent["sent_at"], utc=True)
    events["occurred_at"] = pd.to_datetime(events["occurred_at"], utc=True)
    as_of = until or last_day or dt.date.today()
    return ResultsData(as_of, receivables, cases, sent, events)
