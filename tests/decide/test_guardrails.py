"""Guardrails one day at a time: consent fallback, suppression, in-app silence, affinity, the
recipient's calendar, caps and gaps — each with the reason it records."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from world import Simulation, World

from config.outreach_policy import outreach_policy
from tasks.decide.affinity import channel_affinity
from tasks.decide.aging import invoice_aging, report_bucket
from tasks.decide.calendar import first_working_day
from tasks.decide.engagement import link_events

MONDAY = dt.date(2026, 11, 16)


def _overdue(w: World, account: str, days: int, amount: float = 500.0) -> None:
    w.invoice(account, f"F-{account}-{days}", MONDAY - dt.timedelta(days=days), amount)


def _decided(plan, outcome: str) -> list[tuple[str, str, str]]:  # noqa: ANN001
    d = plan.decisions[plan.decisions["outcome"] == outcome]
    return list(zip(d["channel"], d["rule"], d["detail"], strict=True))


def test_no_whatsapp_consent_falls_back_along_the_chain_with_reasons() -> None:
    w = World()
    w.contact("eva", "E1", mobile_phone="+34611222333", whatsapp_opt_in=False, sms_opt_in=None)
    _overdue(w, "E1", 20)
    plan = Simulation(w).day(MONDAY)
    assert list(plan.touches["channel"]) == ["email"]
    assert _decided(plan, "rerouted") == [
        ("whatsapp", "consent", "no whatsapp consent for service messages (denied)"),
        ("rcs", "consent", "no rcs consent for service messages (unknown)"),
        ("sms", "consent", "no sms consent for service messages (unknown)"),
    ]


def test_without_any_usable_channel_the_touch_is_suppressed_with_every_reason() -> None:
    w = World()
    w.contact("max", "M1", email=None, whatsapp_opt_in=False, sms_opt_in=False)
    _overdue(w, "M1", 20)
    plan = Simulation(w).day(MONDAY)
    assert plan.touches.empty
    assert [c for c, _, _ in _decided(plan, "suppressed")] == ["whatsapp", "rcs", "sms", "email"]
    assert _decided(plan, "suppressed")[-1] == ("email", "capability", "no email address")


def test_marketing_opt_out_does_not_stop_a_payment_reminder_but_stops_marketing() -> None:
    w = World()
    w.contact("ola", "O1", mobile_phone="+34644555666", marketing_opt_in=False,
              role="Decision Maker")  # fmt: skip
    _overdue(w, "O1", 20)
    plan = Simulation(w).day(MONDAY)
    assert list(plan.touches["channel"]) == ["whatsapp"]  # service: the opt-out is marketing only


def test_hard_bounce_puts_email_on_the_suppression_list() -> None:
    w = World()
    w.contact("bo", "B1", mobile_phone=None)
    w.event("bounced", "2026-11-10T10:00:00Z", "B1", channel="email", contact_source_id="bo")
    _overdue(w, "B1", 45)
    plan = Simulation(w).day(MONDAY)
    assert plan.touches.empty
    assert ("email", "suppression list", "on the suppression list: hard bounce") in _decided(
        plan, "suppressed"
    )
    assert list(plan.new_suppressions["reason"]) == ["hard bounce"]


def test_active_in_the_product_gets_in_app_and_silences_the_rest() -> None:
    w = World()
    w.contact("ian", "I1", mobile_phone="+34677888999")
    w.event("in_app_seen", "2026-11-15T18:00:00Z", "I1", channel="in_app", contact_source_id="ian")
    _overdue(w, "I1", 45)
    plan = Simulation(w).day(MONDAY)
    assert set(plan.touches["channel"]) == {"in_app"}
    details = plan.decisions.loc[plan.decisions["outcome"] == "planned", "detail"]
    assert details.str.contains("active in the product: in-app only").all()


def _history(
    w: World, sid: str, account: str, channel: str, sent: int, answered: str, n: int
) -> None:
    for i in range(sent):
        when = f"2026-10-{10 + i:02d}T10:00:00Z"
        w.event("delivered", when, account, channel=channel, contact_source_id=sid)
        if i < n:
            w.event(answered, when.replace("T10", "T12"), account, channel=channel,
                    contact_source_id=sid)  # fmt: skip


def test_affinity_sends_nudges_by_email_but_keeps_whatsapp_for_urgent_service() -> None:
    w = World()
    w.contact("fer", "F1", mobile_phone="+34655666777", role="Decision Maker")
    _history(w, "fer", "F1", "email", sent=5, answered="opened", n=3)  # opens 60% of emails
    _history(w, "fer", "F1", "whatsapp", sent=4, answered="read", n=0)  # never answers
    inputs = w.inputs(MONDAY)
    linked = link_events(inputs.events, inputs.golden, inputs.source_map, MONDAY)
    affinity = channel_affinity(linked, MONDAY, outreach_policy()).loc[w.golden_id("fer")]
    assert affinity["email"] > 0.45 > 0.3 > affinity["whatsapp"]
    # The urgent preventive reminder keeps WhatsApp; the renewal nudge (marketing) goes by email.
    _overdue(w, "F1", 5)
    plan = Simulation(w).day(MONDAY)
    assert plan.touches.set_index("step").loc["preventive_nudge", "channel"] == "whatsapp"
    w2 = World()
    w2.contact("fer", "F1", mobile_phone="+34655666777", role="Decision Maker")
    _history(w2, "fer", "F1", "email", sent=5, answered="opened", n=3)
    _history(w2, "fer", "F1", "whatsapp", sent=4, answered="read", n=0)
    w2.renewal("F1", MONDAY + dt.timedelta(days=40))
    sim = Simulation(w2)
    sim.run(MONDAY - dt.timedelta(days=5), 6)
    nudge = sim.touches.set_index("step").loc["no_interaction_nudge"]
    assert nudge["channel"] == "email"


def test_weekend_and_local_holidays_defer_to_the_next_working_day() -> None:
    policy = outreach_policy()
    assert first_working_day(dt.date(2026, 11, 21), "ES", policy) == (
        dt.date(2026, 11, 23),
        "Saturday is not a business day",
    )
    day, why = first_working_day(dt.date(2026, 12, 8), "ES", policy)
    assert day == dt.date(2026, 12, 9)
    assert why.startswith("public holiday in ES")
    # Mexico's Revolution Day (third Monday of November) is not Spain's.
    assert first_working_day(dt.date(2026, 11, 16), "MX", policy)[0] == dt.date(2026, 11, 17)
    assert first_working_day(dt.date(2026, 11, 16), "ES", policy)[0] == dt.date(2026, 11, 16)


def test_send_times_are_in_the_recipients_zone() -> None:
    w = World()
    w.contact("mar", "X1", country="MX", mobile_phone="+525512345678")
    _overdue(w, "X1", 45)
    plan = Simulation(w).day(dt.date(2026, 11, 20))  # Friday
    first = plan.touches.sort_values("send_at").iloc[0]
    assert first["send_at_local"] == "2026-11-20 09:00 America/Mexico_City"
    assert first["send_at"] == pd.Timestamp("2026-11-20 15:00", tz="UTC")


def test_a_saturday_run_plans_for_monday_and_says_so() -> None:
    w = World()
    w.contact("sam", "S1", mobile_phone="+34699000111")
    _overdue(w, "S1", 45)
    plan = Simulation(w).day(dt.date(2026, 11, 21))
    assert set(plan.touches["send_at_local"].str[:10]) == {"2026-11-23"}
    deferred = plan.decisions[plan.decisions["outcome"] == "deferred"]
    assert deferred["detail"].str.endswith("Saturday is not a business day").all()


def test_daily_cap_and_minimum_gap_across_cases() -> None:
    w = World()
    w.contact("ric", "R1", mobile_phone="+34688111222", role="Decision Maker")
    _overdue(w, "R1", 45)  # advanced: WhatsApp notice + formal email the same day
    w.renewal("R1", MONDAY + dt.timedelta(days=45))  # renewal: proposal email
    plan = Simulation(w).day(MONDAY)
    times = plan.touches.sort_values("send_at")["send_at_local"].str[11:16].tolist()
    assert times == ["09:00", "12:00"]  # two a day, three hours apart
    postponed = _decided(plan, "postponed")
    assert [(rule, detail) for _, rule, detail in postponed] == [
        ("cap per day", "already 2 touch(es) that day; back on the next run")
    ]


def test_aging_consolidates_invoices_and_uses_standard_buckets() -> None:
    w = World()
    w.contact("al", "A1")
    _overdue(w, "A1", 5, 100.0)
    _overdue(w, "A1", 70, 300.0)
    w.invoice("A1", "F-future", MONDAY + dt.timedelta(days=2), 50.0)
    w.invoice("A1", "F-paid", MONDAY - dt.timedelta(days=90), 80.0, open_amount=0.0)
    inv = invoice_aging(w.inputs(MONDAY).open_items, MONDAY, outreach_policy())
    assert dict(zip(inv["doc_number"], inv["stage"], strict=True)) == {
        "F-A1-5": "preventive", "F-A1-70": "escalation", "F-future": "pre_due"
    }  # fmt: skip
    assert list(report_bucket(inv["days_overdue"].to_numpy(), [30, 60, 90])) == [
        "1-30", "61-90", "current"
    ]  # fmt: skip
    plan = Simulation(w).day(MONDAY)
    case = plan.cases.iloc[0]
    assert (case["stage"], case["open_invoices"], case["amount"]) == ("escalation", 3, 450.0)
