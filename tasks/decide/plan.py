"""The decide step: from today's exports, contacts and the ledger's state to an outreach plan.

Read in call order: link events → age invoices → open/continue/close cases → due steps →
recipients → channels (consent, capability, suppression, in-app, affinity) → schedule (quiet
hours, holidays, caps, gaps) → planned touches and a decision row for everything considered.
Pure on DataFrames: the ledger is read before and written after by `tasks/ledger/outreach.py`.
"""

from __future__ import annotations

import datetime as dt
import resource
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from config.outreach_policy import OutreachPolicy
from tasks.decide import engagement, holdout
from tasks.decide.affinity import channel_affinity
from tasks.decide.aging import account_aging, invoice_aging, receivables
from tasks.decide.cadences import DECISION_COLUMNS, decision_rows, due_steps
from tasks.decide.cases import collections_cases, empty_cases, renewal_cases
from tasks.decide.channels import choose_channels, recipients
from tasks.decide.schedule import schedule

TOUCH_COLUMNS = [
    "idempotency_key", "case_key", "account_id", "kind", "stage", "step", "golden_id",
    "channel", "template", "purpose", "assignee", "send_at", "send_at_local", "time_zone",
    "as_of", "status", "message_ref", "fallback_channel", "context",
]  # fmt: skip
# What the planner needs of each live case from earlier runs (LedgerState.cases).
CASE_STATE_COLUMNS = [
    "case_key", "account_id", "kind", "status", "stage", "stage_since", "opened_on", "holdout",
]  # fmt: skip
HISTORY_COLUMNS = [
    "case_key",
    "step",
    "golden_id",
    "channel",
    "purpose",
    "send_at",
    "as_of",
    "status",
]


# The columns the planner reads from each input (the rest of an export is not needed here).
PLAN_COLUMNS: dict[str, list[str]] = {
    "open_items": ["doc_type", "doc_number", "account_id", "customer_type", "issue_date",
                   "due_date", "amount", "open_amount", "applies_to", "currency"],
    "renewals": ["source_id", "account_id", "status", "renewal_date", "amount", "currency",
                 "owner", "last_modified"],
    "events": ["event_id", "occurred_at", "event_type", "channel", "account_id",
               "contact_source_id",
               "contact_email", "contact_phone", "amount", "currency", "promised_date", "outcome",
               "golden_id"],
    "golden": ["golden_id", "account_id", "email", "phone_e164",
               "phone_type", "mobile_e164", "mobile_type", "region", "time_zone",
               "collections_tier", "renewals_tier", "receives_collections", "receives_renewals"],
    "source_map": ["golden_id", "system", "source_id"],
}  # fmt: skip


@dataclass
class PlanInputs:
    open_items: pd.DataFrame
    renewals: pd.DataFrame
    events: pd.DataFrame
    golden: pd.DataFrame
    source_map: pd.DataFrame
    consent_wide: pd.DataFrame
    # The ERP export's date (its newest issue date); set by a shard split, which sees only part
    # of the book, so every shard measures "paid since the export" from the same day.
    export_date: pd.Timestamp | None = None

    def book_export_date(self) -> pd.Timestamp | None:
        """The export's date: given (a shard), else the newest issue date in the export."""
        if self.export_date is None and len(self.open_items):
            return self.open_items["issue_date"].max()
        return self.export_date

    def __post_init__(self) -> None:
        # Only what the planner reads (pandas' copy-on-write makes this selection free).
        for name, columns in PLAN_COLUMNS.items():
            frame = getattr(self, name)
            setattr(self, name, frame[[c for c in columns if c in frame.columns]])


@dataclass
class LedgerState:
    """What earlier runs left: live cases, recent touches, holds, suppressions."""

    cases: pd.DataFrame = field(default_factory=empty_cases)
    history: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({c: pd.Series(dtype=object) for c in HISTORY_COLUMNS})
    )
    holds: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {c: pd.Series(dtype=object) for c in ("account_id", "until", "reason")}
        )
    )
    suppressions: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {c: pd.Series(dtype=object) for c in ("golden_id", "channel", "reason", "since")}
        )
    )


