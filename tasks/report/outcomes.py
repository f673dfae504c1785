"""Results by objective, from the ledger's history: DSO, aging, recovery, days to pay, promises
kept, renewal time to close — and the lift of the outreach against the holdout group.

Pure functions on DataFrames (read by `tasks/report/results.py`). Amounts in several
currencies are added in the report currency at the configured rates (config/report.yaml);
an amount in a currency without a rate is left out of sums and counted in `unpriced`.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from config.report_policy import ReportPolicy
from tasks.decide.aging import DSO_DAYS

OUTREACH, HOLDOUT = "outreach", "holdout"
PAID = "closed: paid"
WON = "closed: deal won"
# Below this many cases in a group a difference is noise; the report says so.
MIN_GROUP = 30


def in_report_currency(amount: pd.Series, currency: pd.Series, policy: ReportPolicy) -> pd.Series:
    """Amounts converted at the configured rates (NaN where the currency has no rate)."""
    rate = currency.astype("str").map(policy.rates).astype("float64")
    return amount.astype("float64") * rate.to_numpy()


def unpriced_currencies(currencies: pd.Series, policy: ReportPolicy) -> list[str]:
    return sorted(set(currencies.dropna().astype(str)) - set(policy.rates))


def dso_over_time(receivables: pd.DataFrame, policy: ReportPolicy) -> pd.DataFrame:
    """Days sales outstanding per day: receivables / sales of the last 90 days x 90."""
    r = receivables.assign(
        owed=in_report_currency(receivables["open_amount"], receivables["currency"], policy),
        sold=in_report_currency(receivables["invoiced_90d"], receivables["currency"], policy),
    )
    day = r.groupby("as_of", sort=True)[["owed", "sold"]].sum()
    day["dso"] = day["owed"] / day["sold"].where(day["sold"] > 0) * DSO_DAYS
    return day.reset_index()


def aging_over_time(receivables: pd.DataFrame, policy: ReportPolicy) -> pd.DataFrame:
    """Open amount per day (rows) and aging bucket (columns, current first), report currency."""
    r = receivables[receivables["bucket"] != "paid"]
    owed = in_report_currency(r["open_amount"], r["currency"], policy)
    table = owed.groupby([r["as_of"], r["bucket"]]).sum().unstack(fill_value=0.0)
    order = sorted(table.columns, key=_bucket_order)
    return table[order].sort_index()


def _bucket_order(label: str) -> int:
    if label == "current":
        return -1
    return int(label.split("-")[0].rstrip("+"))


def collections_outcomes(
    cases: pd.DataFrame, sent: pd.DataFrame, policy: ReportPolicy
) -> pd.DataFrame:
    """One row per collections case: group, amounts, whether and when it was paid, and the
    cadence path and channel mix that reached it (sent touches, in order)."""
    c = cases[cases["kind"] == "collections"].copy()
    opening = c["opening_amount"].astype("float64").fillna(c["amount"].astype("float64"))
    balance = c["amount"].astype("float64")
    paid = (c["status_reason"] == PAID).to_numpy()
    recovered = np.where(paid, opening, np.clip(opening - balance.fillna(opening), 0, None))
    recovered = np.where((c["status"] == "closed").to_numpy() & ~paid, 0.0, recovered)
    c["group"] = np.where(c["holdout"].fillna(False).astype(bool), HOLDOUT, OUTREACH)
    c["opened"] = in_report_currency(opening, c["currency"], policy)
    c["recovered"] = in_report_currency(pd.Series(recovered, index=c.index), c["currency"], policy)
    c["paid"] = paid
    opened_on = pd.to_datetime(c["opened_on"])
    closed_on = pd.to_datetime(c["closed_on"])
    c["days_to_pay"] = np.where(paid, (closed_on - opened_on).dt.days, np.nan)

    s = sent[sent["case_key"].isin(c["case_key"])].sort_values(["case_key", "sent_at"])
    first = s.groupby("case_key")["sent_at"].min()
    steps = s.drop_duplicates(["case_key", "step"]).groupby("case_key")["step"].agg(" → ".join)
    mix = (
        s.drop_duplicates(["case_key", "channel"])
        .sort_values(["case_key", "channel"])
        .groupby("case_key")["channel"]
        .agg(" + ".join)
    )
    keys = c["case_key"].astype(object)
    c["first_touch"] = pd.to_datetime(first.reindex(keys).to_numpy(), utc=True)
    c["path"] = steps.reindex(keys).fillna("no touch sent").to_numpy(dtype=object)
    c["mix"] = mix.reindex(keys).fillna("no touch sent").to_numpy(dtype=object)
    first_day = c["first_touch"].dt.tz_convert(None).dt.normalize()
    after = (closed_on - first_day).dt.days.clip(lower=0)
    c["days_after_first_touch"] = np.where(paid & first_day.notna().to_numpy(), after, np.nan)
    return c.reset_index(drop=True)


def recovery_by_month(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Share of the amount in cases opened each month that has been recovered, per group."""
    o = outcomes.assign(month=pd.to_datetime(outcomes["opened_on"]).dt.to_period("M"))
    by = o.groupby(["month", "group"])[["opened", "recovered"]].sum().reset_index()
    by["rate"] = by["recovered"] / by["opened"].where(by["opened"] > 0)
    return by


