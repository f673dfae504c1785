"""The push as a Prefect task: one task per push (never one per message), with a progress
artifact while it runs and a per-channel summary at the end. No addresses in either."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from config.delivery_policy import delivery_policy
from config.settings import get_settings
from tasks.deliver.push import push_due
from tasks.deliver.templates import Catalogue
from tasks.ledger.db import engine_for


@task(name="push-due-touches", cache_policy=NO_CACHE)
def push_due_task(ledger_url: str, sandbox_url: str | None, label: str) -> dict[str, Any]:
    """Send every touch due now. Safe to retry: the ledger's claims decide who sends what."""
    logger = get_run_logger()
    settings = get_settings()
    policy = delivery_policy()
    catalogue = Catalogue.load()
    engine = engine_for(ledger_url)
    progress_id = create_progress_artifact(
        0.0, key="delivery-progress", description=f"Sending due touches ({label})"
    )
    last = [0.0]
    # Updates go through a thread of their own: an API call on the sending loop would stall
    # it and bunch requests past a provider's per-second limit.
    updater = ThreadPoolExecutor(max_workers=1, thread_name_prefix="progress")

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0:  # at most one API call per second
            last[0] = now
            updater.submit(update_progress_artifact, progress_id, 100.0 * done / max(total, 1))

    try:
        report = push_due(engine, settings, policy, catalogue, sandbox_url, progress=progress)
    finally:
        updater.shutdown(wait=True)
    update_progress_artifact(progress_id, 100.0)
    summary = report.summary()
    create_markdown_artifact(
        delivery_markdown(summary, label), key="delivery-summary",
        description="Touches sent, failed, unknown, fallen back and deferred, per channel",
    )  # fmt: skip
    logger.info("Pushed %d messages in %.1f s", report.messages, report.seconds)
    return summary


def delivery_markdown(summary: dict[str, Any], label: str) -> str:
    lines = [
        f"# Delivery — {label}",
        "",
        f"{summary['messages']} messages in {summary['seconds']} s.",
        "",
        "| channel | sent | failed | unknown | fell back | retry later | deferred |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["channels"]:
        lines.append(
            f"| {row['channel']} | {row['sent']} | {row['failed']} | {row['unknown']} | "
            f"{row['fell_back']} | {row['retry_later']} | {row['deferred']} |"
        )
    chores = {k: v for k, v in summary["housekeeping"].items() if v}
    if chores:
        lines += ["", "Before sending: " + ", ".join(f"{k} {v}" for k, v in chores.items())]
    return "\n".join(lines)
