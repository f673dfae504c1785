"""`cadencia report`: the results report as one self-contained HTML file (charts embedded).

Read in call order: load the ledger's history → compute each objective → draw → render.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from config.outreach_policy import outreach_policy
from config.report_policy import ReportPolicy
from tasks.report import charts
from tasks.report import outcomes as oc
from tasks.report.results import ResultsData

TEMPLATES = Path(__file__).resolve().parent


@dataclass
class Figure:
    key: str
    title: str
    png: bytes
    note: str = ""

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode()


@dataclass
class Report:
    html: str
    figures: list[Figure]
    lift: pd.DataFrame


def build_report(data: ResultsData, policy: ReportPolicy) -> Report:
    cur = policy.currency
    dso = oc.dso_over_time(data.receivables, policy)
    aging = oc.aging_over_time(data.receivables, policy)
    collections = oc.collections_outcomes(data.cases, data.sent, policy)
    recovery = oc.recovery_by_month(collections)
    by_path = oc.days_to_pay_by(collections, "path")
    by_mix = oc.days_to_pay_by(collections, "mix")
    promises = oc.promises_kept(data.events, data.as_of, policy)
    kept = oc.kept_rate_by_month(promises)
    renewals = oc.renewal_outcomes(data.cases)
    lift = oc.lift(collections, renewals)

    no_paid = "No collections case paid after a touch yet."
    figures = [
        Figure("dso", "Days sales outstanding over time", charts.dso(dso, cur),
               "Receivables divided by the sales of the last 90 days, times 90 (all currencies "
               f"in {cur} at the rates in config/report.yaml)."),
        Figure("aging", "Overdue amount by bucket over time", charts.aging(aging, cur),
               "Open amount per aging bucket on each day the daily flow ran."),
        Figure("recovery", "Recovery rate", charts.by_group(
            recovery, "month", "rate", "Recovery rate by month the case opened",
            "No collections cases yet."),
               "Share of the amount owed when the case opened that has been paid, outreach "
               "against the holdout group."),
        Figure("days-to-pay-path", "Days to pay after the first touch, by cadence path",
               charts.medians(by_path, "path", "By cadence path", no_paid)),
        Figure("days-to-pay-mix", "Days to pay after the first touch, by channel mix",
               charts.medians(by_mix, "mix", "By channel mix", no_paid)),
        Figure("promises", "Promise-to-pay kept rate", charts.rate(
            kept, "month", "Promises kept, by month promised",
            "No promise to pay has reached its date yet."),
               f"Kept: payments within the promised date plus {policy.promise_grace_days} days "
               f"reach {policy.promise_kept_share:.0%} of the promised amount."),
        Figure("renewal-close", "Renewal time to close", charts.distribution(
            renewals[renewals["won"]], "days_to_close", "Days from case opening to a won renewal",
            "No renewal has been won yet."),
               "Won renewals, outreach against the holdout group."),
    ]  # fmt: skip
    unpriced = oc.unpriced_currencies(
        pd.concat([data.receivables["currency"], data.cases["currency"]]), policy
    )
    share = outreach_policy().holdout.share
    html = (
        Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
        .get_template("report.html.j2")
        .render(
            as_of=data.as_of,
            generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            currency=cur,
            days=dso["as_of"].nunique(),
            first_day=dso["as_of"].min() if len(dso) else None,
            latest=_latest(dso),
            counts=_counts(collections, renewals, promises),
            holdout_share=share,
            lift=lift.to_dict("records"),
            lift_columns=list(lift.columns),
            figures=figures,
            unpriced=unpriced,
        )
    )
    return Report(html, figures, lift)


def _latest(dso: pd.DataFrame) -> dict[str, object] | None:
    if dso.empty:
        return None
    last = dso.iloc[-1]
    return {"as_of": last["as_of"], "owed": last["owed"], "dso": last["dso"]}


def _counts(
    collections: pd.DataFrame, renewals: pd.DataFrame, promises: pd.DataFrame
) -> dict[str, int]:
    return {
        "collections": len(collections),
        "collections_holdout": int((collections["group"] == oc.HOLDOUT).sum()),
        "paid": int(collections["paid"].sum()),
        "renewals_closed": len(renewals),
        "promises": len(promises),
    }


def write_report(report: Report, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.html, encoding="utf-8")
    return path
