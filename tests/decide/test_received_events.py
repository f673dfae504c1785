"""Events our webhooks recorded (already linked to a contact) drive the next run's decisions
just like exported events: an email opened, reported by SendGrid's webhook, gets the renewal
its day-2 call task."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from test_scenarios import RENEWAL_START, _day, _renewal_steps, renewal_world
from world import Simulation

from tasks.ledger.models import Contact, Event
from tasks.ledger.outreach import received_events


def test_received_events_are_engagement_linked_to_their_contact(ledger: sa.Engine) -> None:
    when = dt.datetime(2026, 11, 5, 10, tzinfo=dt.UTC)
    with ledger.begin() as conn:
        conn.execute(sa.insert(Contact.__table__).values(golden_id="G1", account_id="A1"))
        conn.execute(sa.insert(Event.__table__), [
            {"event_key": "sg:1", "source": "webhook:sendgrid", "event_type": "opened",
             "channel": "email", "occurred_at": when, "golden_id": "G1", "account_id": "A1"},
            # Suppressions come from the receiver itself, with the provider's exact reason.
            {"event_key": "wa:1", "source": "webhook:whatsapp", "event_type": "failed",
             "channel": "whatsapp", "occurred_at": when, "golden_id": "G1", "account_id": "A1"},
            {"event_key": "wa:2", "source": "webhook:whatsapp", "event_type": "read",
             "channel": "whatsapp", "occurred_at": when + dt.timedelta(days=30),
             "golden_id": "G1", "account_id": "A1"},  # after the day: not seen yet
        ])  # fmt: skip
    frame = received_events(ledger, dt.date(2026, 11, 6))
    assert frame[["event_type", "channel", "golden_id"]].values.tolist() == [
        ["opened", "email", "G1"]]  # fmt: skip
    assert str(frame["occurred_at"].dt.tz) == "UTC"


def test_a_webhook_open_gets_the_renewal_its_call_task() -> None:
    world = renewal_world()
    ana = world.golden_id("ana")
    received = pd.DataFrame({
        "occurred_at": [pd.Timestamp(f"{_day(1).isoformat()}T10:00:00Z")],
        "event_type": ["opened"], "channel": ["email"], "account_id": ["A1"],
        "golden_id": [ana],
    })  # fmt: skip
    plain = world.inputs

    def with_webhook_events(as_of: dt.date):  # noqa: ANN202 - PlanInputs
        inputs = plain(as_of)
        inputs.events = pd.concat([inputs.events, received], ignore_index=True)
        return inputs

    world.inputs = with_webhook_events  # type: ignore[method-assign]
    sim = Simulation(world)
    sim.run(RENEWAL_START, 7)
    assert _renewal_steps(sim) == {
        0: [("proposal_email", "email")],
        2: [("opened_no_click_call", "voice")],
    }
