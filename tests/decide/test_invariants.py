"""Property-based tests: over generated populations and 60 simulated daily runs, the plan never
breaks the rules the product lives by, counting touches from earlier runs."""

from __future__ import annotations

import datetime as dt

import holidays
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from world import Simulation, World

from config.outreach_policy import Caps, ChannelCap, OutreachPolicy, outreach_policy
from tasks.decide.channels import messaging_number

START = dt.date(2026, 11, 2)
DAYS = 60
# Valid numbers per country (the last digits vary by contact).
COUNTRIES = {
    "ES": ("Europe/Madrid", "+3461234{:04d}"),
    "MX": ("America/Mexico_City", "+525512{:06d}"),
    "CO": ("America/Bogota", "+5730012{:05d}"),
    "PT": ("Europe/Lisbon", "+3519123{:05d}"),
}
EVENT_TYPES = ["delivered", "opened", "clicked", "read", "replied", "promise_to_pay", "payment",
               "dispute", "in_app_seen", "bounced", "unsubscribed", "failed",
               "call_outcome"]  # fmt: skip
CHANNELS = ["email", "whatsapp", "sms", "rcs", "voice", "in_app"]
maybe = st.sampled_from([True, False, None])


@st.composite
def worlds(draw: st.DrawFn) -> World:
    w = World()
    n_accounts = draw(st.integers(2, 7))
    people: list[tuple[str, str]] = []
    for a in range(n_accounts):
        account = f"A{a}"
        country = draw(st.sampled_from(sorted(COUNTRIES)))
        for c in range(draw(st.integers(1, 3))):
            sid = f"p{a}x{c}"
            number = COUNTRIES[country][1].format(a * 10 + c + 11)
            w.contact(
                sid, account, country=country,
                email=f"{sid}@a{a}.example.com" if draw(st.booleans()) or c == 0 else None,
                mobile_phone=number if draw(st.booleans()) else None,
                role=draw(st.sampled_from(["Billing", "Decision Maker", "Influencer"])),
                email_opt_in=draw(maybe), whatsapp_opt_in=draw(maybe), sms_opt_in=draw(maybe),
                marketing_opt_in=draw(maybe), email_opt_out=draw(maybe), do_not_call=draw(maybe),
            )  # fmt: skip
            people.append((sid, account))
        for i in range(draw(st.integers(0, 3))):
            due = START + dt.timedelta(days=draw(st.integers(-80, 40)))
            amount = float(draw(st.integers(100, 30000)))
            w.invoice(account, f"F{a}-{i}", due, amount)
        if draw(st.booleans()):
            w.renewal(account, START + dt.timedelta(days=draw(st.integers(0, 100))))
    for _ in range(draw(st.integers(0, 40))):
        sid, account = draw(st.sampled_from(people))
        kind = draw(st.sampled_from(EVENT_TYPES))
        day = START + dt.timedelta(days=draw(st.integers(-10, DAYS)))
        when = f"{day.isoformat()}T{draw(st.integers(0, 23)):02d}:00:00Z"
        extra: dict[str, object] = {
            "channel": draw(st.sampled_from(CHANNELS)),
            "contact_source_id": sid,
        }
        if kind in ("promise_to_pay", "payment"):
            extra["amount"] = float(draw(st.integers(50, 20000)))
        if kind == "promise_to_pay":
            extra["promised_date"] = day + dt.timedelta(days=draw(st.integers(1, 20)))
        if kind == "call_outcome":
            extra.update(channel="voice", outcome=draw(st.sampled_from(["connected", "no_answer"])))
        w.event(kind, when, account, **extra)
    return w


@st.composite
def policies(draw: st.DrawFn) -> OutreachPolicy:
    base = outreach_policy()
    caps = Caps(
        per_contact_per_day=draw(st.integers(1, 3)),
        per_contact_per_week=draw(st.integers(2, 6)),
        max_channels_per_day=draw(st.integers(1, 3)),
        min_gap_hours=draw(st.sampled_from([0.0, 1.0, 3.0, 6.0])),
        per_channel_week=[
            ChannelCap(channel="whatsapp", purpose="marketing", max=1),
            ChannelCap(channel="voice", purpose="any", max=draw(st.integers(1, 3))),
        ],
    )
    return base.model_copy(update={"caps": caps})


