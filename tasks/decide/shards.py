"""Shards: the planner's inputs split by account, so each part can be decided on its own
worker and the parts together give exactly the plan of the whole.

Why by account: a case, its invoices, its contacts and their caps all belong to one account
(identity resolution has already run over the whole book, and a golden contact carries its
account), so nothing the planner computes for one account reads another's rows. The split is
a keyed hash of the account id: stable across runs, machines and shard counts' reruns.
What is global about the book travels with every shard: the export date (payments newer than
the ERP export count as paid since).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.decide.engagement import link_events
from tasks.decide.plan import PlanInputs

_KEY = hashlib.sha256(b"cadencia-shards").hexdigest()[:16]


def shard_of(keys: pd.Series, shards: int) -> np.ndarray:
    """Shard number (0..shards-1) of each key; missing keys go to shard 0."""
    if shards <= 1 or len(keys) == 0:
        return np.zeros(len(keys), dtype=np.int64)
    text = pd.Series(keys.astype("str").to_numpy(dtype=object)).fillna("")
    hashed = pd.util.hash_pandas_object(text, index=False, hash_key=_KEY).to_numpy(np.uint64)
    return (hashed % np.uint64(shards)).astype(np.int64)


def split_inputs(inputs: PlanInputs, shards: int, as_of: pd.Timestamp) -> list[PlanInputs]:
    """The inputs of each shard. An event goes to its account's shard and, when its contact
    belongs to another account, to that contact's shard too (each uses the part it owns)."""
    export_date = inputs.book_export_date()
    golden_shard = shard_of(inputs.golden["account_id"], shards)
    by_golden = pd.Series(golden_shard, index=inputs.golden["golden_id"].astype("str").to_numpy())
    by_golden = by_golden[~by_golden.index.duplicated()]

    linked = link_events(inputs.events, inputs.golden, inputs.source_map, as_of.date())
    linked = linked.reindex(inputs.events.index)  # later events than as_of: account's shard
    event_account = linked["account_id"].fillna(inputs.events["account_id"])
    event_shard = shard_of(event_account, shards)
    contact_shard = (
        by_golden.reindex(linked["golden_id"].astype("str")).fillna(-1).to_numpy(np.int64)
    )

    source_shard = by_golden.reindex(inputs.source_map["golden_id"].astype("str"))
    consent_shard = by_golden.reindex(inputs.consent_wide.index.astype("str"))
    items_shard = shard_of(inputs.open_items["account_id"], shards)
    renewals_shard = shard_of(inputs.renewals["account_id"], shards)
    parts = []
    for k in range(shards):
        parts.append(
            replace(
                inputs,
                open_items=inputs.open_items[items_shard == k],
                renewals=inputs.renewals[renewals_shard == k],
                events=inputs.events[(event_shard == k) | (contact_shard == k)],
                golden=inputs.golden[golden_shard == k],
                source_map=inputs.source_map[(source_shard == k).to_numpy()],
                consent_wide=inputs.consent_wide[(consent_shard == k).to_numpy()],
                export_date=export_date,
            )
        )
    return parts


FRAMES = ("open_items", "renewals", "events", "golden", "source_map", "consent_wide")


def write_shard(inputs: PlanInputs, folder: Path) -> Path:
    """A shard's inputs as Parquet files (one per frame) in `folder`: what its worker reads.
    They hold personal data like the ledger does; they live under the state directory."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in FRAMES:
        frame = getattr(inputs, name)
        frame = frame.reset_index() if name == "consent_wide" else frame
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    export_date = None if inputs.export_date is None else str(pd.Timestamp(inputs.export_date))
    (folder / "book.json").write_text(json.dumps({"export_date": export_date}))
    return folder


def read_shard(folder: Path) -> PlanInputs:
    frames = {name: pd.read_parquet(folder / f"{name}.parquet") for name in FRAMES}
    frames["consent_wide"] = frames["consent_wide"].set_index("golden_id")
    book = json.loads((folder / "book.json").read_text())
    export_date = pd.Timestamp(book["export_date"]) if book["export_date"] else None
    return PlanInputs(**frames, export_date=export_date)
