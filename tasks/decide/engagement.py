"""What the events say: who each event is about, what each account did lately, and which
addresses must never be used again.

Events name their subject loosely (a CRM id, an address, a number typed with or without "+"),
so each is linked to a golden contact by the first of those that matches. Only events up to
the end of `as_of` count: a backfill of an old day must not see what happened after it.
Linked events carry `occurred_at` as naive UTC datetime64: time-zone-aware columns turn into
Python objects at the first numpy conversion, which costs seconds per million events.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tasks import arrow_text as at

SIGNAL_TYPES = ("opened", "clicked", "read", "replied", "payment", "dispute", "in_app_seen")
ENGAGED = ("opened", "clicked", "read", "replied")
# (event type, channel) → the suppression it puts on the contact's channel, and why.
SUPPRESSING = {
    ("bounced", "email"): "hard bounce",
    ("unsubscribed", "email"): "unsubscribed from email",
    ("unsubscribed", "sms"): "SMS STOP",
    ("unsubscribed", "whatsapp"): "WhatsApp opt-out",
    ("unsubscribed", "rcs"): "RCS opt-out",
    ("failed", "whatsapp"): "WhatsApp undeliverable",
}


def end_of(as_of: dt.date) -> pd.Timestamp:
    return pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)


def _digits(values: pd.Series) -> pd.Series:
    """A phone as bare digits, computed once per distinct string."""
    idx, distinct = at.codes(values)
    digits = at.arrow(at.replace(distinct, r"[^0-9]", ""))
    return at.to_series(digits.take(pa.array(idx, mask=idx < 0)), values.index).astype("str")


def _first_match(keys: pd.Series, table_keys: pd.Series, table_ids: pd.Series) -> np.ndarray:
    """Position in `table_ids` of the first row whose key equals each key (-1 when none).

    Arrow's hash lookup in C: a million keys against a million in a fraction of a second."""
    known = table_keys.astype("str").fillna("")
    position = at.positions(keys, known)
    empty = at.positions(pd.Series([""], dtype="str"), known)[0]
    if empty >= 0:  # an empty key matches nothing
        position[position == empty] = -1
    return position


def link_events(
    events: pd.DataFrame, golden: pd.DataFrame, source_map: pd.DataFrame, as_of: dt.date
) -> pd.DataFrame:
    """Events up to the end of `as_of`, each with the golden id of its contact (or None)."""
    ev = events[events["occurred_at"] < end_of(as_of)]
    by_source = _first_match(
        ev["contact_source_id"], source_map["source_id"], source_map["golden_id"]
    )
    by_email = _first_match(
        ev["contact_email"].astype("str").str.strip().str.lower(),
        golden["email"],
        golden["golden_id"],
    )
    digits = _digits(ev["contact_phone"])
    by_mobile = _first_match(digits, _digits(golden["mobile_e164"]), golden["golden_id"])
    by_phone = _first_match(digits, _digits(golden["phone_e164"]), golden["golden_id"])
    # Source ids point into the source map; the rest into the golden table.
    mapped = np.append(at.positions(source_map["golden_id"], golden["golden_id"]), -1)
    row = mapped[by_source]
    if "golden_id" in ev:  # events from our own webhooks already know their contact
        row = np.where(
            ev["golden_id"].notna().to_numpy(),
            _first_match(ev["golden_id"].astype("str"), golden["golden_id"], golden["golden_id"]),
            row,
        )
    for other in (by_email, by_mobile, by_phone):
        row = np.where(row < 0, other, row)
    pick = pa.array(row, type=pa.int64(), mask=row < 0)
    golden_id = at.arrow(golden["golden_id"]).take(pick)
    contact_account = at.arrow(golden["account_id"]).take(pick)
    account = pc.coalesce(at.arrow(ev["account_id"]), contact_account)
    utc = ev["occurred_at"].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
    optional = [c for c in ("event_id", "currency") if c in ev]
    keep = ["event_type", "channel", "amount", "promised_date", "outcome", *optional]
    return ev[keep].assign(
        golden_id=at.to_series(golden_id, ev.index),
        account_id=at.to_series(account, ev.index),
        occurred_at=utc,
    )