def _local(touches: pd.DataFrame) -> pd.Series:
    out = pd.Series(index=touches.index, dtype=object)
    for zone, rows in touches.groupby("time_zone"):
        out[rows.index] = rows["send_at"].dt.tz_convert(str(zone)).dt.tz_localize(None)
    return pd.to_datetime(out)


@settings(
    max_examples=5,
    deadline=None,
    # Each example simulates 60 days: shrinking would take minutes, so report it unshrunk.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(world=worlds(), policy=policies())
def test_sixty_days_of_plans_keep_every_rule(world: World, policy: OutreachPolicy) -> None:
    sim = Simulation(world, policy)
    sim.run(START, DAYS)
    decisions = sim.decisions
    # Every candidate held back says which rule did it and why.
    held = decisions[decisions["outcome"].isin(["suppressed", "postponed", "rerouted", "skipped"])]
    assert held["rule"].astype(str).str.len().gt(0).all()
    assert held["detail"].astype(str).str.len().gt(0).all()
    t = sim.touches
    if t.empty:
        return
    assert t["idempotency_key"].is_unique
    contacts = world._contacts
    golden = contacts.golden.set_index("golden_id")
    wide = contacts.consent_wide

    # No touch without consent for its channel and purpose, nor without the means to reach.
    for row in t.itertuples(index=False):
        basis = policy.consent[row.channel][row.purpose]
        state = wide.loc[row.golden_id, f"{row.channel}:{row.purpose}"]
        assert state == "granted" or (basis == "not_denied" and state != "denied"), row
    number = messaging_number(contacts.golden).set_axis(contacts.golden["golden_id"])
    messaging = t["channel"].isin(["whatsapp", "sms", "rcs"])
    assert number.reindex(t.loc[messaging, "golden_id"]).notna().all()
    assert golden["email"].reindex(t.loc[t["channel"] == "email", "golden_id"]).notna().all()

    # No touch on a channel after the day its suppression event was seen.
    linked_supp = pd.concat([p.new_suppressions.assign(seen=d) for d, p in sim.plans.items()])
    if len(linked_supp):
        first_seen = linked_supp.groupby(["golden_id", "channel"])["seen"].min()
        seen = first_seen.reindex(pd.MultiIndex.from_arrays([t["golden_id"], t["channel"]]))
        seen_day = pd.to_datetime(pd.Series(seen.to_numpy())).to_numpy(dtype="datetime64[D]")
        planned_day = pd.to_datetime(t["as_of"]).to_numpy(dtype="datetime64[D]")
        after = ~np.isnat(seen_day) & (planned_day >= seen_day)
        assert not after.any(), t[after]

    # Quiet hours, business days and local holidays, in the contact's zone.
    local = _local(t)
    minutes = local.dt.hour * 60 + local.dt.minute
    cal = policy.calendar
    for call, window in ((True, cal.call_window), (False, cal.message_window)):
        rows = (t["channel"] == "voice") == call
        lo = window.start.hour * 60 + window.start.minute
        hi = window.end.hour * 60 + window.end.minute
        assert minutes[rows].between(lo, hi).all()
    assert (local.dt.day_of_week < 5).all()
    country = golden["region"].reindex(t["golden_id"]).to_numpy()
    for c, day in zip(country, local.dt.date, strict=True):
        assert day not in holidays.country_holidays(c, years=day.year), (c, day)

    # Caps across all channels, cadences and runs.
    caps = policy.caps
    t = t.assign(day=local.dt.normalize())
    assert t.groupby(["golden_id", "day"]).size().max() <= caps.per_contact_per_day
    assert t.groupby(["golden_id", "day"])["channel"].nunique().max() <= caps.max_channels_per_day
    for g, rows in t.groupby("golden_id"):
        days = rows["day"].to_numpy(dtype="datetime64[D]")
        for x in np.unique(days):
            week = (days > x - np.timedelta64(7, "D")) & (days <= x)
            assert week.sum() <= caps.per_contact_per_week, (g, x)
            for rule in caps.per_channel_week:
                hit = week & (rows["channel"].to_numpy() == rule.channel)
                if rule.purpose != "any":
                    hit &= rows["purpose"].to_numpy() == rule.purpose
                assert hit.sum() <= rule.max, (g, x, rule)
        stamps = np.sort(rows["send_at"].to_numpy(dtype="datetime64[ns]"))
        gaps = np.diff(stamps).astype("timedelta64[m]").astype(np.int64)
        assert (gaps >= caps.min_gap_hours * 60).all(), (g, gaps)
