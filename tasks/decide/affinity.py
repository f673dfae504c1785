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
import pyarrow as pa
import pyarrow.compute as pc

from config.outreach_policy import CHANNELS, OutreachPolicy
from tasks import arrow_text as at

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
    """Wide frame: one row per contact with enough evidence, one affinity column per channel
    (channels without history there sit at their prior)."""
    cfg = policy.affinity
    ev = linked[linked["golden_id"].notna() & linked["channel"].notna()]
    names = pa.array(list(CHANNELS), pa.large_string())
    channel = pc.index_in(at.arrow(ev["channel"]), value_set=names)
    channel = pc.fill_null(channel, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    kind = ev["event_type"]
    connected = ((kind == "call_outcome") & (ev["outcome"] == "connected")).to_numpy(
        dtype=bool, na_value=False
    )
    kind = kind.where(~connected, "call_connected")
    sent = kind.isin(list(SENT)).to_numpy(dtype=bool, na_value=False)
    answered = np.zeros(len(ev), dtype=bool)
    for code, ch in enumerate(CHANNELS):
        answered |= (channel == code) & kind.isin(list(ANSWERED[ch])).to_numpy(
            dtype=bool, na_value=False
        )
    keep = (channel >= 0) & (sent | answered)
    who, people = pd.factorize(ev["golden_id"].to_numpy(dtype=object)[keep])
    age_days = np.datetime64(as_of, "ns") - ev["occurred_at"].to_numpy(dtype="datetime64[ns]")[keep]
    age = age_days.astype("timedelta64[s]").astype(np.float64) / 86400
    weight = np.power(0.5, np.clip(age, 0, None) / cfg.half_life_days)
    shape = (len(people), len(CHANNELS))
    count, sent_w, answered_w = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    at_cell = (who, channel[keep])
    np.add.at(count, at_cell, sent[keep].astype(np.float64))
    np.add.at(sent_w, at_cell, np.where(sent[keep], weight, 0.0))
    np.add.at(answered_w, at_cell, np.where(answered[keep], weight, 0.0))
    enough = (count.sum(axis=1) >= cfg.min_messages) & ((count > 0).sum(axis=1) >= cfg.min_channels)
    prior = np.array([cfg.priors.get(c, 0.3) for c in CHANNELS])
    k = cfg.prior_weight
    # A message can be opened several times: answers are capped at the messages they answer.
    rate = (np.minimum(answered_w, sent_w) + prior * k) / (sent_w + k)
    return pd.DataFrame(rate[enough], index=pd.Index(people[enough], name="golden_id"),
                        columns=list(CHANNELS))  # fmt: skip