def days_to_pay_by(outcomes: pd.DataFrame, key: str, top: int = 8) -> pd.DataFrame:
    """Days from the first touch to payment, per cadence path or channel mix (paid cases)."""
    paid = outcomes[outcomes["paid"] & outcomes["days_after_first_touch"].notna()]
    table = (
        paid.groupby(key)["days_after_first_touch"]
        .agg(cases="size", median="median", mean="mean")
        .sort_values("cases", ascending=False, kind="stable")
        .head(top)
        .reset_index()
    )
    return table


def promises_kept(events: pd.DataFrame, as_of: dt.date, policy: ReportPolicy) -> pd.DataFrame:
    """Every promise to pay whose grace has run out by `as_of`: kept when the account's
    payments between the promise and the promised date plus grace reach the promised share."""
    p = events[(events["event_type"] == "promise_to_pay") & events["promised_date"].notna()]
    p = p[["account_id", "occurred_at", "promised_date", "amount"]].reset_index(drop=True)
    p["promise"] = np.arange(len(p))
    p["due"] = pd.to_datetime(p["promised_date"]) + pd.Timedelta(days=policy.promise_grace_days)
    p = p[p["due"] < pd.Timestamp(as_of)]
    pay = events[events["event_type"] == "payment"][["account_id", "occurred_at", "amount"]]
    pay = pay.rename(columns={"occurred_at": "paid_at", "amount": "paid"})
    pairs = p.merge(pay, on="account_id", how="left")
    paid_at = pd.to_datetime(pairs["paid_at"], utc=True).dt.tz_convert(None)
    made = pd.to_datetime(pairs["occurred_at"], utc=True).dt.tz_convert(None)
    inside = (paid_at >= made) & (paid_at < pairs["due"] + pd.Timedelta(days=1))
    pairs["paid"] = pairs["paid"].astype("float64").where(inside, 0.0).fillna(0.0)
    pairs["any_payment"] = inside
    got = pairs.groupby("promise").agg(paid=("paid", "sum"), any_payment=("any_payment", "any"))
    p = p.join(got, on="promise")
    promised = p["amount"].astype("float64")
    p["kept"] = np.where(
        promised.notna() & (promised > 0),
        p["paid"] >= promised * policy.promise_kept_share,
        p["any_payment"],
    ).astype(bool)
    p["month"] = pd.to_datetime(p["promised_date"]).dt.to_period("M")
    return p


def kept_rate_by_month(promises: pd.DataFrame) -> pd.DataFrame:
    by = promises.groupby("month")["kept"].agg(promises="size", kept="sum").reset_index()
    by["rate"] = by["kept"] / by["promises"]
    return by


