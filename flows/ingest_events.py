"""Between daily runs: take in the events export (payments, promises, disputes, call
outcomes), record them in the ledger, and stop today's remaining touches for every account
that just paid, promised or disputed. Runs on an interval; each run is idempotent (events
are keyed by their export id, holds by account and reason).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pandas as pd
from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner

from config.settings import get_settings, masked_url
from flows.daily_outreach import ingest_sources, prepare_ledger
from flows.runtime import current_flow_run_id, outreach_day
from tasks.decide.engagement import link_events
from tasks.ledger.contacts import linkable_contacts
from tasks.ledger.db import engine_for
from tasks.ledger.delivery import cancel_blocked
from tasks.ledger.interrupts import hold_for_the_day, stopping_events
from tasks.ledger.models import utcnow
from tasks.ledger.outreach import save_business_events
from tasks.ledger.runs import finish_run, start_run
from tasks.report.artifacts import source_counts
from tasks.sources.errors import SourceFileError
from tasks.sources.mapping import load_mappings


@flow(name="ingest-events", task_runner=ThreadPoolTaskRunner(max_workers=2), retries=0)
def ingest_events(as_of: date | None = None) -> State:
    """Record the events export's business events; hold accounts that paid, promised or
    disputed today so their remaining touches are cancelled before they go out."""
    logger = get_run_logger()
    settings = get_settings()
    day = outreach_day(as_of, settings.timezone)
    logger.info("Events for %s, ledger %s", day, masked_url(settings.ledger_url))
    prepare_ledger(settings.ledger_url)
    engine = engine_for(settings.ledger_url)
    run_id = start_run(engine, flow="ingest_events", as_of=day, flow_run_id=current_flow_run_id())
    try:
        mappings = [m for m in load_mappings(settings) if m.kind == "events"]
    except SourceFileError as problem:
        finish_run(engine, run_id, status="failed", summary={"problems": [str(problem)]})
        return Failed(message=str(problem))

    # 1. Read and validate the events export(s); bad rows to quarantine, as in the daily run.
    results, problems, _quarantine = ingest_sources(settings, run_id, mappings, day)
    summary: dict[str, object] = {"run_id": run_id, "as_of": day.isoformat(),
                                  "sources": source_counts(results)}  # fmt: skip
    if problems:
        for p in problems:
            logger.error("%s", p)
        finish_run(engine, run_id, status="failed", summary=summary)
        return Failed(message="\n".join(str(p) for p in problems), data=summary)

    # 2. Link each event to its person and account through the ledger's contacts.
    golden, source_map = linkable_contacts(engine)
    events = pd.concat([r.accepted for r in results], ignore_index=True)
    linked = link_events(events, golden, source_map, day)

    # 3. Record business events once; hold today's payers, promisers and disputers.
    with engine.begin() as conn:
        summary["events_recorded"] = save_business_events(conn, linked)
    summary["accounts_held"] = hold_for_the_day(
        engine, stopping_events(linked, day, settings.timezone), day
    )
    # Holds last through `day`; what is still planned for the day is cancelled now.
    summary["touches_cancelled"] = cancel_blocked(engine, moment_of(day))
    logger.info("%(events_recorded)s new events, %(accounts_held)s accounts held for the day, "
                "%(touches_cancelled)s planned touches cancelled", summary)  # fmt: skip
    finish_run(engine, run_id, status="completed", summary=summary)
    return Completed(message=f"run {run_id}: {summary['events_recorded']} events", data=summary)


def moment_of(day: date) -> datetime:
    """Now, or noon of `day` when replaying a past day (holds are checked against its date)."""
    now = utcnow()
    return now if now.date() == day else datetime.combine(day, time(12), UTC)


if __name__ == "__main__":
    ingest_events()
