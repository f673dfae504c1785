"""Each objective computed exactly on small hand-made histories."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from config.report_policy import ReportPolicy, load_report_policy
from tasks.report import outcomes as oc

POLICY = ReportPolicy(currency="EUR", rates={"EUR": 1.0, "MXN": 0.05})
D1, D2 = dt.date(2026, 11, 2), dt.date(2026, 11, 3)


def _receivables() -> pd.DataFrame:
    rows = [
        (D1, "EUR", "current", 600.0, 900.0),
        (D1, "EUR", "1-30", 300.0, 0.0),
        (D1, "MXN", "90+", 2000.0, 0.0),  # 100 EUR
        (D1, "EUR", "paid", 0.0, 300.0),
        (D2, "EUR", "current", 450.0, 1200.0),
        (D2, "XXX", "1-30", 99.0, 99.0),  # no rate: left out
    ]
    return pd.DataFrame(rows, columns=["as_of", "currency", "bucket", "open_amount",
                                       "invoiced_90d"]).assign(invoices=1)  # fmt: skip


def test_dso_is_receivables_over_ninety_days_of_sales_times_ninety() -> None:
    dso = oc.dso_over_time(_receivables(), POLICY)
    assert list(dso["owed"]) == [1000.0, 450.0]
    assert list(dso["sold"]) == [1200.0, 1200.0]
    assert list(dso["dso"]) == [75.0, 33.75]


def test_aging_over_time_orders_buckets_and_converts_currencies() -> None:
    table = oc.aging_over_time(_receivables(), POLICY)
    assert list(table.columns) == ["current", "1-30", "90+"]
    assert table.loc[D1].tolist() == [600.0, 300.0, 100.0]
    assert table.loc[D2].tolist() == [450.0, 0.0, 0.0]
    assert oc.unpriced_currencies(_receivables()["currency"], POLICY) == ["XXX"]


def _cases() -> pd.DataFrame:
    rows = [  # key, status, reason, opened, closed, balance, opening, holdout
        ("c1", "closed", "closed: paid", D1, dt.date(2026, 11, 13), 0.0, 1000.0, False),
        ("c2", "open", "", D1, None, 250.0, 1000.0, False),
        ("c3", "closed", "closed: no invoice due soon or overdue", D1, D2, None, 500.0, False),
        ("h1", "closed", "closed: paid", D1, dt.date(2026, 11, 22), 0.0, 400.0, True),
        ("h2", "open", "", D2, None, 600.0, 600.0, True),
    ]
    columns = ["case_key", "status", "status_reason", "opened_on", "closed_on", "amount",
               "opening_amount", "holdout"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(kind="collections", currency="EUR")


def _sent() -> pd.DataFrame:
    at = lambda day, hour: pd.Timestamp(f"2026-11-{day:02d} {hour:02d}:00", tz="UTC")  # noqa: E731
    rows = [
        ("c1", "reminder", "email", at(3, 9)),
        ("c1", "call", "voice", at(5, 10)),
        ("c1", "reminder", "email", at(6, 9)),
        ("c2", "reminder", "whatsapp", at(4, 9)),
    ]
    return pd.DataFrame(rows, columns=["case_key", "step", "channel", "sent_at"])


def test_collections_outcomes_measure_recovery_and_days_after_the_first_touch() -> None:
    o = oc.collections_outcomes(_cases(), _sent(), POLICY).set_index("case_key")
    assert o["group"].to_dict() == {"c1": "outreach", "c2": "outreach", "c3": "outreach",
                                    "h1": "holdout", "h2": "holdout"}  # fmt: skip
    assert o["recovered"].to_dict() == {"c1": 1000.0, "c2": 750.0, "c3": 0.0, "h1": 400.0,
                                        "h2": 0.0}  # fmt: skip
    assert o.loc["c1", "days_to_pay"] == 11 and o.loc["h1", "days_to_pay"] == 20
    assert o.loc["c1", "days_after_first_touch"] == 10  # first touch on the 3rd, paid the 13th
    assert o.loc["c1", "path"] == "reminder → call" and o.loc["c1", "mix"] == "email + voice"
    assert o.loc["h1", "path"] == "no touch sent"
    by_month = oc.recovery_by_month(o.reset_index()).set_index("group")["rate"]
    assert by_month["outreach"] == pytest.approx(1750 / 2500)
    assert by_month["holdout"] == pytest.approx(400 / 1000)
    paths = oc.days_to_pay_by(o.reset_index(), "path")
    assert paths.to_dict("records") == [
        {"path": "reminder → call", "cases": 1, "median": 10.0, "mean": 10.0}
    ]


def test_lift_compares_outreach_with_holdout_and_says_when_groups_are_too_small() -> None:
    o = oc.collections_outcomes(_cases(), _sent(), POLICY)
    lift = oc.lift(o, oc.renewal_outcomes(_cases())).set_index("objective")
    paid = lift.loc["collections cases paid"]
    assert (paid["outreach"], paid["holdout"], paid["lift"]) == ("33.3%", "50.0%", "-16.7%")
    assert paid["cases (outreach / holdout)"] == "3 / 2"
    assert paid["note"].startswith("too few cases to tell")
    assert lift.loc["amount recovered", "lift"] == "+30.0%"  # 70% against 40%
    days = lift.loc["days from opening to payment"]
    assert (days["outreach"], days["holdout"], days["lift"]) == (
        "11.0",
        "20.0",
        "-9.0 days (faster)",
    )


def test_a_promise_is_kept_when_payments_reach_it_by_the_promised_date_plus_grace() -> None:
    t = lambda s: pd.Timestamp(s, tz="UTC")  # noqa: E731
    events = pd.DataFrame(
        [
            ("promise_to_pay", "A", t("2026-11-01 10:00"), 100.0, dt.date(2026, 11, 5)),
            ("payment", "A", t("2026-11-08 09:00"), 60.0, None),  # inside the 3-day grace
            ("payment", "A", t("2026-11-08 15:00"), 40.0, None),
            ("promise_to_pay", "B", t("2026-11-01 10:00"), 100.0, dt.date(2026, 11, 5)),
            ("payment", "B", t("2026-11-09 09:00"), 100.0, None),  # a day too late
            ("promise_to_pay", "C", t("2026-11-01 10:00"), 100.0, dt.date(2026, 11, 5)),
            ("payment", "C", t("2026-11-02 09:00"), 50.0, None),  # half: broken
            ("promise_to_pay", "D", t("2026-11-10 10:00"), 100.0, dt.date(2026, 11, 25)),
        ],
        columns=["event_type", "account_id", "occurred_at", "amount", "promised_date"],
    )
    p = oc.promises_kept(events, dt.date(2026, 11, 20), POLICY).set_index("account_id")
    assert p["kept"].to_dict() == {"A": True, "B": False, "C": False}  # D not due yet
    by_month = oc.kept_rate_by_month(p)
    assert by_month[["promises", "kept"]].values.tolist() == [[3, 1]]


def test_renewal_time_to_close_counts_won_deals_per_group() -> None:
    cases = pd.DataFrame(
        [("r1", "closed", "closed: deal won", D1, dt.date(2026, 11, 12), False),
         ("r2", "closed", "closed: deal lost", D1, D2, False),
         ("r3", "open", "", D1, None, True)],
        columns=["case_key", "status", "status_reason", "opened_on", "closed_on", "holdout"],
    ).assign(kind="renewal")  # fmt: skip
    r = oc.renewal_outcomes(cases)
    rows = r[["case_key", "won", "days_to_close"]].values.tolist()
    assert rows == [["r1", True, 10], ["r2", False, 1]]


def test_the_shipped_report_policy_loads() -> None:
    policy = load_report_policy()
    assert policy.currency == "EUR" and policy.rates["EUR"] == 1.0
