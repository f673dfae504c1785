"""Which cadence steps are due today for each case, and why the others are not.

Steps are declared in config/outreach.yaml. A step is due when its day has come (counted from
the case's opening or its stage's start, and from the previous step actually done), it has
not been done in this stage or cycle, its engagement conditions hold and nothing stops or
pauses the case. The loop below runs over the policy's steps (a handful), never over cases.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from config.outreach_policy import Cadence, OutreachPolicy, Step, TriggerStep
from tasks import arrow_text as at
from tasks.decide.cases import as_days

STEP_COLUMNS = [
    "case_key", "account_id", "kind", "stage", "step", "template", "purpose", "channels",
    "assignee", "urgent", "priority", "due_on",
]  # fmt: skip
DECISION_COLUMNS = [
    "case_key", "account_id", "kind", "stage", "step", "golden_id", "channel", "outcome",
    "rule", "detail", "send_at",
]  # fmt: skip
# Which triggers may fire while a case is paused: the promise's own confirmation and the
# routing of a dispute to a person. A manual hold stops everything.
FIRE_WHILE_PAUSED = ("promise_to_pay", "dispute")
_NAT = np.datetime64("NaT", "D")


def decision_rows(frame: pd.DataFrame, **values: object) -> pd.DataFrame:
    """Decision rows for `frame`'s cases; missing columns are filled from `values` or None."""
    out = pd.DataFrame(index=frame.index)
    for col in DECISION_COLUMNS:
        if col in values:
            out[col] = values[col]
        elif col in frame:
            out[col] = frame[col].array
        else:
            out[col] = None
    return out.reset_index(drop=True)


def _iso(values: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(values.astype("datetime64[D]"), unit="D").astype(object)


def last_done(history: pd.DataFrame) -> dict[str, pd.Series]:
    """Per step: the latest day each case had it planned (any status but an expired plan)."""
    h = history[history["status"] != "expired"]
    frame = pd.DataFrame(
        {
            "case_key": h["case_key"].astype("str").array,
            "step": h["step"].astype("str").array,
            "as_of": pd.to_datetime(h["as_of"]).to_numpy(dtype="datetime64[ns]"),
        }
    )
    latest = frame.groupby(["step", "case_key"], sort=False)["as_of"].max()
    return {
        str(step): part.droplevel("step") for step, part in latest.groupby(level="step", sort=False)
    }


def _done_on(done: dict[str, pd.Series], cases: pd.DataFrame, step: str) -> np.ndarray:
    days = np.full(len(cases), np.datetime64("NaT"), dtype="datetime64[D]")
    if step not in done or cases.empty:
        return days
    series = done[step]
    row = at.positions(cases["case_key"], series.index)
    values = series.to_numpy(dtype="datetime64[D]")
    days[row >= 0] = values[row[row >= 0]]
    return days


def _step_day(step: Step, cases: pd.DataFrame) -> np.ndarray:
    day = np.full(len(cases), step.day, dtype=np.int64)
    wrapped = "," + cases["segment"].fillna("").astype(str) + ","
    for segment, override in step.day_by_segment.items():
        inside = wrapped.str.contains(f",{segment},", regex=False).to_numpy(dtype=bool)
        day = np.where(inside, override, day)
    return day


def _engaged(
    signals: pd.DataFrame, cases: pd.DataFrame, what: str, since: np.ndarray
) -> np.ndarray:
    if what not in signals:
        return np.zeros(len(cases), dtype=bool)
    at = as_days(signals[what].reindex(cases["account_id"]))
    return ~np.isnat(at) & (at >= since)


def _steps_frame(
    cases: pd.DataFrame, step: Step, due_on: np.ndarray, priority: int
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "case_key": cases["case_key"].array,
            "account_id": cases["account_id"].array,
            "kind": cases["kind"].array,
            "stage": cases["stage"].array,
            "step": step.name,
            "template": step.template,
            "purpose": step.purpose,
            "channels": "|".join(step.channels),
            "assignee": step.assignee,
            "urgent": step.urgent,
            "priority": priority,
            "due_on": due_on,
        }
    )


