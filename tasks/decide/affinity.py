"""Channel affinity: how well each contact answers on each channel, from their history.

Rate = (recency-weighted engagements + prior × k) / (recency-weighted messages + k), so a
contact with two emails is not "100% email" and last quarter counts more than last year.
It is only used with enough evidence (min messages over min channels); otherwise a step keeps
the order the policy gives. Urgent steps always keep the policy's order.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from config.outreach_policy import OutreachPolicy

# Which events count as a message on a channel, and which as an answer to it.
SENT = {"delivered", "call_outcome"}
ANSWERED = {
    "email": {"opened", "clicked", "replied"},
    "whatsapp": {"read", "replied"},
    "rcs": {"read", "replied", "clicked"},
    "sms": {"replied", "clicked"},
    "voice": {"call_connected"},
    "in_app": {"clicked", "replied"},
}


def channel_affinity(linked: pd.DataFrame, as_of: dt.date, policy: OutreachPolicy) -> pd.DataFrame:
    """Long frame (golden_id, channel, affinity) for contacts with enough evidence."""
    cfg = policy.affinity
    ev = linked[linked["golden_id"].notna() & linked["channel"].notna()]
    kind = ev["event_type"].astype(object).to_numpy()
    connected = (kind == "call_outcome") & (ev["outcome"].astype("str") == "connected").to_numpy()
    channel = ev["channel"].astype(object).to_numpy()
    sent = np.isin(kind, list(SENT))
    answered = np.zeros(len(ev), dtype=bool)
    for ch, kinds in ANSWERED.items():
        answered |= (channel == ch) & np.isin(
            np.where(connected, "call_connected", kind), list(kinds)
        )
    age = (pd.Timestamp(as_of, tz="UTC") - ev["occurred_at"]).dt.total_seconds().to_numpy() / 86400
    weight = np.power(0.5, np.clip(age, 0, None) / cfg.half_life_days)
    frame = pd.DataFrame(
        {
            "golden_id": ev["golden_id"].to_numpy(),
            "channel": channel,
            "sent": sent.astype(np.int64),
            "sent_w": np.where(sent, weight, 0.0),
            "answered_w": np.where(answered, weight, 0.0),
        }
    )
    per = frame.groupby(["golden_id", "channel"], sort=False).sum()
    per = per[per["sent"] > 0]
    totals = per.groupby(level="golden_id").agg(messages=("sent", "sum"), channels=("sent", "size"))
    enough = totals[
        (totals["messages"] >= cfg.min_messages) & (totals["channels"] >= cfg.min_channels)
    ]
    per = per[per.index.get_level_values("golden_id").isin(enough.index)].reset_index()
    prior = per["channel"].map(cfg.priors).fillna(0.3).to_numpy()
    k = cfg.prior_weight
    # A message can be opened several times: answers are capped at the messages they answer.
    answered_w = np.minimum(per["answered_w"].to_numpy(), per["sent_w"].to_numpy())
    per["affinity"] = (answered_w + prior * k) / (per["sent_w"].to_numpy() + k)
    return per[["golden_id", "channel", "affinity"]]
