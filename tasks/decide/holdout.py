"""The holdout: a control group of cases that gets no automated touch.

Results are judged by objective (days to pay, recovery, time to close), and only a group the
outreach did not touch shows what the outreach changed. The group is drawn by a keyed hash of
the case key, so it is the same on every run, every machine and every shard, and a case keeps
its group for its whole life (the ledger stores it; see `assign`).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from config.outreach_policy import Holdout
from tasks.decide.cadences import decision_rows

_SCALE = float(2**64)


def _hash_key(seed: str) -> str:
    # pandas' SipHash takes a 16-character key; any seed text maps onto one.
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def in_holdout(case_keys: pd.Series, holdout: Holdout) -> np.ndarray:
    """True for the cases drawn into the control group (about `share` of them)."""
    if holdout.share <= 0 or len(case_keys) == 0:
        return np.zeros(len(case_keys), dtype=bool)
    keys = pd.Series(case_keys.astype("str").to_numpy(dtype=object))
    hashed = pd.util.hash_pandas_object(keys, index=False, hash_key=_hash_key(holdout.seed))
    return hashed.to_numpy(dtype=np.uint64) / _SCALE < holdout.share


def assign(cases: pd.DataFrame, previous: pd.DataFrame, holdout: Holdout) -> np.ndarray:
    """Each case's group: the one the ledger recorded when it opened, else a fresh draw (so
    changing the share or seed never moves a running case between groups)."""
    drawn = in_holdout(cases["case_key"], holdout)
    if previous.empty or "holdout" not in previous:
        return drawn
    known = previous.dropna(subset=["holdout"]).drop_duplicates("case_key")
    stored = cases["case_key"].map(known.set_index("case_key")["holdout"].astype(bool))
    return np.where(stored.notna().to_numpy(), stored.fillna(False).to_numpy(dtype=bool), drawn)


def withhold(steps: pd.DataFrame, cases: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(steps of treated cases, a decision row for each step the holdout keeps back)."""
    held_keys = cases.loc[cases["holdout"].to_numpy(dtype=bool), "case_key"]
    held = steps["case_key"].isin(held_keys).to_numpy()
    notes = decision_rows(
        steps[held],
        outcome="skipped",
        rule="holdout",
        detail="control group: no automated touch, to measure the outreach's effect",
    )
    return steps[~held], notes
