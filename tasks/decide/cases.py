"""Cases: one renewal case and one collections case at most per account, and their state.

A case carries what the cadence needs to continue tomorrow where it stopped today: when it
opened, which collections stage it is in and since when, and whether a promise, a dispute or
a manual hold pauses it. Every change of state comes with a reason the user can read.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from config.outreach_policy import OutreachPolicy

CASE_COLUMNS = [
    "case_key", "account_id", "kind", "status", "status_reason", "stage", "stage_since",
    "opened_on", "closed_on", "paused_until", "promise_at", "promise_date", "promise_amount",
    "broken_promise_on", "amount", "currency", "segment", "owner", "renewal_date",
    "open_invoices", "worst_days_overdue",
]  # fmt: skip


def empty_cases() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in CASE_COLUMNS})


def _date(value: dt.date) -> np.datetime64:
    return np.datetime64(value, "D")


def as_days(values: pd.Series | np.ndarray) -> np.ndarray:
    """Calendar days (UTC days for timestamps) as datetime64[D], never via Python objects."""
    values = pd.Series(values)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert(None)
    return pd.to_datetime(values).to_numpy(dtype="datetime64[D]")


def case_keys(kind: str, account_id: pd.Series, opened_on: np.ndarray) -> np.ndarray:
    opened = np.datetime_as_string(opened_on.astype("datetime64[D]"), unit="D")
    return (kind + ":" + account_id.astype(str).to_numpy(dtype=str) + ":" + opened).astype(object)


def _carry(current: pd.DataFrame, previous: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Join today's qualifying accounts with the same account's live case from the ledger."""
    live = previous[(previous["kind"] == kind) & previous["status"].isin(["open", "paused"])]
    live = live[["account_id", "opened_on", "stage", "stage_since"]].rename(
        columns={
            "stage": "prev_stage",
            "stage_since": "prev_stage_since",
            "opened_on": "prev_opened",
        }
    )
    return current.merge(
        live.drop_duplicates("account_id"), on="account_id", how="outer", indicator=True
    )


def collections_cases(
    accounts: pd.DataFrame,
    previous: pd.DataFrame,
    promises: pd.DataFrame,
    paid_after_promise: pd.Series,
    last_dispute: pd.Series,
    holds: pd.DataFrame,
    as_of: dt.date,
    policy: OutreachPolicy,
) -> pd.DataFrame:
    """Open, continue, pause or close each account's collections case."""
    today = _date(as_of)
    chased = accounts[(accounts["stage"] != "") & ~accounts["paid"]]
    frame = _carry(chased, previous, "collections")
    new = frame["prev_opened"].isna().to_numpy()
    gone = (frame["_merge"] == "right_only").to_numpy()
    opened = np.where(new, today, as_days(frame["prev_opened"]))
    same_stage = (frame["stage"] == frame["prev_stage"]).to_numpy()
    stage_since = np.where(~new & same_stage, as_days(frame["prev_stage_since"]), today)
    out = pd.DataFrame(
        {
            "account_id": frame["account_id"].to_numpy(dtype=object),
            "kind": "collections",
            "stage": np.where(gone, frame["prev_stage"], frame["stage"]),
            "stage_since": np.where(gone, as_days(frame["prev_stage_since"]), stage_since),
            "opened_on": opened,
            "amount": frame["balance"].to_numpy(dtype="float64"),
            "currency": frame["currency"].to_numpy(dtype=object),
            "segment": frame["segment"].fillna("").to_numpy(dtype=object),
            "open_invoices": frame["open_invoices"].to_numpy(dtype="float64"),
            "worst_days_overdue": frame["worst_days_overdue"].to_numpy(dtype="float64"),
            "owner": None,
            "renewal_date": pd.NaT,
        }
    )
    status = np.where(gone, "closed", "open").astype(object)
    paid = (
        accounts.set_index("account_id")["paid"].reindex(out["account_id"]).to_numpy(dtype=object)
    )
    reason = np.where(new, "opened: invoices due soon or overdue", "").astype(object)
    reason = np.where(gone & (paid == True), "closed: paid", reason)  # noqa: E712
    reason = np.where(gone & (paid != True), "closed: no invoice due soon or overdue", reason)  # noqa: E712
    out["status"], out["status_reason"] = status, reason
    out = _with_promises(out, promises, paid_after_promise, today, policy)
    out = _pause(out, "dispute", last_dispute, policy.cases.dispute_pause_days, today)
    out = _hold(out, holds, today)
    out["case_key"] = case_keys("collections", out["account_id"], out["opened_on"].to_numpy())
    out["closed_on"] = np.where(out["status"] == "closed", today, np.datetime64("NaT"))
    return out[CASE_COLUMNS]


