"""The daily outreach job, read top to bottom like its table of contents.

ingest the exports → unify contacts → decide (cases, cadences, guardrails, plan) → push what
is due now (the rest goes out with the dispatch flow at its moment) → summarise.
Each step is a Prefect task defined in `tasks/`; this file only wires them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner

from config.contacts_policy import PolicyError
from config.delivery_policy import delivery_policy
from config.outreach_policy import OutreachPolicy, outreach_policy
from config.settings import Settings, get_settings, masked_url
from flows.dispatch import push
from flows.runtime import current_flow_run_id, outreach_day
from flows.shards import ShardError, decide_in_shards
from tasks.contacts.build import unify_contacts_task
from tasks.decide.plan import PlanInputs, book_records
from tasks.decide.task import decide_outreach, renewals_frame, with_received_events
from tasks.deliver.connect import DeliveryConfigError
from tasks.deliver.templates import Catalogue, TemplateError, check_policy
from tasks.ledger.db import engine_for, migrate
from tasks.ledger.outreach import save_book
from tasks.ledger.runs import finish_run, start_run
from tasks.report.artifacts import (
    publish_contact_quality,
    publish_ingestion_artifacts,
    publish_plan,
    publish_run_summary,
    source_counts,
)
from tasks.sources.errors import SourceFileError
from tasks.sources.ingest import SourceResult, ingest_source
from tasks.sources.mapping import SourceMapping, load_mappings
from tasks.sources.record import record_ingestion


@task(name="prepare-ledger", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def prepare_ledger(ledger_url: str) -> None:
    """Apply pending migrations; safe to run at every start and from concurrent runs."""
    migrate(ledger_url)


@flow(
    name="daily-outreach",
    task_runner=ThreadPoolTaskRunner(max_workers=2),
    retries=0,
    log_prints=False,
)
def daily_outreach(as_of: date | None = None, shards: int | None = None) -> State:
    """Cadencia's daily job for one business day (`as_of`, default: the scheduled day).
    With `shards` above 1 (default CADENCIA_SHARDS) the book is decided and sent in that
    many parts by account, on Prefect workers when the shard deployment is served."""
    logger = get_run_logger()
    settings = get_settings()
    day = outreach_day(as_of, settings.timezone)
    shards = shards or settings.shards
    logger.info("Outreach day %s, ledger %s", day, masked_url(settings.ledger_url))

    prepare_ledger(settings.ledger_url)
    engine = engine_for(settings.ledger_url)
    run_id = start_run(engine, flow="daily_outreach", as_of=day, flow_run_id=current_flow_run_id())
    try:
        mappings = load_mappings(settings)
        ready_to_send(outreach_policy())  # bad policy or templates stop before work
    except (SourceFileError, PolicyError, TemplateError, DeliveryConfigError) as problem:
        finish_run(engine, run_id, status="failed", summary={"problems": [str(problem)]})
        return Failed(message=str(problem))

    # 1. Ingest every source (one task per source), validate, quarantine bad rows.
    results, problems, quarantine_file = ingest_sources(settings, run_id, mappings, day)
    summary = _summary(run_id, day, results, problems, quarantine_file)
    if problems:
        for p in problems:
            logger.error("%s", p)
        finish_run(engine, run_id, status="failed", summary=summary)
        return Failed(message="\n".join(str(p) for p in problems), data=summary)

    # 2. Unify contacts: E.164 phones, clean emails, one golden record per person, consent.
    crm_contacts = [r.accepted for r in results if r.kind == "contacts"]
    contacts = unify_contacts_task(
        settings.ledger_url, run_id, crm_contacts, settings.default_region
    )
    publish_contact_quality(contacts.quality, day.isoformat())
    summary["contacts"] = {
        k: contacts.quality[k] for k in ("records", "golden_contacts", "records_merged")
    }

    # 3. Decide: cases, due cadence steps, channels under consent and caps, the plan.
    by_kind = {
        kind: [r.accepted for r in results if r.kind == kind] for kind in ("open_items", "events")
    }
    inputs = PlanInputs(
        open_items=pd.concat(by_kind["open_items"], ignore_index=True),
        renewals=renewals_frame([r.accepted for r in results if r.kind == "renewals"]),
        events=pd.concat(by_kind["events"], ignore_index=True),
        golden=contacts.golden,
        source_map=contacts.source_map,
        consent_wide=contacts.consent_wide,
    )
    if shards > 1:
        # 3-4. In parts by account, each decided and sent by its own flow run.
        try:
            summary["plan"], summary["delivery"] = decide_and_send_in_shards(
                settings, run_id, inputs, day, shards
            )
        except (ShardError, DeliveryConfigError) as problem:
            finish_run(engine, run_id, status="failed", summary=summary)
            return Failed(message=str(problem), data=summary)
        publish_plan(summary["plan"], day.isoformat())
    else:
        _plan, decided = decide_outreach(
            settings.ledger_url, run_id, inputs, day, settings.timezone, settings.decisions_dir
        )
        publish_plan(decided, day.isoformat())
        summary["plan"] = decided

        # 4. Push what is due now through the providers; the dispatch flow sends the rest.
        try:
            summary["delivery"] = push(settings, day.isoformat())
        except DeliveryConfigError as problem:
            finish_run(engine, run_id, status="failed", summary=summary)
            return Failed(message=str(problem), data=summary)

    summary["charts"] = str(settings.charts_dir / f"run-{run_id}")
    publish_run_summary(summary, Path(summary["charts"]))
    finish_run(engine, run_id, status="completed", summary=summary)
    return Completed(message=f"run {run_id} completed", data=summary)


def decide_and_send_in_shards(
    settings: Settings, run_id: int, inputs: PlanInputs, day: date, shards: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The whole book's records once (receivables, business events), then the shards."""
    engine = engine_for(settings.ledger_url)
    inputs.events = with_received_events(engine, inputs.events, day)
    receivables, linked = book_records(inputs, day, outreach_policy())
    save_book(engine, run_id, day, receivables, linked)
    return decide_in_shards(settings, run_id, inputs, day, shards)


def ingest_sources(
    settings: Settings, run_id: int, mappings: list[SourceMapping], day: date
) -> tuple[list[SourceResult], list[SourceFileError], Path | None]:
    """Every source read and validated (one task each), counts and quarantine recorded, the
    ingestion artifacts published: (results, file-level problems, quarantine file)."""
    futures = [
        ingest_source.with_options(task_run_name=f"ingest-{m.name}").submit(
            m, settings.input_dir, settings.timezone
        )
        for m in mappings
    ]
    outcomes = [f.result() for f in futures]
    results = [o for o in outcomes if isinstance(o, SourceResult)]
    problems = [o for o in outcomes if isinstance(o, SourceFileError)]
    quarantine_file = record_ingestion(
        settings.ledger_url, run_id, results, settings.quarantine_dir
    )
    publish_ingestion_artifacts(results, problems, day.isoformat())
    return results, problems, quarantine_file


def ready_to_send(policy: OutreachPolicy) -> None:
    """Delivery policy valid, every template the policy can use present in every locale."""
    delivery_policy()
    problems = check_policy(Catalogue.load(), policy)
    if problems:
        raise TemplateError("templates are not ready:\n  " + "\n  ".join(problems))


def _summary(
    run_id: int,
    day: date,
    results: list[SourceResult],
    problems: list[SourceFileError],
    quarantine_file: Path | None,
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "as_of": day.isoformat(),
        "sources": source_counts(results),
        "problems": [str(p) for p in problems],
        "quarantine_file": str(quarantine_file) if quarantine_file else None,
    }


if __name__ == "__main__":
    daily_outreach()
