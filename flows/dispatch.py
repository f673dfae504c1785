"""Send what is due: touches deferred by the plan (quiet hours in the recipient's zone, a
minimum gap) go out at their moment. Runs on a short interval; every run takes only what is
due and unclaimed, so overlapping runs, retries and crashes never send a touch twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner

from config.contacts_policy import PolicyError
from config.delivery_policy import delivery_policy
from config.settings import Settings, get_settings, masked_url
from tasks.deliver.connect import DeliveryConfigError
from tasks.deliver.task import push_due_task
from tasks.deliver.templates import TemplateError
from tasks.ledger.db import migrate
from tasks.ledger.models import utcnow


@contextmanager
def provider_endpoint(settings: Settings) -> Iterator[str | None]:
    """Where HTTP providers are reached: the configured sandbox, an embedded one started for
    this push (sandbox mode without CADENCIA_SANDBOX_URL), or None (live APIs / outbox)."""
    if settings.provider_mode != "sandbox":
        yield None
        return
    if settings.sandbox_url:
        yield settings.sandbox_url
        return
    from sandbox.server import start_in_thread
    from tasks.deliver.templates import Catalogue

    record = settings.state_dir / "sandbox" / "record.jsonl"
    record.parent.mkdir(parents=True, exist_ok=True)
    # The sandbox knows our WhatsApp templates as approved, and checks names, languages
    # and parameter counts like Meta does.
    approved = Catalogue.load().approved_whatsapp()
    with start_in_thread(port=0, record_file=record, templates=approved) as running:
        yield running.url


def push(settings: Settings, label: str) -> dict[str, Any]:
    """The push step shared by the daily and dispatch flows."""
    with provider_endpoint(settings) as url:
        return push_due_task(settings.ledger_url, url, label)


@flow(name="dispatch-due", task_runner=ThreadPoolTaskRunner(max_workers=1), retries=0)
def dispatch_due() -> State:
    """Send every planned touch whose send-at moment has come; expire the stale ones."""
    logger = get_run_logger()
    settings = get_settings()
    logger.info("Dispatch at %s, ledger %s", utcnow().isoformat(timespec="seconds"),
                masked_url(settings.ledger_url))  # fmt: skip
    migrate(settings.ledger_url)
    try:
        delivery_policy()
        summary = push(settings, "dispatch")
    except (PolicyError, DeliveryConfigError, TemplateError) as problem:
        logger.error("%s", problem)
        return Failed(message=str(problem))
    return Completed(message=f"{summary['messages']} messages", data=summary)


if __name__ == "__main__":
    dispatch_due()
