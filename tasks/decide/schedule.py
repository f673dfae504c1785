"""When each chosen touch goes out, under the caps that span all channels, cadences and runs.

Touches of one contact are placed one after another in priority order, inside the local
window of the first working day, each at least `min_gap_hours` after the previous one (this
run's or an earlier run's), while the day, week and per-channel caps and the channels-per-day
limit allow. The loop is over rank rounds (the 1st touch of every contact, then the 2nd...),
vectorised across contacts, so it is exactly "one after another" per contact.

Week caps are counted conservatively over the 13 days around the touch's day (six before, six
after), so that no rolling 7-day window that contains it can exceed the cap, including windows
with touches planned earlier for later days.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from config.outreach_policy import CHANNELS, OutreachPolicy
from tasks.decide.cadences import decision_rows
from tasks.decide.calendar import local_days, windows

ACTIVE = ("planned", "claimed", "sent", "unknown")  # touches that count against caps
_BIT = {c: 1 << i for i, c in enumerate(CHANNELS)}
_NAT = np.datetime64("NaT", "ns")


_BITS_SET = np.array([bin(m).count("1") for m in range(64)], dtype=np.int64)


def _popcount(mask: np.ndarray) -> np.ndarray:
    """Channels used, from a 6-bit channel mask."""
    return _BITS_SET[mask]


def schedule(
    chosen: pd.DataFrame,
    golden: pd.DataFrame,
    history: pd.DataFrame,
    as_of: dt.date,
    policy: OutreachPolicy,
    fallback_tz: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(touches with send_at, decisions for those deferred or postponed)."""
    caps = policy.caps
    people = golden.set_index("golden_id")
    country = people["region"].reindex(chosen["golden_id"]).reset_index(drop=True)
    zone = people["time_zone"].reindex(chosen["golden_id"]).reset_index(drop=True)
    c = chosen.reset_index(drop=True)
    win = windows(as_of, country, zone, c["channel"].eq("voice"), policy, fallback_tz)
    c = pd.concat([c, win], axis=1)
    no_day = np.isnat(c["day"].to_numpy())
    notes = [
        decision_rows(
            c[no_day],
            outcome="suppressed",
            rule="calendar",
            detail=f"no working day within {policy.calendar.max_defer_days} days",
        )  # fmt: skip
    ]
    c = (
        c[~no_day]
        .sort_values(["golden_id", "priority", "start"], kind="stable")
        .reset_index(drop=True)
    )
    c["rank"] = c.groupby("golden_id").cumcount()
    contact_codes, contacts = pd.factorize(c["golden_id"])
    n = len(contacts)
    day_of = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    day_of[contact_codes] = c["day"].to_numpy(dtype="datetime64[D]")

    purposes = ["service", "marketing"] if caps.separate_purposes else ["any"]
    p_code = (
        c["purpose"].map({p: i for i, p in enumerate(purposes)}).fillna(0).astype(int).to_numpy()
    )
    h = history[history["status"].isin(ACTIVE) & history["golden_id"].isin(contacts)]
    h_code = contacts.get_indexer(h["golden_id"])
    h_zone = people["time_zone"].reindex(h["golden_id"]).reset_index(drop=True)
    h_day = local_days(h["send_at"].reset_index(drop=True), h_zone, fallback_tz)
    offset = (h_day - day_of[h_code]).astype(np.int64)
    h_p = h["purpose"].map({p: i for i, p in enumerate(purposes)}).fillna(0).astype(int).to_numpy()
    if not caps.separate_purposes:
        h_p = np.zeros(len(h), dtype=int)
    same_day = offset == 0
    near = np.abs(offset) <= 6
    day_count = np.zeros((n, len(purposes)), dtype=np.int64)
    week_count = np.zeros((n, len(purposes)), dtype=np.int64)
    np.add.at(day_count, (h_code[same_day], h_p[same_day]), 1)
    np.add.at(week_count, (h_code[near], h_p[near]), 1)
    mask = np.zeros(n, dtype=np.int64)
    h_bits = h["channel"].map(_BIT).fillna(0).astype(np.int64).to_numpy()
    np.bitwise_or.at(mask, h_code[same_day], h_bits[same_day])
    last = np.full(n, np.iinfo(np.int64).min // 2, dtype=np.int64)
    upto = offset <= 0
    h_ns = pd.to_datetime(h["send_at"], utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    np.maximum.at(last, h_code[upto], h_ns[upto])
    rules = caps.per_channel_week
    rule_count = np.zeros((n, len(rules)), dtype=np.int64)
    for r, rule in enumerate(rules):
        hit = near & (h["channel"].to_numpy() == rule.channel)
        if rule.purpose != "any":
            hit &= h["purpose"].to_numpy() == rule.purpose
        np.add.at(rule_count[:, r], h_code[hit], 1)

    gap = int(caps.min_gap_hours * 3600 * 1e9)
    start = c["start"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    end = c["end"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    channel = c["channel"].to_numpy()
    bits = c["channel"].map(_BIT).astype(np.int64).to_numpy()
    purpose = c["purpose"].to_numpy()
    send_at = np.full(len(c), _NAT.astype(np.int64), dtype=np.int64)
    rule_out = np.full(len(c), "", dtype=object)
    detail = np.full(len(c), "", dtype=object)
    code = contact_codes
    rank = c["rank"].to_numpy()
    for r in range(int(rank.max()) + 1 if len(c) else 0):
        rows = np.flatnonzero(rank == r)
        who, pc_ = code[rows], p_code[rows]
        t = np.maximum(start[rows], last[who] + gap)
        new_channel = (mask[who] & bits[rows]) == 0
        checks = [
            (
                day_count[who, pc_] >= caps.per_contact_per_day,
                "cap per day",
                f"already {caps.per_contact_per_day} touch(es) that day; back on the next run",
            ),
            (
                week_count[who, pc_] >= caps.per_contact_per_week,
                "cap per week",
                f"already {caps.per_contact_per_week} touches within 7 days; back on the next run",
            ),
            (
                new_channel & (_popcount(mask[who] & 63) >= caps.max_channels_per_day),
                "channels per day",
                f"{caps.max_channels_per_day} channels already used that day",
            ),
        ]
        for i, rule in enumerate(rules):
            hit = channel[rows] == rule.channel
            if rule.purpose != "any":
                hit &= purpose[rows] == rule.purpose
            why = f"{rule.channel} ({rule.purpose}) at most {rule.max} per 7 days"
            checks.append((hit & (rule_count[who, i] >= rule.max), "channel cap", why))
        why = f"no room {caps.min_gap_hours:g} h after the previous touch inside the window"
        checks.append((t > end[rows], "minimum gap", why))
        failed = np.zeros(len(rows), dtype=bool)
        for hit, name, why in checks:
            new = hit & ~failed
            rule_out[rows[new]] = name
            detail[rows[new]] = why
            failed |= hit
        ok = rows[~failed]
        w, pok = code[ok], p_code[ok]
        send_at[ok] = t[~failed]
        np.add.at(day_count, (w, pok), 1)
        np.add.at(week_count, (w, pok), 1)
        np.bitwise_or.at(mask, w, bits[ok])
        last[w] = t[~failed]
        for i, rule in enumerate(rules):
            hit = channel[ok] == rule.channel
            if rule.purpose != "any":
                hit &= purpose[ok] == rule.purpose
            np.add.at(rule_count[:, i], w[hit], 1)
    planned = send_at != _NAT.astype(np.int64)
    c["send_at"] = pd.to_datetime(send_at.view("datetime64[ns]")).tz_localize("UTC")
    notes.append(decision_rows(c[~planned], outcome="postponed", rule=rule_out[~planned],
                               detail=detail[~planned], send_at=pd.NaT))  # fmt: skip
    touches = c[planned].reset_index(drop=True)
    touches["local_day"] = touches["day"].to_numpy(dtype="datetime64[D]")
    return touches.drop(columns=["rank", "start", "end"]), pd.concat(notes, ignore_index=True)
