"""Replay missed business days in order, as if each had run on its day.

A day that already completed is skipped (and would plan nothing new anyway: the ledger's
keys decide). Each replayed day decides against the ledger as it stood after the previous
one, so caps, gaps and cadence steps are counted as of that day. Touches planned for a moment
that has passed go out now if still within their validity window (`validity_hours` in
config/delivery.yaml), otherwise they are recorded `expired` instead of going out late.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from config.settings import get_settings
from flows.daily_outreach import daily_outreach
from tasks.ledger.db import engine_for, migrate
from tasks.ledger.runs import completed_days


@flow(name="backfill", retries=0)
def backfill(
    start: date,
    end: date,
    weekdays_only: bool = True,
    rerun_completed: bool = False,
    via_deployment: bool = False,
) -> State:
    """Run the daily flow for every day from `start` to `end` (inclusive), oldest first:
    the weekdays, like the default schedule, unless `weekdays_only` is off. Served, it goes
    through the `daily` deployment (`via_deployment`), whose concurrency limit keeps it from
    overlapping a scheduled run; from the command line it runs the flow in this process."""
    logger = get_run_logger()
    if end < start:
        return Failed(message=f"end {end} is before start {start}")
    settings = get_settings()
    migrate(settings.ledger_url)
    done = set() if rerun_completed else completed_days(
        engine_for(settings.ledger_url), "daily_outreach", start, end
    )  # fmt: skip
    days: list[dict[str, Any]] = []
    day = start
    while day <= end:
        if weekdays_only and day.weekday() >= 5:
            pass
        elif day in done:
            logger.info("%s already ran: skipped", day)
            days.append({"as_of": day.isoformat(), "status": "skipped (already ran)"})
        else:
            state = _run_day(day, via_deployment)
            days.append({"as_of": day.isoformat(), "status": state.type.value.lower()})
            if not state.is_completed():
                logger.error("%s failed: %s; later days not run", day, state.message)
                return Failed(message=f"{day} failed: {state.message}", data=days)
        day += timedelta(days=1)
    return Completed(message=f"{len(days)} days", data=days)


def _run_day(day: date, via_deployment: bool) -> State:
    if not via_deployment:
        return daily_outreach(as_of=day, return_state=True)
    from prefect.deployments import run_deployment

    run = run_deployment(
        "daily-outreach/daily",
        parameters={"as_of": day.isoformat()},
        idempotency_key=f"backfill:{day.isoformat()}",
        as_subflow=True,
    )
    return run.state