def _stage_steps(
    cases: pd.DataFrame,
    steps: list[Step],
    repeat_every: int | None,
    cadence: Cadence,
    signals: pd.DataFrame,
    done: dict[str, pd.Series],
    today: np.datetime64,
    base_priority: int,
) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """Due steps and the reasons for the rest, for the live cases of one stage."""
    since = cases["stage_since"].to_numpy(dtype="datetime64[D]")
    anchor = since
    if repeat_every:
        cycles = ((today - since).astype(np.int64) // repeat_every).clip(min=0)
        anchor = since + (cycles * repeat_every).astype("timedelta64[D]")
    due_parts: list[pd.DataFrame] = []
    notes: list[pd.DataFrame] = []
    stopped = np.zeros(len(cases), dtype=bool)
    stop_reason = np.full(len(cases), "", dtype=object)
    for what in cadence.stop_on:
        hit = _engaged(signals, cases, what, anchor) & ~stopped
        stop_reason[hit] = (
            f"stopped: the contact {what} since the cadence began; a person follows up"
        )
        stopped |= hit
    done_on = [_done_on(done, cases, s.name) for s in steps]
    done_now = [(~np.isnat(d)) & (d >= anchor) for d in done_on]
    for k, step in enumerate(steps):
        day = _step_day(step, cases)
        due_on = anchor + day.astype("timedelta64[D]")
        gate = due_on.copy()
        waiting_for = np.full(len(cases), "", dtype=object)
        for j in range(k):
            earlier = steps[j]
            if earlier.when:
                continue
            earlier_day = _step_day(earlier, cases)
            before = earlier_day < day  # same-day steps go together
            ready = done_on[j] + (day - earlier_day).astype("timedelta64[D]")
            blocked = before & ~done_now[j]
            waiting_for[blocked & (waiting_for == "")] = earlier.name
            gate = np.where(before & ~blocked, np.maximum(gate, ready), gate)
        later_done = np.zeros(len(cases), dtype=bool)
        for j in range(k + 1, len(steps)):
            later_done |= done_now[j]
        condition = np.ones(len(cases), dtype=bool)
        unmet = np.full(len(cases), "", dtype=object)
        for what, wanted in step.when.items():
            ok = _engaged(signals, cases, what, anchor) == wanted
            unmet[~ok & (unmet == "")] = f"the contact {'has not ' if wanted else ''}{what}"
            condition &= ok
        arrived = today >= due_on
        open_step = arrived & ~done_now[k] & ~later_done
        is_due = open_step & ~stopped & (waiting_for == "") & (today >= gate) & condition
        due_parts.append(_steps_frame(cases[is_due], step, due_on[is_due], base_priority + k))
        ready = open_step & ~stopped & (waiting_for == "")
        reasons = (
            (open_step & stopped, "stopped", stop_reason),
            (
                open_step & ~stopped & (waiting_for != ""),
                "waiting",
                "waiting for step " + waiting_for.astype(str),
            ),
            (ready & (today < gate), "waiting", "waiting: the previous step was done too recently"),
            (
                ready & (today >= gate) & ~condition,
                "condition",
                "condition not met: " + unmet.astype(str) + " since the cadence began",
            ),
        )
        for mask, rule, detail in reasons:
            if mask.any():
                detail = detail[mask] if isinstance(detail, np.ndarray) else detail
                notes.append(
                    decision_rows(
                        cases[mask], step=step.name, outcome="skipped", rule=rule, detail=detail
                    )
                )
    return due_parts, notes


def _trigger_on(trigger: TriggerStep, cases: pd.DataFrame, signals: pd.DataFrame) -> np.ndarray:
    if trigger.event == "promise_to_pay":
        on = as_days(cases["promise_at"])
    elif trigger.event == "broken_promise":
        on = as_days(cases["broken_promise_on"].to_numpy())
    else:
        column = "dispute" if trigger.event == "dispute" else "call_connected"
        on = (
            as_days(signals[column].reindex(cases["account_id"]))
            if column in signals
            else (np.full(len(cases), _NAT))
        )
    return on


def due_steps(
    cases: pd.DataFrame,
    signals: pd.DataFrame,
    history: pd.DataFrame,
    as_of: dt.date,
    policy: OutreachPolicy,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(steps due today per case, decisions about steps held back)."""
    today = np.datetime64(as_of, "D")
    done = last_done(history)
    cases = cases.assign(
        stage_since=cases["stage_since"].to_numpy(dtype="datetime64[D]"),
        opened_on=cases["opened_on"].to_numpy(dtype="datetime64[D]"),
    )
    due: list[pd.DataFrame] = []
    notes: list[pd.DataFrame] = []
    for kind in ("collections", "renewal"):
        cadence = policy.cadence_for(kind)
        if cadence is None:
            continue
        of_kind = cases[cases["kind"] == kind]
        live = of_kind[of_kind["status"] == "open"]
        stages = cadence.stages or {"renewal": None}
        for s, (stage_name, stage) in enumerate(stages.items()):
            steps = stage.steps if stage is not None else cadence.steps
            repeat = stage.repeat_every if stage is not None else None
            in_stage = live[live["stage"] == stage_name] if cadence.stages else live
            d, n = _stage_steps(
                in_stage, steps, repeat, cadence, signals, done, today, 100 * (s + 1)
            )
            due += d
            notes += n
        for t, trigger in enumerate(cadence.triggers):
            allowed = of_kind["status"] == "open"
            if trigger.event in FIRE_WHILE_PAUSED:
                held = of_kind["status_reason"].astype(str).str.startswith("held")
                allowed |= (of_kind["status"] == "paused") & ~held
            cs = of_kind[allowed.to_numpy()]
            on = _trigger_on(trigger, cs, signals)
            recent = ~np.isnat(on) & (
                (today - on).astype(np.int64) <= policy.cases.trigger_within_days
            )
            recent &= on <= today
            done_on = _done_on(done, cs, trigger.name)
            already = ~np.isnat(done_on) & (done_on >= on)
            fire = recent & ~already
            due.append(_steps_frame(cs[fire], trigger, on[fire], t))
    steps = pd.concat(due, ignore_index=True) if due else pd.DataFrame(columns=STEP_COLUMNS)
    # A handful of distinct values over up to millions of rows: categories, not strings.
    for col in ("stage", "step", "template", "purpose", "channels", "assignee"):
        steps[col] = steps[col].astype("category")
    decisions = (
        pd.concat(notes, ignore_index=True) if notes else pd.DataFrame(columns=DECISION_COLUMNS)
    )
    return steps[STEP_COLUMNS], decisions