@dataclass
class Plan:
    as_of: dt.date
    invoices: pd.DataFrame
    accounts: pd.DataFrame
    cases: pd.DataFrame
    touches: pd.DataFrame
    decisions: pd.DataFrame
    new_suppressions: pd.DataFrame
    # Open receivables by currency and aging bucket today (for DSO and aging over time).
    receivables: pd.DataFrame
    # Every event up to today, linked to its contact (payments and promises are recorded).
    events: pd.DataFrame
    phase_seconds: dict[str, float] = field(default_factory=dict)
    phase_peak_mb: dict[str, float] = field(default_factory=dict)


def plan_outreach(
    inputs: PlanInputs,
    state: LedgerState,
    as_of: dt.date,
    policy: OutreachPolicy,
    fallback_tz: str,
) -> Plan:
    clock = _Clock()
    linked = engagement.link_events(inputs.events, inputs.golden, inputs.source_map, as_of)
    clock.lap("link events")

    invoices = invoice_aging(inputs.open_items, as_of, policy)
    late = engagement.late_payments(linked, inputs.book_export_date())
    accounts = account_aging(invoices, inputs.open_items, late, policy)
    clock.lap("aging")

    signals = engagement.last_seen(linked, "account_id")
    promises = engagement.promises(linked)
    paid_after = engagement.paid_since(linked, promises["promise_at"])
    dispute = signals["dispute"] if "dispute" in signals else pd.Series(dtype="datetime64[ns, UTC]")
    cases = pd.concat(
        [
            collections_cases(
                accounts, state.cases, promises, paid_after, dispute, state.holds, as_of, policy
            ),
            renewal_cases(inputs.renewals, state.cases, state.holds, as_of, policy),
        ],
        ignore_index=True,
    )
    cases["holdout"] = holdout.assign(cases, state.cases, policy.holdout)
    clock.lap("cases")

    steps, step_notes = due_steps(cases, signals, state.history, as_of, policy)
    steps, holdout_notes = holdout.withhold(steps, cases)
    candidates = recipients(steps, inputs.golden)
    clock.lap("cadences")

    new_suppressions = engagement.suppressions_from(linked)
    suppressed = pd.concat(
        [state.suppressions, new_suppressions], ignore_index=True
    ).drop_duplicates(["golden_id", "channel"])
    seen = engagement.last_seen(linked, "golden_id")
    in_app_seen = seen["in_app_seen"] if "in_app_seen" in seen else pd.Series(dtype=object)
    affinity = channel_affinity(linked, as_of, policy)
    chosen, channel_notes = choose_channels(
        candidates, inputs.golden, inputs.consent_wide, suppressed, in_app_seen, affinity,
        engagement.end_of(as_of), policy,
    )  # fmt: skip
    clock.lap("channels")

    touches, schedule_notes = schedule(
        chosen, inputs.golden, state.history, as_of, policy, fallback_tz
    )
    touches = _finish_touches(touches, cases, as_of, policy)
    touches["context"] = message_context(touches["account_id"], invoices)
    clock.lap("schedule")

    parts = [_case_notes(cases), step_notes, holdout_notes, channel_notes, schedule_notes,
             _touch_notes(touches, as_of)]  # fmt: skip
    decisions = _stack(parts)
    decisions["as_of"] = as_of
    known = new_suppressions.merge(
        state.suppressions[["golden_id", "channel"]], how="left", indicator=True
    )
    fresh = known[known["_merge"] == "left_only"].drop(columns="_merge")
    clock.lap("decisions")
    return Plan(
        as_of, invoices, accounts, cases, touches, decisions, fresh,
        receivables(inputs.open_items, invoices, as_of, policy), linked, clock.laps, clock.peaks,
    )  # fmt: skip


