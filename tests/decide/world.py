"""A small world for decision tests: contacts, invoices, renewals and events declared up front,
then simulated day after day with the ledger's state carried in memory (as `load_state` and
`save_plan` would carry it), so scenario and property tests run the real planner quickly.

Events are all declared at once: each simulated day only sees those up to its end, like a
daily export would. ERP items may have a validity window, since the ERP export changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from config.contacts_policy import contacts_policy
from config.outreach_policy import OutreachPolicy, outreach_policy
from tasks.contacts.build import unify_contacts
from tasks.decide.plan import (
    CASE_STATE_COLUMNS,
    HISTORY_COLUMNS,
    LedgerState,
    Plan,
    PlanInputs,
    plan_outreach,
)
from tasks.sources.schemas import KINDS

TZ = "Europe/Madrid"


def _frame(kind: str, rows: list[dict[str, Any]], source: str, system: str) -> pd.DataFrame:
    """Rows shaped like ingestion's accepted frame for `kind` (parsed dtypes, all fields)."""
    n = len(rows)
    frame = pd.DataFrame(
        {
            "source": pd.Series([source] * n, dtype="str"),
            "system": pd.Series([system] * n, dtype="str"),
            "source_row": pd.Series(range(2, n + 2), dtype="int64"),
        }
    )
    for name, spec in KINDS[kind].fields.items():
        values = [row.get(name) for row in rows]
        if spec.type == "bool":
            frame[name] = pd.Series(values, dtype="boolean")
        elif spec.type == "datetime":
            frame[name] = pd.Series(pd.to_datetime(values, utc=True), dtype="datetime64[us, UTC]")
        elif spec.type == "date":
            frame[name] = pd.Series(pd.to_datetime(values), dtype="datetime64[us]")
        elif spec.type == "number":
            frame[name] = pd.Series(values, dtype="float64")
        else:
            frame[name] = pd.Series([None if v is None else str(v) for v in values], dtype="str")
    return frame


@dataclass
class World:
    contacts: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    renewals: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def contact(self, source_id: str, account: str, **fields: Any) -> str:
        row = {
            "source_id": source_id,
            "account_id": account,
            "first_name": source_id.title(),
            "last_name": "Tester",
            "email": f"{source_id}@{account.lower()}.example.com",
            "mobile_phone": None,
            "country": "ES",
            "role": "Billing",
            "email_opt_in": True,
            "whatsapp_opt_in": True,
            "sms_opt_in": True,
            "marketing_opt_in": True,
            "last_modified": "2026-01-01T00:00:00Z",
        }
        row.update(fields)
        self.contacts.append(row)
        return source_id

    def invoice(self, account: str, number: str, due: dt.date, amount: float, **extra: Any) -> None:
        row = {"doc_type": "invoice", "doc_number": number, "account_id": account,
               "issue_date": due - dt.timedelta(days=30), "due_date": due, "amount": amount,
               "open_amount": amount, "currency": "EUR", "status": "Open"}  # fmt: skip
        row.update(extra)
        self.items.append(row)

    def renewal(self, account: str, renewal_date: dt.date, **extra: Any) -> None:
        row = {"source_id": f"opp-{account}-{len(self.renewals)}", "account_id": account,
               "stage": "Negotiation", "status": "open", "renewal_date": renewal_date,
               "amount": 12000.0, "currency": "EUR", "owner": "Olga Owner",
               "last_modified": "2026-01-01T00:00:00Z"}  # fmt: skip
        row.update(extra)
        self.renewals.append(row)

    def event(self, event_type: str, when: str | dt.datetime, account: str, **extra: Any) -> None:
        row = {"event_id": f"evt-{len(self.events)}", "occurred_at": when,
               "event_type": event_type, "account_id": account}  # fmt: skip
        row.update(extra)
        self.events.append(row)

    @cached_property
    def _contacts(self):  # noqa: ANN202 - the unified Contacts of this world
        frame = _frame("contacts", self.contacts, "salesforce_contacts", "salesforce")
        return unify_contacts([frame], contacts_policy(), "ES")

    def golden_id(self, source_id: str) -> str:
        m = self._contacts.source_map
        return str(m.loc[m["source_id"] == source_id, "golden_id"].iloc[0])

    def inputs(self, as_of: dt.date) -> PlanInputs:
        items = [
            {k: v for k, v in i.items() if k not in ("since", "until")}
            for i in self.items
            if i.get("since", dt.date.min) <= as_of < i.get("until", dt.date.max)
        ]
        c = self._contacts
        return PlanInputs(
            open_items=_frame("open_items", items, "erp_open_items", "erp"),
            renewals=_frame("renewals", self.renewals, "salesforce_opportunities", "salesforce"),
            events=_frame("events", self.events, "events", "events"),
            golden=c.golden,
            source_map=c.source_map,
            consent_wide=c.consent_wide,
        )


class Simulation:
    """Runs the planner day after day, carrying the ledger's state in memory."""

    def __init__(self, world: World, policy: OutreachPolicy | None = None) -> None:
        self.world = world
        self.policy = policy or outreach_policy()
        self.state = LedgerState()
        self.plans: dict[dt.date, Plan] = {}

    def day(self, as_of: dt.date) -> Plan:
        plan = plan_outreach(self.world.inputs(as_of), self.state, as_of, self.policy, TZ)
        self.plans[as_of] = plan
        touches = plan.touches.assign(as_of=as_of)[HISTORY_COLUMNS]
        history = [h for h in (self.state.history, touches) if len(h)]
        self.state.history = pd.concat(history, ignore_index=True) if history else touches
        live = plan.cases[plan.cases["status"].isin(["open", "paused"])]
        self.state.cases = live[CASE_STATE_COLUMNS].reset_index(drop=True)
        fresh = [s for s in (self.state.suppressions, plan.new_suppressions) if len(s)]
        if fresh:
            self.state.suppressions = pd.concat(fresh, ignore_index=True)
        return plan

    def run(self, start: dt.date, days: int) -> None:
        for offset in range(days):
            self.day(start + dt.timedelta(days=offset))

    @property
    def touches(self) -> pd.DataFrame:
        parts = [p.touches for p in self.plans.values() if len(p.touches)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    @property
    def decisions(self) -> pd.DataFrame:
        return pd.concat([p.decisions for p in self.plans.values()], ignore_index=True)

    def steps_on(self, as_of: dt.date) -> list[tuple[str, str]]:
        t = self.plans[as_of].touches
        return sorted(zip(t["step"], t["channel"], strict=True)) if len(t) else []
