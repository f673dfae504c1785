"""The whole loop on real servers: push to the sandbox, the sandbox posts signed status
webhooks to our receiver, the receiver writes them to the ledger. Ambiguous sends are
reconciled from that evidence instead of being re-sent."""

from __future__ import annotations

import socket
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from config.delivery_policy import delivery_policy
from config.settings import Settings
from sandbox.server import start_in_thread
from tasks.deliver.push import push_due
from tasks.deliver.templates import Catalogue
from tasks.deliver.webhooks import start_webhooks_in_thread
from tasks.ledger.models import Event, Touch
from tasks.sample_data.due_touches import seed_due_touches


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(check, seconds: float = 15.0) -> bool:  # noqa: ANN001 - a predicate
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("channels", [("whatsapp", "email", "sms", "rcs")])
def test_webhooks_close_the_loop_and_reconcile_unknown_sends(
    ledger_url: str, ledger: sa.Engine, tmp_path: Path, channels: tuple[str, ...]
) -> None:
    port = _free_port()
    hooks = f"http://127.0.0.1:{port}"
    faults = {"drop_after_accept_rate": 0.25, "seed": 2, "webhook_delay_ms": 20,
              "engagement": {"delivered": 1.0, "read": 0.5, "open": 0.5}}  # fmt: skip
    with start_in_thread(port=0, webhook_url=f"{hooks}/webhooks", faults=faults) as sandbox:
        settings = Settings(
            state_dir=tmp_path, webhooks_url=hooks, sandbox_url=sandbox.url,
            sendgrid_webhook_public_key=sandbox.sendgrid_public_key,
        )  # fmt: skip
        with start_webhooks_in_thread(settings, ledger_url, port=port):
            seed_due_touches(ledger, 24, channels)
            base = delivery_policy()
            policy = base.model_copy(
                update={"timeouts": base.timeouts.model_copy(update={"read_seconds": 2})}
            )
            push_due(ledger, settings, policy, Catalogue.load(), sandbox.url)
            t = Touch.__table__

            def statuses() -> Counter:
                with ledger.connect() as conn:
                    rows = conn.execute(sa.select(t.c.status, sa.func.count()).group_by(t.c.status))
                    return Counter(dict(rows.all()))

            def delivered() -> int:
                with ledger.connect() as conn:
                    return conn.execute(
                        sa.select(sa.func.count()).where(t.c.delivery_status.is_not(None))
                    ).scalar_one()

            def kinds() -> dict[str, int]:
                e = Event.__table__
                with ledger.connect() as conn:
                    query = sa.select(e.c.event_type, sa.func.count()).group_by(e.c.event_type)
                    return dict(conn.execute(query).all())

            # The ambiguous sends (answers dropped after acceptance) end `sent` from evidence.
            assert _wait(lambda: statuses() == Counter({"sent": 24})), statuses()
            assert _wait(lambda: delivered() == 24), delivered()
            engaged = ("read", "opened")  # engagement follows delivery, a little later
            assert _wait(lambda: any(kinds().get(k) for k in engaged)), kinds()
            events = kinds()
    refs = Counter(m["ref"] for m in sandbox.sandbox.record.messages())
    assert len(refs) == 24 and max(refs.values()) == 1  # nothing was sent twice
    assert events.get("delivered", 0) > 0
    assert events.get("read", 0) + events.get("opened", 0) > 0