def _with_promises(
    out: pd.DataFrame,
    promises: pd.DataFrame,
    paid_after: pd.Series,
    today: np.datetime64,
    policy: OutreachPolicy,
) -> pd.DataFrame:
    """A promise pauses until its date plus grace; unpaid after that, it is broken."""
    p = promises.reindex(out["account_id"])
    made = pd.to_datetime(p["promise_at"]).to_numpy(dtype="datetime64[ns]")  # naive UTC
    made_day = made.astype("datetime64[D]")
    due = as_days(p["promise_date"]) + np.timedelta64(policy.cases.promise_grace_days, "D")
    # A promise whose due date (plus grace) passed long before this case opened belonged to
    # an earlier case; one made before opening and still pending pauses this one.
    opened = out["opened_on"].to_numpy(dtype="datetime64[D]")
    relevant = ~np.isnat(due) & ~np.isnat(made_day)
    relevant &= due >= opened - np.timedelta64(policy.cases.trigger_within_days, "D")
    paid = paid_after.reindex(out["account_id"]).fillna(0.0).to_numpy()
    promised = p["promise_amount"].to_numpy(dtype="float64")
    kept = paid >= np.nan_to_num(promised, nan=0.0) - policy.aging.paid_tolerance
    live = out["status"].to_numpy() != "closed"
    pausing = relevant & live & (today <= due)
    broken = relevant & live & (today > due) & ~kept
    out["promise_at"] = np.where(relevant, made, np.datetime64("NaT", "ns"))
    out["promise_date"] = np.where(relevant, as_days(p["promise_date"]), np.datetime64("NaT"))
    out["promise_amount"] = np.where(relevant, promised, np.nan)
    out["broken_promise_on"] = np.where(broken, due + np.timedelta64(1, "D"), np.datetime64("NaT"))
    out["paused_until"] = np.where(pausing, due, np.datetime64("NaT"))
    out.loc[pausing, "status"] = "paused"
    dates = np.datetime_as_string(np.where(pausing, due, today), unit="D")
    out.loc[pausing, "status_reason"] = "paused: promise to pay, until " + dates[pausing]
    out.loc[broken, "status_reason"] = "promise broken: due " + np.datetime_as_string(
        due[broken] - np.timedelta64(policy.cases.promise_grace_days, "D"), unit="D"
    )
    return out


def _pause(
    out: pd.DataFrame, what: str, last: pd.Series, days: int, today: np.datetime64
) -> pd.DataFrame:
    """Pause live cases for `days` after the account's latest `what` event."""
    day = pd.to_datetime(last.reindex(out["account_id"])).to_numpy(dtype="datetime64[D]")
    until = day + np.timedelta64(days, "D")
    hit = ~np.isnat(day) & (today <= until) & (out["status"].to_numpy() != "closed")
    out.loc[hit, "status"] = "paused"
    out.loc[hit, "paused_until"] = until[hit]
    out.loc[hit, "status_reason"] = (
        f"paused: {what} on " + np.datetime_as_string(day[hit], unit="D") + ", routed to a person"
    )
    return out


