"""The event flow between daily runs: business events recorded once, and an account that paid
today has its remaining touches cancelled before they go out."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from config.settings import get_settings
from flows.daily_outreach import daily_outreach
from flows.ingest_events import ingest_events
from tasks.ledger.db import engine_for
from tasks.ledger.models import Touch

DAY = date(2026, 11, 19)
pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("harness")]


def _planned_touch(engine: sa.Engine, account: str, key: str) -> None:
    later = datetime(2026, 11, 19, 17, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(sa.insert(Touch.__table__).values(
            idempotency_key=key, account_id=account, step="reminder", channel="whatsapp",
            template="collections_reminder", purpose="service", send_at=later, status="planned",
        ))  # fmt: skip


def test_events_are_recorded_once_and_a_payment_stops_the_days_touches(workspace: Path) -> None:
    assert daily_outreach(as_of=DAY, return_state=True).is_completed()
    engine = engine_for(get_settings().ledger_url)
    with engine.connect() as conn:
        from_daily = conn.execute(sa.text("select count(*) from events")).scalar_one()
    assert from_daily > 0  # the daily run records the export's business events too

    # A payment arrives after the daily run: C000003 pays at 15:58 UTC (in the sample export),
    # and C000077 pays now, in a new line of the export; both had a touch planned for 17:00.
    with (workspace / "events.csv").open("a", encoding="utf-8") as fh:
        fh.write("evt_late_payment,2026-11-19T16:30:00Z,payment,,C000077,,,,,120.50,EUR,,,\n")
    _planned_touch(engine, "C000003", "test|C000003")
    _planned_touch(engine, "C000077", "test|C000077")
    _planned_touch(engine, "C000001", "test|C000001")  # no event: untouched

    first = ingest_events(as_of=DAY, return_state=True)
    assert first.is_completed(), first.message
    summary = first.result()
    assert summary["events_recorded"] == 1  # only the new line; the rest came with the daily run
    assert summary["accounts_held"] >= 2
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.text(
            "select idempotency_key, status from touches where idempotency_key like 'test|%'"
        )).all())  # fmt: skip
        holds = conn.execute(sa.text(
            "select account_id, until, reason from holds where account_id in ('C000003', 'C000077')"
        )).all()  # fmt: skip
        late = conn.execute(sa.text(
            "select source, event_type, account_id, amount from events "
            "where event_key = 'export:evt_late_payment'"
        )).one()  # fmt: skip
    assert statuses == {"test|C000003": "cancelled", "test|C000077": "cancelled",
                        "test|C000001": "planned"}  # fmt: skip
    assert {h.account_id for h in holds} == {"C000003", "C000077"}
    assert all(str(h.until) == "2026-11-19" for h in holds)
    assert all(h.reason.startswith("payment received on 2026-11-19") for h in holds)
    assert (late.source, late.event_type, late.account_id, float(late.amount)) == (
        "export", "payment", "C000077", 120.5,
    )  # fmt: skip

    again = ingest_events(as_of=DAY, return_state=True).result()
    assert (again["events_recorded"], again["accounts_held"], again["touches_cancelled"]) == (
        0,
        0,
        0,
    )