def renewal_outcomes(cases: pd.DataFrame) -> pd.DataFrame:
    """Renewal cases that closed: won or not, and days from opening to close, per group."""
    r = cases[(cases["kind"] == "renewal") & (cases["status"] == "closed")].copy()
    r["group"] = np.where(r["holdout"].fillna(False).astype(bool), HOLDOUT, OUTREACH)
    r["won"] = (r["status_reason"] == WON).to_numpy()
    r["days_to_close"] = (pd.to_datetime(r["closed_on"]) - pd.to_datetime(r["opened_on"])).dt.days
    return r.reset_index(drop=True)


def lift(outcomes: pd.DataFrame, renewals: pd.DataFrame) -> pd.DataFrame:
    """Outreach against holdout on each objective, with the cases behind each figure and, for
    shares, a 95% interval of the difference (normal approximation)."""
    rows = [
        _share_row("collections cases paid", outcomes, "paid"),
        _amount_row("amount recovered", outcomes),
        _median_row("days from opening to payment", outcomes[outcomes["paid"]], "days_to_pay"),
        _share_row("renewals won", renewals, "won"),
        _median_row("days to close a won renewal", renewals[renewals["won"]], "days_to_close"),
    ]
    return pd.DataFrame(rows)


def _groups(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return frame[frame["group"] == OUTREACH], frame[frame["group"] == HOLDOUT]


def _verdict(n_out: int, n_hold: int) -> str:
    if min(n_out, n_hold) < MIN_GROUP:
        return f"too few cases to tell (fewer than {MIN_GROUP} in a group)"
    return ""


def _row(
    metric: str,
    out: pd.DataFrame,
    hold: pd.DataFrame,
    values: tuple[str, str],
    lift: str,
    interval: str = "",
) -> dict[str, object]:
    """One line of the lift table: the figure of each group, the difference, the cases."""
    return {"objective": metric, "outreach": values[0], "holdout": values[1], "lift": lift,
            "95% interval": interval, "cases (outreach / holdout)": f"{len(out)} / {len(hold)}",
            "note": _verdict(len(out), len(hold))}  # fmt: skip


def _share_row(metric: str, frame: pd.DataFrame, flag: str) -> dict[str, object]:
    out, hold = _groups(frame)
    n1, n2 = len(out), len(hold)
    p1 = float(out[flag].mean()) if n1 else math.nan
    p2 = float(hold[flag].mean()) if n2 else math.nan
    diff = p1 - p2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2) if n1 and n2 else math.nan
    interval = f"{diff - 1.96 * se:+.1%} to {diff + 1.96 * se:+.1%}" if se == se else ""
    lift = "" if diff != diff else f"{diff:+.1%}"
    return _row(metric, out, hold, (_pct(p1), _pct(p2)), lift, interval)


def _amount_row(metric: str, frame: pd.DataFrame) -> dict[str, object]:
    out, hold = _groups(frame)
    r1 = out["recovered"].sum() / out["opened"].sum() if out["opened"].sum() > 0 else math.nan
    r2 = hold["recovered"].sum() / hold["opened"].sum() if hold["opened"].sum() > 0 else math.nan
    diff = r1 - r2
    return _row(metric, out, hold, (_pct(r1), _pct(r2)), "" if diff != diff else f"{diff:+.1%}")


def _median_row(metric: str, frame: pd.DataFrame, column: str) -> dict[str, object]:
    """Median days per group; fewer days is better (faster payment, faster close)."""
    out, hold = _groups(frame)
    m1 = float(out[column].median()) if len(out) else math.nan
    m2 = float(hold[column].median()) if len(hold) else math.nan
    diff = m1 - m2
    lift = "" if diff != diff else f"{diff:+.1f} days" + (" (faster)" if diff < 0 else "")
    return _row(metric, out, hold, (_days(m1), _days(m2)), lift)


def _pct(value: float) -> str:
    return "–" if value != value else f"{value:.1%}"


def _days(value: float) -> str:
    return "–" if value != value else f"{value:.1f}"
