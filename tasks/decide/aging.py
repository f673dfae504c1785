"""Invoice aging as of a day: what each invoice still owes, how late it is, and each account's
worst stage — because one case per account, at its worst invoice, is how people collect.

The ERP export is the source of truth for balances: an invoice's open amount is its
"remaining amount" when the export carries one, else its amount minus the payments and credit
notes applied to it. Unapplied payments and credit (on account) lower the account's balance,
as do payment events newer than the export (paid since the ERP was last exported).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from config.outreach_policy import OutreachPolicy
from tasks import arrow_text as at

INVOICE_COLUMNS = [
    "account_id", "doc_number", "currency", "customer_type", "issue_date", "due_date",
    "amount", "open_amount", "days_overdue", "stage", "report_bucket",
]  # fmt: skip


def _days(values: pd.Series, as_of: dt.date) -> np.ndarray:
    stamps = pd.to_datetime(values).to_numpy(dtype="datetime64[D]")
    return (np.datetime64(as_of, "D") - stamps).astype("timedelta64[D]").astype("float64")


def stage_of(days_overdue: np.ndarray, policy: OutreachPolicy) -> np.ndarray:
    """Collections stage name per invoice ('' when not due soon enough to chase)."""
    names = np.array(["", *[s.name for s in policy.aging.stages]], dtype=object)
    code = np.zeros(len(days_overdue), dtype=np.int64)
    for i, stage in enumerate(policy.aging.stages, start=1):
        inside = days_overdue >= stage.start
        if stage.end is not None:
            inside &= days_overdue <= stage.end
        code[inside] = i
    return names[code]


def report_bucket(days_overdue: np.ndarray, edges: list[int]) -> np.ndarray:
    """Accountants' columns: current, 1-30, 31-60, 61-90, 90+ (edges from the policy)."""
    labels = ["current"]
    low = 1
    for edge in edges:
        labels.append(f"{low}-{edge}")
        low = edge + 1
    labels.append(f"{edges[-1]}+" if edges else "overdue")
    bins = np.searchsorted(np.array(edges), days_overdue, side="left") + 1
    bins = np.where(days_overdue <= 0, 0, bins)
    return np.array(labels, dtype=object)[bins]


def invoice_aging(open_items: pd.DataFrame, as_of: dt.date, policy: OutreachPolicy) -> pd.DataFrame:
    """One row per invoice that still owes money, with days overdue and stage."""
    items = open_items
    invoices = items[items["doc_type"] == "invoice"]
    applied = items[
        items["doc_type"].isin(["payment", "credit_note"]) & items["applies_to"].notna()
    ]
    applied_key = applied["account_id"].astype("str") + "|" + applied["applies_to"].astype("str")
    applied_sum = applied["amount"].groupby(applied_key.to_numpy(), sort=False).sum()
    key = invoices["account_id"].astype("str") + "|" + invoices["doc_number"].astype("str")
    row = at.positions(key, applied_sum.index)
    paid = np.append(applied_sum.to_numpy(dtype="float64"), 0.0)[row]
    by_applications = invoices["amount"].to_numpy(dtype="float64") - paid
    remaining = invoices["open_amount"].to_numpy(dtype="float64", na_value=np.nan)
    open_amount = np.where(np.isnan(remaining), np.clip(by_applications, 0, None), remaining)
    frame = pd.DataFrame(
        {
            "account_id": invoices["account_id"].array,
            "doc_number": invoices["doc_number"].array,
            "currency": invoices["currency"].array,
            "customer_type": invoices["customer_type"].array,
            "issue_date": invoices["issue_date"].array,
            "due_date": invoices["due_date"].array,
            "amount": invoices["amount"].to_numpy(dtype="float64"),
            "open_amount": open_amount,
        }
    )
    frame = frame[frame["open_amount"] > 0.005].reset_index(drop=True)
    days = _days(frame["due_date"], as_of)
    frame["days_overdue"] = days.astype(np.int64)
    frame["stage"] = stage_of(days, policy)
    frame["report_bucket"] = report_bucket(days, policy.aging.report_buckets)
    return frame[INVOICE_COLUMNS]


# Days of sales behind days sales outstanding (the usual quarterly DSO).
DSO_DAYS = 90
RECEIVABLES_COLUMNS = ["currency", "bucket", "open_amount", "invoices", "invoiced_90d"]


