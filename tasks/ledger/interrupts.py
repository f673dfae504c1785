"""Events that stop today's remaining touches between daily runs.

A payment, a promise to pay or a dispute recorded by the event flow puts the account on hold
for the rest of its day, so the dispatch flow cancels what was still planned (a reminder an
hour after the customer paid is the worst message we could send). The next daily run decides
with the full picture: re-ages the balance, pauses for the promise, routes the dispute.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from tasks.ledger.bulk import bulk_insert
from tasks.ledger.models import Hold

_holds = Hold.__table__
STOPPING = {
    "payment": "payment received",
    "promise_to_pay": "promise to pay made",
    "dispute": "dispute opened",
}
SUFFIX = "; touches stop until the next daily run"


def stopping_events(linked: pd.DataFrame, day: dt.date, timezone: str) -> pd.DataFrame:
    """(account_id, reason) for the day's payments, promises and disputes (local day)."""
    ev = linked[linked["event_type"].isin(list(STOPPING)) & linked["account_id"].notna()]
    local = pd.to_datetime(ev["occurred_at"], utc=True).dt.tz_convert(timezone).dt.date
    ev = ev[(local == day).to_numpy()]
    reason = ev["event_type"].map(STOPPING).astype("str") + " on " + day.isoformat() + SUFFIX
    frame = pd.DataFrame({"account_id": ev["account_id"].astype("str").to_numpy(),
                          "reason": reason.to_numpy(dtype=object)})  # fmt: skip
    return frame.drop_duplicates(ignore_index=True)


def hold_for_the_day(engine: sa.Engine, stops: pd.DataFrame, day: dt.date) -> int:
    """Hold each account until the end of `day`, once per (account, reason); returns how many
    new holds were placed (a second event run the same day places none)."""
    if stops.empty:
        return 0
    with engine.begin() as conn:
        existing = pd.DataFrame(
            conn.execute(
                sa.select(_holds.c.account_id, _holds.c.reason).where(_holds.c.until == day)
            ).all(),
            columns=["account_id", "reason"],
        )
        fresh = stops.merge(existing, how="left", indicator=True)
        fresh = fresh[fresh["_merge"] == "left_only"].drop(columns="_merge")
        if fresh.empty:
            return 0
        fresh = fresh.assign(until=day)
        return bulk_insert(conn, _holds, fresh, ["account_id", "until", "reason"])
