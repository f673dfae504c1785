"""The decide step as a Prefect task: read the ledger's state, plan, record the plan."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
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
    shard: tuple[int, int] | None = None,
) -> tuple[Plan, dict[str, object]]:
    """Plan today's touches against what earlier runs did; record cases, touches, decisions.

    For a shard (number, of how many) the inputs already hold the webhook events, and the
    ledger is read and written for the shard's accounts only."""
    from tasks.ledger.db import engine_for
    from tasks.ledger.outreach import load_state, save_plan

    engine = engine_for(ledger_url)
    if shard is None:
        inputs.events = with_received_events(engine, inputs.events, as_of)
    state = load_state(engine, as_of, shard)
    plan = plan_outreach(inputs, state, as_of, outreach_policy(), timezone)
    inserted = save_plan(engine, run_id, plan, whole_book=shard is None)
    path = write_decisions(plan, decisions_dir, run_id)
    summary = plan_summary(plan, inserted)
    summary["decisions_file"] = str(path)
    return plan, summary


def with_received_events(engine: sa.Engine, events: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The export's events plus what providers told our webhooks since (delivered, opened,
    replied, STOP...)."""
    from tasks.ledger.outreach import received_events

    received = received_events(engine, as_of)
    return events if received.empty else pd.concat([events, received], ignore_index=True)


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