def book_records(
    inputs: PlanInputs, as_of: dt.date, policy: OutreachPolicy
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What is recorded once for the whole book, not per shard: today's receivables and the
    events linked to their contacts (the business ones are kept in the ledger)."""
    linked = engagement.link_events(inputs.events, inputs.golden, inputs.source_map, as_of)
    invoices = invoice_aging(inputs.open_items, as_of, policy)
    return receivables(inputs.open_items, invoices, as_of, policy), linked


def _finish_touches(
    touches: pd.DataFrame, cases: pd.DataFrame, as_of: dt.date, policy: OutreachPolicy
) -> pd.DataFrame:
    """Idempotency keys, call-task assignees and local send times."""
    t = touches
    if t.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TOUCH_COLUMNS})
    for col in t.columns:  # categories served the planning; the ledger wants plain values
        if isinstance(t[col].dtype, pd.CategoricalDtype):
            t[col] = t[col].astype(object)
    day = as_of.isoformat()
    t["idempotency_key"] = (
        t["case_key"] + "|" + t["step"] + "|" + t["channel"] + "|" + t["golden_id"] + "|" + day
    )
    owner = cases.set_index("case_key")["owner"].reindex(t["case_key"]).to_numpy(dtype=object)
    queue = t["kind"].map(policy.call_queues).to_numpy(dtype=object)
    wants_owner = t["assignee"].to_numpy(dtype=object) == "owner"
    assignee = np.where(wants_owner & pd.notna(owner), owner, t["assignee"].to_numpy(dtype=object))
    assignee = np.where(wants_owner & pd.isna(owner), queue, assignee)
    t["assignee"] = np.where(t["channel"] == "voice", assignee, None)
    t["time_zone"] = t["tz"]
    t["send_at_local"] = _local_text(t["send_at"], t["tz"])
    t["as_of"] = as_of
    t["status"] = "planned"
    t["message_ref"] = [message_ref(k) for k in t["idempotency_key"]]
    if "fallback_channel" not in t:
        t["fallback_channel"] = None
    t["context"] = None
    return t[TOUCH_COLUMNS + ["deferred", "local_day", "choice"]]


# Our id for a message, echoed by providers: a UUID (RBM wants one) derived from the key, so
# the same touch always carries the same id, whichever run or retry sends it.
MESSAGE_REF_NAMESPACE = uuid.UUID("6f1d3c52-9a8e-4f0e-9b65-6361646e6369")


def message_ref(idempotency_key: str) -> str:
    return str(uuid.uuid5(MESSAGE_REF_NAMESPACE, idempotency_key))


CONTEXT_INVOICES = 10


def message_context(account_ids: pd.Series, invoices: pd.DataFrame) -> list[dict | None]:
    """Per touch, the account's open invoices (worst first, at most ten) for the message and
    the agent's call brief: the ledger keeps cases, not invoices."""
    if account_ids.empty:
        return []
    wanted = invoices[invoices["account_id"].isin(account_ids.unique())]
    wanted = wanted.sort_values(["account_id", "days_overdue"], ascending=[True, False])
    wanted = wanted[wanted.groupby("account_id").cumcount() < CONTEXT_INVOICES]
    by_account: dict[str, list[dict]] = {}
    # One pass over the (few) invoices of today's accounts: building JSON is per record anyway.
    for account, number, due, amount, currency, days in zip(
        wanted["account_id"].astype(object), wanted["doc_number"].astype(object),
        pd.to_datetime(wanted["due_date"]).dt.strftime("%Y-%m-%d").astype(object),
        wanted["open_amount"].round(2), wanted["currency"].astype(object),
        wanted["days_overdue"], strict=True,
    ):  # fmt: skip
        by_account.setdefault(account, []).append(
            {
                "number": number,
                "due_date": due,
                "open_amount": float(amount),
                "currency": currency,
                "days_overdue": int(days),
            }  # fmt: skip
        )
    return [({"invoices": by_account[a]} if a in by_account else None) for a in account_ids]


def _local_text(moments: pd.Series, zones: pd.Series) -> np.ndarray:
    out = np.empty(len(moments), dtype=object)
    codes, names = pd.factorize(zones)
    for i, zone in enumerate(names):
        hit = codes == i
        out[hit] = moments[hit].dt.tz_convert(zone).dt.strftime("%Y-%m-%d %H:%M ") + zone
    return out


_FEW_VALUES = ("kind", "stage", "step", "channel", "outcome", "rule")


def _stack(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The decision parts as one table, built a column at a time (a million-row concat of
    the whole table at once doubled the step's peak memory); few-valued columns as categories."""
    columns = {}
    for col in DECISION_COLUMNS:
        pieces = [p[col] for p in parts if len(p)] or [pd.Series(dtype=object)]
        joined = pd.concat(pieces, ignore_index=True)
        if col in _FEW_VALUES:
            joined = joined.astype(object).astype("category")
        columns[col] = joined
    return pd.DataFrame(columns)


def _case_notes(cases: pd.DataFrame) -> pd.DataFrame:
    """What changed in each case today, and where every live case stands."""
    said = cases[cases["status_reason"].astype(str) != ""]
    changes = decision_rows(said, outcome="case", rule=said["status"].to_numpy(),
                            detail=said["status_reason"].to_numpy())  # fmt: skip
    live = cases[cases["status"] != "closed"]
    amount = live["amount"].astype("float64").map("{:,.2f}".format).astype(str)
    money = amount + " " + live["currency"].fillna("").astype(str)
    since = pd.to_datetime(live["stage_since"]).dt.strftime("%Y-%m-%d").astype(str)
    invoices = live["open_invoices"].fillna(0).astype(int).astype(str)
    worst = live["worst_days_overdue"].fillna(0).astype(int).astype(str)
    collections = (
        "stage " + live["stage"].astype(str) + " since " + since + ": " + invoices
        + " open invoice(s), worst " + worst + " days overdue, balance " + money
    )  # fmt: skip
    renewal_on = pd.to_datetime(live["renewal_date"]).dt.strftime("%Y-%m-%d").astype(str)
    renewal = (
        "renewal on "
        + renewal_on
        + ", value "
        + money
        + ", owner "
        + live["owner"].fillna("-").astype(str)
    )
    detail = np.where(live["kind"] == "renewal", renewal, collections)
    segment = live["segment"].fillna("").astype(str).to_numpy()
    detail = np.where(segment != "", detail + "; segment " + segment, detail)
    state = decision_rows(live, outcome="case", rule="state", detail=detail)
    return pd.concat([changes, state], ignore_index=True)


def _touch_notes(touches: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    if touches.empty:
        return pd.DataFrame(columns=DECISION_COLUMNS)
    later = touches["local_day"].to_numpy(dtype="datetime64[D]") > np.datetime64(as_of, "D")
    why = np.where(
        later,
        "deferred to "
        + touches["send_at_local"].astype(str)
        + ": "
        + touches["deferred"].astype(str),
        "chosen: " + touches["channel"].astype(str) + " at " + touches["send_at_local"].astype(str),
    )
    choice = touches["choice"].fillna("").astype(str).to_numpy()
    why = np.where(choice != "", why + " (" + choice + ")", why)
    return decision_rows(touches, outcome=np.where(later, "deferred", "planned"),
                         rule=np.where(later, "calendar", "plan"), detail=why)  # fmt: skip


class _Clock:
    """Wall time per phase, and the process's peak memory (MB) at the end of each phase."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.peaks: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self.peaks[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self._last = now


def plan_summary(plan: Plan, inserted: int) -> dict[str, object]:
    """Counts for the run summary and the UI: no personal data, only tallies."""
    cases = plan.cases
    live = cases[cases["status"] != "closed"]
    return {
        "cases": {
            "open": int((cases["status"] == "open").sum()),
            "paused": int((cases["status"] == "paused").sum()),
            "closed": int((cases["status"] == "closed").sum()),
            "by_stage": {str(k): int(v) for k, v in live["stage"].value_counts().items()},
        },
        "touches_planned": int(len(plan.touches)),
        "touches_new": int(inserted),
        "touches_by_channel": {
            str(k): int(v) for k, v in plan.touches["channel"].value_counts().items()
        },
        "decisions": {str(k): int(v) for k, v in plan.decisions["outcome"].value_counts().items()},
        "amount_by_stage": _amounts(live),
        "touches_by_step": {str(k): int(v) for k, v in plan.touches["step"].value_counts().items()},
        "decisions_by_rule": _by_rule(plan.decisions),
    }


def _amounts(live: pd.DataFrame) -> list[dict[str, object]]:
    """Open amount per stage and currency (amounts in different currencies never add up)."""
    if live.empty:
        return []
    sums = live.groupby(["stage", "currency"], observed=True)["amount"].agg(["sum", "size"])
    return [
        {
            "stage": str(stage),
            "currency": str(currency),
            "cases": int(row["size"]),
            "amount": round(float(row["sum"]), 2),
        }  # fmt: skip
        for (stage, currency), row in sums.iterrows()
    ]


def _by_rule(decisions: pd.DataFrame) -> list[dict[str, object]]:
    """What held touches back or moved them, by outcome and rule (planned ones excluded)."""
    held = decisions[decisions["outcome"].astype(str) != "planned"]
    if held.empty:
        return []
    counts = held.groupby(["outcome", "rule"], observed=True).size()
    return [
        {"outcome": str(outcome), "rule": str(rule), "count": int(n)}
        for (outcome, rule), n in counts.sort_values(ascending=False).items()
    ]
