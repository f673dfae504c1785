"""Scenario tests: the renewal waterfall and the collections paths over consecutive days."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from world import Simulation, World

D = dt.date
RENEWAL_START = D(2026, 11, 4)  # a Wednesday: day 2 is Friday, day 5 is Monday
COLLECTIONS_START = D(2026, 11, 16)  # a Monday


def renewal_world() -> World:
    w = World()
    w.contact("ana", "A1", role="Decision Maker", mobile_phone="+34612345678")
    w.renewal("A1", RENEWAL_START + dt.timedelta(days=45))
    return w


def _day(n: int) -> dt.date:
    return RENEWAL_START + dt.timedelta(days=n)


def _stamp(day: dt.date, hour: int = 10) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00Z"


def _renewal_steps(sim: Simulation) -> dict[int, list[tuple[str, str]]]:
    return {n: sim.steps_on(_day(n)) for n in range(7) if sim.steps_on(_day(n))}


def _why(sim: Simulation, day: dt.date, step: str) -> list[str]:
    d = sim.plans[day].decisions
    return d.loc[d["step"] == step, "detail"].astype(str).tolist()


def test_renewal_without_any_interaction_nudges_on_whatsapp_on_day_5() -> None:
    sim = Simulation(renewal_world())
    sim.run(RENEWAL_START, 7)
    assert _renewal_steps(sim) == {
        0: [("proposal_email", "email")],
        5: [("no_interaction_nudge", "whatsapp")],
    }
    assert _why(sim, _day(2), "opened_no_click_call") == [
        "condition not met: the contact has not opened since the cadence began"
    ]
    nudge = sim.plans[_day(5)].touches.iloc[0]
    assert nudge["purpose"] == "marketing"
    assert nudge["send_at_local"] == "2026-11-09 09:00 Europe/Madrid"


def test_renewal_opened_not_clicked_gets_a_call_task_for_the_owner_on_day_2() -> None:
    w = renewal_world()
    w.event("opened", _stamp(_day(1)), "A1", channel="email", contact_source_id="ana")
    sim = Simulation(w)
    sim.run(RENEWAL_START, 7)
    assert _renewal_steps(sim) == {
        0: [("proposal_email", "email")],
        2: [("opened_no_click_call", "voice")],
    }
    call = sim.plans[_day(2)].touches.iloc[0]
    assert call["assignee"] == "Olga Owner"
    assert _why(sim, _day(5), "no_interaction_nudge") == [
        "condition not met: the contact interacted since the cadence began"
    ]


def test_renewal_click_stops_the_waterfall() -> None:
    w = renewal_world()
    w.event("opened", _stamp(_day(1)), "A1", channel="email", contact_source_id="ana")
    w.event("clicked", _stamp(_day(1), 11), "A1", channel="email", contact_source_id="ana")
    sim = Simulation(w)
    sim.run(RENEWAL_START, 7)
    assert _renewal_steps(sim) == {0: [("proposal_email", "email")]}
    assert any(
        "stopped: the contact clicked" in d for d in _why(sim, _day(2), "opened_no_click_call")
    )


def test_renewal_not_opened_on_day_2_waits_and_calls_once_it_is_opened() -> None:
    w = renewal_world()
    w.event("opened", _stamp(_day(3)), "A1", channel="email", contact_source_id="ana")
    sim = Simulation(w)
    sim.run(RENEWAL_START, 7)
    assert _renewal_steps(sim) == {
        0: [("proposal_email", "email")],
        3: [("opened_no_click_call", "voice")],
    }


def test_renewal_case_closes_when_the_deal_is_won() -> None:
    w = renewal_world()
    sim = Simulation(w)
    sim.run(RENEWAL_START, 2)
    w.renewals[0].update(status="won", last_modified="2026-11-06T00:00:00Z")
    plan = sim.day(_day(2))
    case = plan.cases.iloc[0]
    assert (case["status"], case["status_reason"]) == ("closed", "closed: deal won")
    assert sim.state.cases.empty


# --- collections ------------------------------------------------------------------------------


def collections_world(**contact: object) -> World:
    w = World()
    w.contact("bea", "B1", mobile_phone="+34622334455", **contact)
    # 20 days overdue on the first day: early reactive stage.
    w.invoice("B1", "F-1", COLLECTIONS_START - dt.timedelta(days=20), 4200.0)
    return w


def _c(n: int) -> dt.date:
    return COLLECTIONS_START + dt.timedelta(days=n)


def _all_steps(sim: Simulation) -> dict[dt.date, list[tuple[str, str]]]:
    return {d: sim.steps_on(d) for d in sim.plans if sim.steps_on(d)}


def test_early_collections_reactivate_on_whatsapp_then_call_on_day_3() -> None:
    sim = Simulation(collections_world())
    sim.run(COLLECTIONS_START, 5)
    assert _all_steps(sim) == {
        _c(0): [("early_reactivation", "whatsapp")],
        _c(3): [("early_negotiation_call", "voice")],
    }
    assert sim.plans[_c(3)].touches.iloc[0]["assignee"] == "collections_agent"


def test_high_value_account_gets_the_call_earlier() -> None:
    w = collections_world()
    w.items[0].update(amount=25000.0, open_amount=25000.0)
    sim = Simulation(w)
    sim.run(COLLECTIONS_START, 4)
    assert _all_steps(sim) == {
        _c(0): [("early_reactivation", "whatsapp")],
        _c(1): [("early_negotiation_call", "voice")],
    }


def test_promise_to_pay_pauses_the_case_and_is_confirmed_by_email() -> None:
    w = collections_world()
    w.event("promise_to_pay", _stamp(_c(1), 9), "B1", amount=4200.0, promised_date=_c(8))
    w.event("payment", _stamp(_c(7), 9), "B1", amount=4200.0)
    w.items[0]["until"] = _c(8)  # the ERP export no longer lists it once paid
    sim = Simulation(w)
    sim.run(COLLECTIONS_START, 12)
    assert _all_steps(sim) == {
        _c(0): [("early_reactivation", "whatsapp")],
        _c(1): [("promise_confirmation", "email")],
    }
    case = sim.plans[_c(3)].cases.iloc[0]
    assert case["status"] == "paused"
    assert case["status_reason"] == "paused: promise to pay, until 2026-11-27"
    closed = sim.plans[_c(7)].cases.iloc[0]
    assert (closed["status"], closed["status_reason"]) == ("closed", "closed: paid")


def test_broken_promise_triggers_a_call_task() -> None:
    w = collections_world()
    w.event("promise_to_pay", _stamp(_c(1), 9), "B1", amount=4200.0, promised_date=_c(8))
    sim = Simulation(w)
    sim.run(COLLECTIONS_START, 15)
    steps = _all_steps(sim)
    # Due 11-24, grace 3 days: broken on 11-28, a Saturday: the call task lands on Monday.
    # By then the invoice is 32 days overdue: the advanced stage's notice goes out too.
    assert steps[_c(12)] == [("advanced_notice", "whatsapp"), ("broken_promise_call", "voice")]
    touches = sim.plans[_c(12)].touches
    call = touches[touches["step"] == "broken_promise_call"].iloc[0]
    assert call["send_at_local"] == "2026-11-30 09:30 Europe/Madrid"
    assert sim.plans[_c(12)].cases.iloc[0]["status_reason"] == "promise broken: due 2026-11-24"
    assert all(
        s not in ("early_negotiation_call",) for d in range(1, 12) for s, _ in steps.get(_c(d), [])
    )


def test_payment_that_clears_the_balance_closes_the_case() -> None:
    w = collections_world()
    w.event("payment", _stamp(_c(1), 8), "B1", amount=4200.0)
    sim = Simulation(w)
    sim.run(COLLECTIONS_START, 6)
    assert _all_steps(sim) == {_c(0): [("early_reactivation", "whatsapp")]}
    case = sim.plans[_c(1)].cases.iloc[0]
    assert (case["status"], case["status_reason"]) == ("closed", "closed: paid")
    assert sim.state.cases.empty


def test_partial_payment_keeps_the_case_open() -> None:
    w = collections_world()
    w.event("payment", _stamp(_c(1), 8), "B1", amount=1000.0)
    sim = Simulation(w)
    sim.run(COLLECTIONS_START, 4)
    assert sim.plans[_c(3)].cases.iloc[0]["status"] == "open"
    assert sim.plans[_c(3)].cases.iloc[0]["amount"] == 3200.0


def test_dispute_pauses_and_routes_to_a_person() -> None:
    w = collections_world()
    w.event("dispute", _stamp(_c(1), 9), "B1", invoice_number="F-1")
    sim = Simulation(w)
    sim.run(COLLECTIONS_START, 10)
    assert _all_steps(sim) == {
        _c(0): [("early_reactivation", "whatsapp")],
        _c(1): [("dispute_review", "voice")],
    }
    case = sim.plans[_c(5)].cases.iloc[0]
    assert case["status"] == "paused"
    assert case["status_reason"].startswith("paused: dispute on 2026-11-17")


def test_manual_hold_stops_everything_until_its_date() -> None:
    sim = Simulation(collections_world())
    sim.state.holds = pd.DataFrame(
        {"account_id": ["B1"], "until": [_c(4)], "reason": ["customer in insolvency talks"]}
    )
    sim.run(COLLECTIONS_START, 7)
    assert _all_steps(sim) == {_c(5): [("early_reactivation", "whatsapp")]}
    reason = sim.plans[_c(0)].cases.iloc[0]["status_reason"]
    assert reason == "held: do not contact until 2026-11-20 (customer in insolvency talks)"


def test_advanced_stage_escalates_and_repeats() -> None:
    w = World()
    w.contact("cid", "C1", mobile_phone="+34633445566")
    w.invoice("C1", "F-9", COLLECTIONS_START - dt.timedelta(days=40), 900.0)
    sim = Simulation(w)
    sim.run(COLLECTIONS_START, 17)
    steps = _all_steps(sim)
    assert steps[_c(0)] == [("advanced_formal_notice", "email"), ("advanced_notice", "whatsapp")]
    assert steps[_c(2)] == [("advanced_close_call", "voice")]
    # 61 days overdue on day 21 would be escalation; the 14-day cycle repeats the notices.
    assert steps[_c(14)] == [("advanced_formal_notice", "email"), ("advanced_notice", "whatsapp")]


def test_connected_call_is_documented_by_email() -> None:
    w = collections_world()
    w.event("call_outcome", _stamp(_c(3), 11), "B1", channel="voice", outcome="connected",
            contact_source_id="bea")  # fmt: skip
    sim = Simulation(w)
    sim.run(COLLECTIONS_START, 5)
    assert ("call_summary", "email") in sim.steps_on(_c(3))
