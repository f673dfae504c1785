"""The decide step against a real ledger (SQLite and PostgreSQL): state carries over between
days exactly as in memory, a rerun of a day plans nothing twice, holds and suppressions work."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from world import TZ, Simulation, World

from config.outreach_policy import outreach_policy
from tasks.contacts.build import consent_changes_frame
from tasks.decide.plan import plan_outreach
from tasks.ledger.contacts import save_contacts
from tasks.ledger.outreach import add_hold, load_state, save_plan
from tasks.ledger.runs import start_run

START = dt.date(2026, 11, 16)


def _world() -> World:
    w = World()
    w.contact("bea", "B1", mobile_phone="+34622334455")
    w.contact("ana", "A1", role="Decision Maker", mobile_phone="+34612345678")
    w.invoice("B1", "F-1", START - dt.timedelta(days=20), 4200.0)
    w.invoice("A1", "F-2", START - dt.timedelta(days=40), 900.0)
    w.renewal("A1", START + dt.timedelta(days=40))
    w.event("bounced", "2026-11-17T08:00:00Z", "A1", channel="email", contact_source_id="ana")
    return w


def _run_days(engine: sa.Engine, world: World, days: int) -> pd.DataFrame:
    c = world._contacts
    save_contacts(engine, None, c.golden, c.source_map, c.merges, consent_changes_frame())
    for n in range(days):
        day = START + dt.timedelta(days=n)
        run_id = start_run(engine, flow="test", as_of=day, flow_run_id=None)
        plan = plan_outreach(world.inputs(day), load_state(engine, day), day, outreach_policy(), TZ)
        save_plan(engine, run_id, plan)
    with engine.connect() as conn:
        return pd.read_sql("SELECT * FROM touches ORDER BY send_at, idempotency_key", conn)


def test_days_through_the_ledger_match_the_in_memory_simulation(ledger: sa.Engine) -> None:
    world = _world()
    stored = _run_days(ledger, world, 6)
    sim = Simulation(world)
    sim.run(START, 6)
    expected = sim.touches.sort_values(["send_at", "idempotency_key"])
    assert stored["idempotency_key"].tolist() == expected["idempotency_key"].tolist()
    assert stored["case_id"].notna().all()
    assert set(stored["status"]) == {"planned"}
    assert stored["send_at_local"].tolist() == expected["send_at_local"].tolist()
    # The bounce on day 1 closed A1's email for good: recorded once, used from then on.
    with ledger.connect() as conn:
        rows = conn.execute(sa.text("SELECT golden_id, channel, reason FROM suppressions")).all()
    assert [(r.channel, r.reason) for r in rows] == [("email", "hard bounce")]
    later = stored[(stored["as_of"].astype(str) >= "2026-11-17") & (stored["account_id"] == "A1")]
    assert "email" not in set(later["channel"])


def test_rerunning_a_day_plans_nothing_new(ledger: sa.Engine) -> None:
    world = _world()
    first = _run_days(ledger, world, 1)
    run_id = start_run(ledger, flow="test", as_of=START, flow_run_id=None)
    plan = plan_outreach(
        world.inputs(START), load_state(ledger, START), START, outreach_policy(), TZ
    )
    assert plan.touches.empty
    assert save_plan(ledger, run_id, plan) == 0
    # And replaying yesterday's plan itself (a flow retry after the write) inserts nothing.
    again = plan_outreach(world.inputs(START), _fresh_state(), START, outreach_policy(), TZ)
    assert len(again.touches) == len(first)
    assert save_plan(ledger, run_id, again) == 0
    with ledger.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM touches")).scalar() == len(first)


def _fresh_state():  # noqa: ANN202
    from tasks.decide.plan import LedgerState

    return LedgerState()


def test_a_hold_in_the_ledger_holds_the_account(ledger: sa.Engine) -> None:
    add_hold(ledger, "B1", START + dt.timedelta(days=2), "talking to their lawyer")
    stored = _run_days(ledger, _world(), 4)
    b1 = stored[stored["account_id"] == "B1"]
    assert pd.to_datetime(b1["as_of"]).min() == pd.Timestamp(START + dt.timedelta(days=3))
    with ledger.connect() as conn:
        reason = conn.execute(
            sa.text("SELECT status_reason FROM cases WHERE account_id = 'B1'")
        ).scalar()
    assert reason is None or "held" not in reason  # the hold is over by the last day