def last_seen(linked: pd.DataFrame, by: str) -> pd.DataFrame:
    """Latest time of each kind of signal per `by` (account_id or golden_id).

    Columns: one per SIGNAL_TYPES, plus `call_connected`, `interacted` (any engagement, a reply
    or a connected call) and `promise_at`."""
    wanted = [*SIGNAL_TYPES, "call_connected", "promise_to_pay"]
    ev = linked[linked[by].notna()]
    kind = at.positions(ev["event_type"], wanted)
    connected = ((ev["event_type"] == "call_outcome") & (ev["outcome"] == "connected")).to_numpy(
        dtype=bool, na_value=False
    )
    kind[connected] = wanted.index("call_connected")
    keep = kind >= 0
    who, names = pd.factorize(ev[by].to_numpy()[keep] if keep.all() else ev.loc[keep, by])
    stamp = ev["occurred_at"].to_numpy(dtype="datetime64[ns]")[keep].astype(np.int64)
    nat = np.iinfo(np.int64).min
    grid = np.full((len(names), len(wanted)), nat, dtype=np.int64)
    np.maximum.at(grid, (who, kind[keep]), stamp)
    latest = pd.DataFrame(
        grid.view("datetime64[ns]"), index=pd.Index(names, name=by), columns=wanted
    )
    latest["interacted"] = latest[[*ENGAGED, "call_connected"]].max(axis=1)
    return latest.rename(columns={"promise_to_pay": "promise_at"})


def promises(linked: pd.DataFrame) -> pd.DataFrame:
    """The latest promise to pay per account: when made, for when, how much."""
    p = linked[(linked["event_type"] == "promise_to_pay") & linked["account_id"].notna()]
    p = p.sort_values("occurred_at").drop_duplicates("account_id", keep="last")
    return pd.DataFrame(
        {
            "promise_at": p["occurred_at"].to_numpy(),
            "promise_date": pd.to_datetime(p["promised_date"]).dt.date.to_numpy(),
            "promise_amount": p["amount"].to_numpy(dtype="float64", na_value=np.nan),
        },
        index=pd.Index(p["account_id"].to_numpy(), name="account_id"),
    )


def paid_since(linked: pd.DataFrame, since: pd.Series) -> pd.Series:
    """Amount paid per account by payment events at or after `since` (per account)."""
    pay = linked[linked["event_type"] == "payment"]
    row = at.positions(pay["account_id"], since.index)
    start = np.append(since.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT"))[row]
    after = (row >= 0) & (pay["occurred_at"].to_numpy(dtype="datetime64[ns]") >= start)
    return pay.loc[after].groupby("account_id")["amount"].sum()


def late_payments(linked: pd.DataFrame, export_date: pd.Timestamp | None) -> pd.Series:
    """Payments newer than the ERP export (its newest posting date): not in its balances yet."""
    pay = linked[linked["event_type"] == "payment"]
    if export_date is not None and not pd.isna(export_date):
        pay = pay[pay["occurred_at"] >= pd.Timestamp(export_date) + pd.Timedelta(days=1)]
    return pay.groupby("account_id")["amount"].sum()


def suppressions_from(linked: pd.DataFrame) -> pd.DataFrame:
    """(golden_id, channel, reason, since) for every event that closes a channel for good."""
    channel = linked["channel"].astype("str")
    reason = pd.Series(None, index=linked.index, dtype=object)
    for (event_type, on), why in SUPPRESSING.items():
        reason[((linked["event_type"] == event_type) & (channel == on)).fillna(False)] = why
    hit = reason.notna() & linked["golden_id"].notna()
    out = pd.DataFrame(
        {
            "golden_id": linked.loc[hit, "golden_id"].to_numpy(),
            "channel": channel[hit].to_numpy(dtype=object),
            "reason": reason[hit].to_numpy(dtype=object),
            "since": pd.to_datetime(linked.loc[hit, "occurred_at"], utc=True).to_numpy(),
        }
    )
    return out.sort_values("since").drop_duplicates(["golden_id", "channel"], keep="first")
