"""Cadencia's deployments: the daily flow on a cron in the business time zone, the dispatch
flow on a short interval, the event flow hourly, and backfills on demand — served by
`cadencia serve` (Prefect's `serve`; needs a Prefect server: `prefect server start` and
PREFECT_API_URL), or deployed to a process work pool with `prefect deploy` and the equivalent
`prefect.yaml`.

All daily runs — scheduled or replayed by a backfill — go through the one `daily` deployment,
whose concurrency limit of 1 (queue, don't drop) keeps a backfill and a scheduled run from
overlapping.
"""

from __future__ import annotations

from datetime import timedelta

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Interval

from flows.backfill import backfill
from flows.daily_outreach import daily_outreach
from flows.dispatch import dispatch_due
from flows.ingest_events import ingest_events
from flows.shards import decide_shard

DAILY_CRON = "0 8 * * 1-5"  # weekdays at 08:00
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)
# A dispatch still running makes the next one pointless: skip it rather than queue it.
SKIP_IF_RUNNING = ConcurrencyLimitConfig(
    limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
)


def deployments(
    cron: str = DAILY_CRON,
    timezone: str = "Europe/Madrid",
    dispatch_minutes: int = 5,
    events_minutes: int = 60,
) -> list[RunnerDeployment]:
    return [
        daily_outreach.to_deployment(
            name="daily",
            schedules=[Cron(cron, timezone=timezone)],
            concurrency_limit=ONE_AT_A_TIME,
            description="Ingest, unify, decide, push. as_of = the scheduled day.",
            tags=["cadencia"],
        ),
        dispatch_due.to_deployment(
            name="dispatch",
            schedules=[Interval(timedelta(minutes=dispatch_minutes))],
            concurrency_limit=SKIP_IF_RUNNING,
            description="Send the touches whose moment has come.",
            tags=["cadencia"],
        ),
        ingest_events.to_deployment(
            name="events",
            schedules=[Interval(timedelta(minutes=events_minutes))],
            concurrency_limit=SKIP_IF_RUNNING,
            description="Record payments, promises, disputes and call outcomes; stop today's "
            "touches for accounts that paid, promised or disputed.",
            tags=["cadencia"],
        ),
        decide_shard.to_deployment(
            name="shard",
            description="Decide and send one shard of the book (started by a sharded daily run).",
            tags=["cadencia"],
        ),
        backfill.to_deployment(
            name="backfill",
            parameters={"via_deployment": True},
            concurrency_limit=ONE_AT_A_TIME,
            description="Replay missed days in order (start, end) through the daily deployment.",
            tags=["cadencia"],
        ),
    ]


def serve_all(cron: str, timezone: str, dispatch_minutes: int, events_minutes: int = 60) -> None:
    """Register the deployments and run them from this process until stopped."""
    serve(*deployments(cron, timezone, dispatch_minutes, events_minutes), limit=4)


def ensure_work_pool(name: str) -> bool:
    """A process work pool named `name` on the configured server; True when created now."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            client.create_work_pool(
                WorkPoolCreate(name=name, type="process", base_job_template=template)
            )
            return True