def receivables(
    open_items: pd.DataFrame, aged: pd.DataFrame, as_of: dt.date, policy: OutreachPolicy
) -> pd.DataFrame:
    """Today's receivables per currency and aging bucket, with what was invoiced in the last
    DSO_DAYS days: a day's row of the report's DSO and aging-over-time charts.

    Invoices the export lists as fully paid land in bucket 'paid' (they count as sales, owe
    nothing)."""
    invoices = open_items[open_items["doc_type"] == "invoice"]
    issued = _days(invoices["issue_date"], as_of)
    recent = (issued >= 0) & (issued < DSO_DAYS)
    key = invoices["account_id"].astype("str") + "|" + invoices["doc_number"].astype("str")
    owing_key = aged["account_id"].astype("str") + "|" + aged["doc_number"].astype("str")
    row = at.positions(key, owing_key)
    labels = np.append(aged["report_bucket"].to_numpy(dtype=object), "paid")
    owed = np.append(aged["open_amount"].to_numpy(dtype="float64"), 0.0)
    frame = pd.DataFrame(
        {
            "currency": invoices["currency"].astype("str").to_numpy(dtype=object),
            "bucket": labels[row],
            "open_amount": owed[row],
            "invoices": 1,
            "invoiced_90d": np.where(recent, invoices["amount"].to_numpy(dtype="float64"), 0.0),
        }
    )
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in RECEIVABLES_COLUMNS})
    out = frame.groupby(["currency", "bucket"], sort=True, as_index=False).sum()
    return out[RECEIVABLES_COLUMNS]


def unapplied_credit(open_items: pd.DataFrame) -> pd.Series:
    """Payments and credit notes on account (not applied to an invoice), per account."""
    items = open_items[open_items["doc_type"].isin(["payment", "credit_note"])]
    remaining = items["open_amount"].to_numpy(dtype="float64", na_value=np.nan)
    unapplied = np.where(
        np.isnan(remaining),
        np.where(items["applies_to"].isna(), items["amount"].to_numpy(dtype="float64"), 0.0),
        remaining,
    )
    return pd.Series(unapplied, index=items["account_id"].to_numpy()).groupby(level=0).sum()


def account_aging(
    invoices: pd.DataFrame,
    open_items: pd.DataFrame,
    late_payments: pd.Series,
    policy: OutreachPolicy,
) -> pd.DataFrame:
    """One row per account with open invoices: balance, worst stage, segment.

    `late_payments` is the amount paid per account by events newer than the ERP export.
    """
    order = {s.name: i for i, s in enumerate(policy.aging.stages, start=1)}
    inv = invoices.assign(
        stage_rank=invoices["stage"].map(order).fillna(0).astype(np.int64),
        overdue=np.where(invoices["days_overdue"] > 0, invoices["open_amount"], 0.0),
        chased=invoices["stage"] != "",
    )
    # The account's currency: that of its largest open invoice.
    main = inv.sort_values("open_amount", ascending=False).drop_duplicates("account_id")
    grouped = inv.groupby("account_id", sort=True)
    accounts = pd.DataFrame(
        {
            "open_invoices": grouped.size(),
            "chased_invoices": grouped["chased"].sum(),
            "invoiced_open": grouped["open_amount"].sum(),
            "overdue_amount": grouped["overdue"].sum(),
            "worst_days_overdue": grouped["days_overdue"].max(),
            "stage_rank": grouped["stage_rank"].max(),
            "oldest_due": grouped["due_date"].min(),
        }
    )
    accounts["currency"] = main.set_index("account_id")["currency"].reindex(accounts.index)
    accounts["customer_type"] = main.set_index("account_id")["customer_type"].reindex(
        accounts.index
    )
    credit = unapplied_credit(open_items).reindex(accounts.index).fillna(0.0)
    paid_since = late_payments.reindex(accounts.index).fillna(0.0)
    accounts["balance"] = accounts["invoiced_open"] - credit - paid_since
    names = np.array(["", *order], dtype=object)
    accounts["stage"] = names[accounts["stage_rank"].to_numpy()]
    accounts["paid"] = accounts["balance"] <= policy.aging.paid_tolerance
    accounts["segment"] = segments(accounts, policy)
    return accounts.drop(columns="stage_rank").rename_axis("account_id").reset_index()


def segments(accounts: pd.DataFrame, policy: OutreachPolicy) -> pd.Series:
    """Comma-separated segments per account: 'high_value' and the customer-type group."""
    seg = policy.segments
    per_currency = pd.Series(seg.high_value.per_currency, dtype="float64")
    threshold = per_currency.reindex(accounts["currency"].astype(object).to_numpy()).to_numpy()
    threshold = np.where(np.isnan(threshold), seg.high_value.default, threshold)
    high = np.where(accounts["overdue_amount"].to_numpy() >= threshold, "high_value", "")
    groups = {t.casefold(): name for name, types in seg.customer_types.items() for t in types}
    group = accounts["customer_type"].astype("str").str.casefold().map(groups).fillna("").to_numpy()
    both = np.where((high != "") & (group != ""), ",", "")
    text = np.char.add(np.char.add(high.astype(str), both), group.astype(str))
    return pd.Series(text.astype(object), index=accounts.index)
