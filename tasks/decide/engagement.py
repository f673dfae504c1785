"""What the events say: who each event is about, what each account did lately, and which
addresses must never be used again.

Events name their subject loosely (a CRM id, an address, a number typed with or without "+"),
so each is linked to a golden contact by the first of those that matches. Only events up to
the end of `as_of` count: a backfill of an old day must not see what happened after it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

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
    return at.replace(values.astype("str"), r"[^0-9]", "")


def _first_match(keys: pd.Series, table_keys: pd.Series, table_ids: pd.Series) -> np.ndarray:
    """The golden id of the first table row whose key equals each key (None when none)."""
    table = pd.DataFrame({"k": table_keys.to_numpy(), "g": table_ids.to_numpy()}).dropna()
    table = table[table["k"] != ""].drop_duplicates("k")
    index = pd.Index(table["k"].to_numpy())
    position = index.get_indexer(keys.to_numpy())
    ids = np.append(table["g"].to_numpy(dtype=object), None)  # position -1 → the None
    return ids[position]


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
    golden_id = by_source
    for other in (by_email, by_mobile, by_phone):
        golden_id = np.where(pd.isna(golden_id), other, golden_id)
    account = ev["account_id"].astype(object).to_numpy()
    contact_account = (
        golden.set_index("golden_id")["account_id"].reindex(golden_id).to_numpy(dtype=object)
    )
    account = np.where(pd.isna(account), contact_account, account)
    return ev.assign(golden_id=golden_id, account_id=account)


def last_seen(linked: pd.DataFrame, by: str) -> pd.DataFrame:
    """Latest time of each kind of signal per `by` (account_id or golden_id).

    Columns: one per SIGNAL_TYPES, plus `call_connected`, `interacted` (any engagement, a reply
    or a connected call) and `promise_at`."""
    ev = linked.dropna(subset=[by])
    kind = ev["event_type"].astype(object).to_numpy()
    connected = (kind == "call_outcome") & (ev["outcome"].astype("str") == "connected").to_numpy()
    kind = np.where(connected, "call_connected", kind)
    stamp = pd.DataFrame({by: ev[by].to_numpy(), "kind": kind, "at": ev["occurred_at"].to_numpy()})
    wanted = [*SIGNAL_TYPES, "call_connected", "promise_to_pay"]
    stamp = stamp[stamp["kind"].isin(wanted)]
    latest = stamp.groupby([by, "kind"])["at"].max().unstack("kind")
    latest = latest.reindex(columns=wanted)
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
    pay = linked[(linked["event_type"] == "payment") & linked["account_id"].isin(since.index)]
    start = since.reindex(pay["account_id"]).to_numpy()
    after = pay["occurred_at"].to_numpy() >= start
    return pay.loc[after].groupby("account_id")["amount"].sum()


def late_payments(linked: pd.DataFrame, export_date: pd.Timestamp | None) -> pd.Series:
    """Payments newer than the ERP export (its newest posting date): not in its balances yet."""
    pay = linked[linked["event_type"] == "payment"]
    if export_date is not None and not pd.isna(export_date):
        pay = pay[
            pay["occurred_at"]
            >= pd.Timestamp(export_date).tz_localize("UTC") + pd.Timedelta(days=1)
        ]
    return pay.groupby("account_id")["amount"].sum()


def suppressions_from(linked: pd.DataFrame) -> pd.DataFrame:
    """(golden_id, channel, reason, since) for every event that closes a channel for good."""
    channel = linked["channel"].astype("str")
    table = {f"{t}|{c}": r for (t, c), r in SUPPRESSING.items()}
    reason = (linked["event_type"].astype("str") + "|" + channel).map(table)
    hit = reason.notna() & linked["golden_id"].notna()
    out = pd.DataFrame(
        {
            "golden_id": linked.loc[hit, "golden_id"].to_numpy(),
            "channel": channel[hit].to_numpy(dtype=object),
            "reason": reason[hit].to_numpy(dtype=object),
            "since": linked.loc[hit, "occurred_at"].to_numpy(),
        }
    )
    return out.sort_values("since").drop_duplicates(["golden_id", "channel"], keep="first")
