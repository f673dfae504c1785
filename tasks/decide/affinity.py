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
SENT = {"delivered", "call_outcome"}  # a connected call is a call_outcome too
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
    (channels without history there sit at their prior).

    Works on codes over the whole event table (no filtered copy of millions of rows)."""
    cfg = policy.affinity
    kinds = sorted(SENT | {k for ks in ANSWERED.values() for k in ks})
    channel = at.positions(linked["channel"], list(CHANNELS))
    kind = at.positions(linked["event_type"], kinds)
    connected = (kind == kinds.index("call_outcome")) & (linked["outcome"] == "connected").to_numpy(
        dtype=bool, na_value=False
    )
    kind[connected] = kinds.index("call_connected")
    # answers[channel, kind]: does this kind of event answer a message on this channel?
    answers = np.zeros((len(CHANNELS), len(kinds)), dtype=bool)
    for c, ch in enumerate(CHANNELS):
        for k in ANSWERED[ch]:
            answers[c, kinds.index(k)] = True
    is_sent = np.isin(np.arange(len(kinds)), [kinds.index(k) for k in SENT])
    keep = (channel >= 0) & (kind >= 0) & linked["golden_id"].notna().to_numpy()
    channel, kind = channel[keep], kind[keep]
    sent = is_sent[kind] | (kind == kinds.index("call_connected"))
    answered = answers[channel, kind]
    keep_rows = np.flatnonzero(keep)
    people = pc.dictionary_encode(at.arrow(linked["golden_id"]).take(pa.array(keep_rows)))
    people = people.combine_chunks() if isinstance(people, pa.ChunkedArray) else people
    who = people.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    names = people.dictionary.to_numpy(zero_copy_only=False)
    stamps = linked["occurred_at"].to_numpy(dtype="datetime64[ns]")[keep_rows]
    age = (np.datetime64(as_of, "ns") - stamps).astype("timedelta64[s]").astype(np.float64) / 86400
    weight = np.power(0.5, np.clip(age, 0, None) / cfg.half_life_days)
    shape = (len(names), len(CHANNELS))
    count, sent_w, answered_w = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    np.add.at(count, (who, channel), sent.astype(np.float64))
    np.add.at(sent_w, (who, channel), np.where(sent, weight, 0.0))
    np.add.at(answered_w, (who, channel), np.where(answered, weight, 0.0))
    enough = (count.sum(axis=1) >= cfg.min_messages) & ((count > 0).sum(axis=1) >= cfg.min_channels)
    prior = np.array([cfg.priors.get(c, 0.3) for c in CHANNELS])
    k = cfg.prior_weight
    # A message can be opened several times: answers are capped at the messages they answer.
    rate = (np.minimum(answered_w, sent_w) + prior * k) / (sent_w + k)
    return pd.DataFrame(rate[enough], index=pd.Index(names[enough], name="golden_id"),
                        columns=list(CHANNELS))  # fmt: skip
