"""What a flow run knows about itself: its id and the business day it runs for."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from prefect.runtime import flow_run


def outreach_day(as_of: date | None, timezone: str) -> date:
    """`as_of` defaults to the run's scheduled start, as a date in the business time zone."""
    if as_of is not None:
        return as_of
    scheduled = flow_run.scheduled_start_time
    moment = scheduled if isinstance(scheduled, datetime) else datetime.now(ZoneInfo("UTC"))
    local = moment.astimezone(ZoneInfo(timezone))
    # A plain date: Prefect hands out pendulum objects, which database drivers cannot bind.
    return date(local.year, local.month, local.day)


def current_flow_run_id() -> str | None:
    run_id = flow_run.id
    return str(run_id) if run_id else None
