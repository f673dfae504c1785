"""The decide step as a Prefect task: read the ledger's state, plan, record the plan."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from config.outreach_policy import outreach_policy
from tasks.decide.explain import write_decisions
from tasks.decide.plan import Plan, PlanInputs, plan_outreach, plan_summary


@task(name="decide-outreach", cache_policy=NO_CACHE)
def decide_outreach(
    ledger_url: str,
    run_id: int,
    inputs: PlanInputs,
    as_of: dt.date,
    timezone: str,
    decisions_dir: Path,
) -> tuple[Plan, dict[str, object]]:
    """Plan today's touches against what earlier runs did; record cases, touches, decisions."""
    from tasks.ledger.db import engine_for
    from tasks.ledger.outreach import load_state, received_events, save_plan

    engine = engine_for(ledger_url)
    # What providers told us since the last export (delivered, opened, replied, STOP...).
    received = received_events(engine, as_of)
    if not received.empty:
        inputs.events = pd.concat([inputs.events, received], ignore_index=True)
    plan = plan_outreach(inputs, load_state(engine, as_of), as_of, outreach_policy(), timezone)
    inserted = save_plan(engine, run_id, plan)
    path = write_decisions(plan, decisions_dir, run_id)
    summary = plan_summary(plan, inserted)
    summary["decisions_file"] = str(path)
    return plan, summary


def renewals_frame(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(
            columns=[
                "account_id",
                "status",
                "renewal_date",
                "amount",
                "currency",
                "owner",
                "last_modified",
            ]
        )
    )
