"""Ledger reads and writes around the decide step: live cases, recent touches, holds and
suppressions in; case state, planned touches and new suppressions out.

Planned touches are inserted with ON CONFLICT DO NOTHING on their idempotency key, so a rerun
of the same day, a flow retry or a concurrent run can never plan one touch twice.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from tasks.decide.plan import CASE_STATE_COLUMNS, HISTORY_COLUMNS, LedgerState, Plan
from tasks.decide.shards import shard_of
from tasks.ledger.bulk import bulk_upsert, insert_new
from tasks.ledger.models import (
    Case,
    Contact,
    Event,
    Hold,
    Receivable,
    Suppression,
    Touch,
    utcnow,
)

_cases = Case.__table__
_touches = Touch.__table__
_holds = Hold.__table__
_suppressions = Suppression.__table__
_receivables = Receivable.__table__
_events = Event.__table__
LIVE = ("open", "paused")
# Touches this recent count against the caps (a week either side, plus slack for deferrals).
CAP_WINDOW_DAYS = 21


def load_state(
    engine: sa.Engine, as_of: dt.date, shard: tuple[int, int] | None = None
) -> LedgerState:
    """What earlier runs left that today's decisions depend on; for a shard (number, of how
    many), only its accounts' cases, touches and holds (its contacts are all its own)."""
    live_keys = sa.select(_cases.c.case_key).where(_cases.c.status.in_(LIVE))
    cutoff = dt.datetime.combine(as_of - dt.timedelta(days=CAP_WINDOW_DAYS), dt.time(), dt.UTC)
    with engine.connect() as conn:
        cases = pd.DataFrame(
            conn.execute(
                sa.select(*[_cases.c[c] for c in CASE_STATE_COLUMNS]).where(
                    _cases.c.status.in_(LIVE)
                )
            ).all(),
            columns=CASE_STATE_COLUMNS,
        )
        history = pd.DataFrame(
            conn.execute(
                sa.select(*[_touches.c[c] for c in [*HISTORY_COLUMNS, "account_id"]]).where(
                    _touches.c.case_key.in_(live_keys) | (_touches.c.send_at >= cutoff)
                )
            ).all(),
            columns=[*HISTORY_COLUMNS, "account_id"],
        )
        holds = pd.DataFrame(
            conn.execute(
                sa.select(_holds.c.account_id, _holds.c.until, _holds.c.reason).where(
                    _holds.c.until >= as_of
                )
            ).all(),
            columns=["account_id", "until", "reason"],
        )
        suppressions = pd.DataFrame(
            conn.execute(
                sa.select(
                    _suppressions.c.golden_id,
                    _suppressions.c.channel,
                    _suppressions.c.reason,
                    _suppressions.c.since,
                )  # fmt: skip
            ).all(),
            columns=["golden_id", "channel", "reason", "since"],
        )
    history["send_at"] = pd.to_datetime(history["send_at"], utc=True)
    if shard is not None:
        number, shards = shard
        cases = cases[shard_of(cases["account_id"], shards) == number].reset_index(drop=True)
        history = history[shard_of(history["account_id"], shards) == number]
        holds = holds[shard_of(holds["account_id"], shards) == number].reset_index(drop=True)
    history = history[HISTORY_COLUMNS].reset_index(drop=True)
    return LedgerState(cases=cases, history=history, holds=holds, suppressions=suppressions)


CASE_WRITE = [
    "case_key", "account_id", "kind", "status", "status_reason", "stage", "stage_since",
    "opened_on", "closed_on", "paused_until", "promise_at", "promise_date", "promise_amount",
    "broken_promise_on", "amount", "currency", "segment", "owner", "renewal_date",
    "open_invoices", "worst_days_overdue", "updated_at", "holdout", "opening_amount",
]  # fmt: skip
TOUCH_WRITE = [
    "idempotency_key", "case_key", "account_id", "run_id", "golden_id", "step", "channel",
    "template", "purpose", "send_at", "status", "as_of", "assignee", "time_zone", "send_at_local",
    "message_ref", "fallback_channel", "context",
]  # fmt: skip


def _dates(values: pd.Series) -> pd.Series:
    days = pd.to_datetime(values).dt.date
    return days.astype(object).where(days.notna(), None)


def save_plan(engine: sa.Engine, run_id: int | None, plan: Plan, whole_book: bool = True) -> int:
    """Record case state, planned touches and new suppressions in one transaction; for the
    whole book (not a shard) also the day's receivables and the export's business events.

    Returns the number of touches actually inserted (a rerun inserts none)."""
    now = utcnow()
    cases = plan.cases.assign(updated_at=now)
    for col in ("stage_since", "opened_on", "closed_on", "paused_until", "promise_date",
                "broken_promise_on", "renewal_date"):  # fmt: skip
        cases[col] = _dates(cases[col])
    cases["promise_amount"] = cases["promise_amount"].astype("float64").round(2)
    cases["amount"] = cases["amount"].astype("float64").round(2)
    cases["opening_amount"] = cases["amount"]
    cases["holdout"] = cases["holdout"].astype(bool)
    touches = plan.touches.assign(run_id=run_id)
    touches["as_of"] = plan.as_of
    with engine.begin() as conn:
        bulk_upsert(conn, _cases, cases, CASE_WRITE, ["case_key"], insert_only=["opening_amount"])
        inserted = insert_new(conn, _touches, touches, TOUCH_WRITE, ["idempotency_key"])
        conn.execute(
            sa.update(_touches)
            .where(_touches.c.case_id.is_(None), _touches.c.case_key.is_not(None))
            .values(
                case_id=sa.select(_cases.c.id)
                .where(_cases.c.case_key == _touches.c.case_key)
                .scalar_subquery()
            )
        )
        fresh = plan.new_suppressions.assign(run_id=run_id)
        columns = ["golden_id", "channel", "reason", "since", "run_id"]
        insert_new(conn, _suppressions, fresh, columns, ["golden_id", "channel"])
        if whole_book:
            save_receivables(conn, run_id, plan.as_of, plan.receivables)
            save_business_events(conn, plan.events)
    return inserted