def _hold(out: pd.DataFrame, holds: pd.DataFrame, today: np.datetime64) -> pd.DataFrame:
    """A manual 'do not contact until' holds every live case of the account."""
    if holds.empty:
        return out
    latest = (
        holds.sort_values("until")
        .drop_duplicates("account_id", keep="last")
        .set_index("account_id")
    )
    until = as_days(latest["until"].reindex(out["account_id"]))
    why = latest["reason"].reindex(out["account_id"]).fillna("").to_numpy(dtype=object)
    hit = ~np.isnat(until) & (until >= today) & (out["status"].to_numpy() != "closed")
    out.loc[hit, "status"] = "paused"
    out.loc[hit, "paused_until"] = until[hit]
    note = np.where(why[hit] != "", " (" + why[hit].astype(str) + ")", "")
    out.loc[hit, "status_reason"] = (
        "held: do not contact until " + np.datetime_as_string(until[hit], unit="D") + note
    )
    return out


def current_renewals(renewals: pd.DataFrame) -> pd.DataFrame:
    """One renewal per account: the most recently modified record across both CRMs."""
    r = renewals.sort_values("last_modified", na_position="first", kind="stable")
    return r.drop_duplicates("account_id", keep="last")


def renewal_cases(
    renewals: pd.DataFrame,
    previous: pd.DataFrame,
    holds: pd.DataFrame,
    as_of: dt.date,
    policy: OutreachPolicy,
) -> pd.DataFrame:
    """Open a case N days before the renewal date; close it when the deal is won or lost."""
    today = _date(as_of)
    r = current_renewals(renewals)
    renew_on = as_days(r["renewal_date"])
    window = (renew_on - today).astype("timedelta64[D]").astype(np.int64)
    qualifies = (r["status"].to_numpy() == "open") & (
        window <= policy.cases.renewal_opens_days_before
    )
    qualifies &= window >= -policy.cases.renewal_opens_days_before  # long past: not chased
    current = r[qualifies]
    frame = _carry(current, previous, "renewal")
    new = frame["prev_opened"].isna().to_numpy()
    gone = (frame["_merge"] == "right_only").to_numpy()
    outcome = (
        r.set_index("account_id")["status"].reindex(frame["account_id"]).to_numpy(dtype=object)
    )
    out = pd.DataFrame(
        {
            "account_id": frame["account_id"].to_numpy(dtype=object),
            "kind": "renewal",
            "stage": "renewal",
            "stage_since": np.where(new, today, as_days(frame["prev_opened"])),
            "opened_on": np.where(new, today, as_days(frame["prev_opened"])),
            "amount": frame["amount"].to_numpy(dtype="float64"),
            "currency": frame["currency"].to_numpy(dtype=object),
            "segment": "",
            "open_invoices": np.nan,
            "worst_days_overdue": np.nan,
            "owner": frame["owner"].to_numpy(dtype=object),
            "renewal_date": as_days(frame["renewal_date"]),
        }
    )
    out["status"] = np.where(gone, "closed", "open").astype(object)
    reason = np.where(new, "opened: renewal due within the window", "").astype(object)
    reason = np.where(gone & (outcome == "won"), "closed: deal won", reason)
    reason = np.where(gone & (outcome == "lost"), "closed: deal lost", reason)
    reason = np.where(
        gone & ~np.isin(outcome, ["won", "lost"]), "closed: renewal left the window", reason
    )
    out["status_reason"] = reason
    for col in ("promise_at", "promise_date", "broken_promise_on", "paused_until"):
        out[col] = pd.NaT
    out["promise_amount"] = np.nan
    out = _hold(out, holds, today)
    out["case_key"] = case_keys("renewal", out["account_id"], out["opened_on"].to_numpy())
    out["closed_on"] = np.where(out["status"] == "closed", today, np.datetime64("NaT"))
    return out[CASE_COLUMNS]