def save_book(
    engine: sa.Engine,
    run_id: int | None,
    as_of: dt.date,
    receivables: pd.DataFrame,
    linked: pd.DataFrame,
) -> None:
    """The whole book's records of a sharded run (its shards save their own plans)."""
    with engine.begin() as conn:
        save_receivables(conn, run_id, as_of, receivables)
        save_business_events(conn, linked)


def save_receivables(
    conn: sa.Connection, run_id: int | None, as_of: dt.date, receivables: pd.DataFrame
) -> None:
    """Today's receivables by currency and bucket; a rerun of the day replaces them."""
    conn.execute(sa.delete(_receivables).where(_receivables.c.as_of == as_of))
    if receivables.empty:
        return
    rows = receivables.assign(run_id=run_id, as_of=as_of)
    rows["open_amount"] = rows["open_amount"].astype("float64").round(2)
    rows["invoiced_90d"] = rows["invoiced_90d"].astype("float64").round(2)
    columns = ["run_id", "as_of", "currency", "bucket", "open_amount", "invoices", "invoiced_90d"]
    insert_new(conn, _receivables, rows, columns, ["as_of", "currency", "bucket"])


# Exported events that measure results (payments, promises, disputes, call outcomes): kept
# in the ledger for the report and for the event flow. Opens and deliveries stay in the export.
BUSINESS_EVENTS = ("payment", "promise_to_pay", "dispute", "call_outcome")
EXPORT_SOURCE = "export"


def save_business_events(conn: sa.Connection, linked: pd.DataFrame) -> int:
    """Record the export's business events once each (keyed by the export's event id)."""
    if "event_id" not in linked:
        return 0
    ev = linked[linked["event_type"].isin(BUSINESS_EVENTS) & linked["event_id"].notna()]
    if ev.empty:
        return 0
    rows = pd.DataFrame(
        {
            "event_key": (EXPORT_SOURCE + ":" + ev["event_id"].astype("str")).to_numpy(),
            "source": EXPORT_SOURCE,
            "event_type": ev["event_type"].astype("str").to_numpy(),
            "channel": ev["channel"].to_numpy(dtype=object),
            "occurred_at": pd.to_datetime(ev["occurred_at"], utc=True).to_numpy(),
            "account_id": ev["account_id"].to_numpy(dtype=object),
            "golden_id": ev["golden_id"].to_numpy(dtype=object),
            "amount": ev["amount"].astype("float64").round(2).to_numpy(),
            "currency": (
                ev["currency"] if "currency" in ev else pd.Series(None, index=ev.index)
            ).to_numpy(dtype=object),
            "promised_date": _dates(pd.to_datetime(ev["promised_date"])).to_numpy(),
        }
    ).drop_duplicates("event_key")
    columns = list(rows.columns)
    return insert_new(conn, _events, rows, columns, ["event_key"])


# Webhook events older than this no longer change decisions (affinity looks back ~6 months).
EVENTS_LOOKBACK_DAYS = 200
ENGAGEMENT = ("delivered", "opened", "clicked", "read", "replied", "in_app_seen")


def received_events(engine: sa.Engine, as_of: dt.date) -> pd.DataFrame:
    """Delivery and engagement events our webhooks recorded, shaped like exported events and
    already linked to their contact (`golden_id`)."""
    e = Event.__table__
    since = dt.datetime.combine(as_of - dt.timedelta(days=EVENTS_LOOKBACK_DAYS), dt.time(), dt.UTC)
    until = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), dt.UTC)
    columns = ["occurred_at", "event_type", "channel", "account_id", "golden_id"]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*[e.c[c] for c in columns]).where(
                e.c.golden_id.is_not(None),
                e.c.occurred_at >= since,
                e.c.occurred_at < until,
                # Engagement only: the receiver already put bounces, STOPs and undeliverable
                # numbers on the suppression list, with the provider's exact reason.
                e.c.event_type.in_(ENGAGEMENT),
                e.c.source != EXPORT_SOURCE,  # the export's own events come with the export
            )
        ).all()
    frame = pd.DataFrame(rows, columns=columns)
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    for col in ("event_type", "channel", "account_id", "golden_id"):
        frame[col] = frame[col].astype("str")
    return frame


def add_hold(engine: sa.Engine, account_id: str, until: dt.date, reason: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(_holds).values(account_id=account_id, until=until, reason=reason))


def contact_names(engine: sa.Engine, golden_ids: list[str]) -> dict[str, str]:
    """'First L. (golden id)' per contact: enough to recognise someone, no address or number."""
    if not golden_ids:
        return {}
    c = Contact.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.c.golden_id, c.c.first_name, c.c.last_name).where(
                c.c.golden_id.in_(golden_ids)
            )
        ).all()
    names = {}
    for golden_id, first, last in rows:
        initial = f" {last[0]}." if last else ""
        names[golden_id] = f"{first or '?'}{initial} ({golden_id})"
    return names
