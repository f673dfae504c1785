"""The decisions table on disk, and the story of one account in plain words.

Decisions are many (every candidate touch considered, every case change) and only read for
one account at a time, so each run writes them as one Parquet file per day and run under the
state directory; `cadencia explain` reads them back filtered on the account.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tasks.decide.plan import Plan

_KEEP = ["as_of", "case_key", "account_id", "kind", "stage", "step", "golden_id", "channel",
         "outcome", "rule", "detail", "send_at"]  # fmt: skip


def decisions_path(folder: Path, as_of: dt.date, run_id: int | None) -> Path:
    return folder / as_of.isoformat() / f"run-{run_id if run_id is not None else 0}.parquet"


def write_decisions(plan: Plan, folder: Path, run_id: int | None) -> Path:
    path = decisions_path(folder, plan.as_of, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = plan.decisions[_KEEP].copy()
    for col in _KEEP:
        if col not in ("as_of", "send_at"):
            frame[col] = frame[col].astype("str").where(frame[col].notna(), None)
    frame["send_at"] = pd.to_datetime(frame["send_at"], utc=True)
    table = pa.Table.from_pandas(
        frame.sort_values(["account_id", "case_key"]), preserve_index=False
    )
    pq.write_table(table, path, row_group_size=200_000)
    return path


def read_decisions(folder: Path, as_of: dt.date, account_id: str) -> pd.DataFrame:
    """Every run's decisions about one account on one day, oldest run first."""
    parts = []
    for path in sorted((folder / as_of.isoformat()).glob("run-*.parquet"),
                       key=lambda p: int(p.stem.split("-")[1])):  # fmt: skip
        part = pq.read_table(path, filters=[("account_id", "=", account_id)]).to_pandas()
        parts.append(part.assign(run=int(path.stem.split("-")[1])))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*_KEEP, "run"])


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


_OUTCOME_WORDS = {
    "case": "case",
    "planned": "planned",
    "deferred": "deferred",
    "postponed": "postponed",
    "rerouted": "not on this channel",
    "suppressed": "suppressed",
    "skipped": "not today",
}


def story(account_id: str, as_of: dt.date, decisions: pd.DataFrame, names: dict[str, str]) -> str:
    """The plain-words account of what Cadencia decided for one account on one day."""
    if decisions.empty:
        return (
            f"No decisions recorded for account {account_id} on {as_of}: either no run covered "
            "that day, or the account had no case then (nothing due, nothing overdue)."
        )
    lines = [f"Account {account_id} on {as_of}:"]
    for run, by_run in decisions.groupby("run", sort=True):
        if decisions["run"].nunique() > 1:
            lines.append(f"  run {run}:")
        for case_key, rows in by_run.groupby("case_key", sort=False, dropna=False):
            kind = rows["kind"].dropna().iloc[0] if rows["kind"].notna().any() else "case"
            stage = rows["stage"].dropna().iloc[0] if rows["stage"].notna().any() else ""
            lines.append(f"  {kind} case {case_key} (stage {stage}):")
            for row in rows.itertuples(index=False):
                golden_id = _text(row.golden_id)
                who = f" to {names.get(golden_id, golden_id)}" if golden_id else ""
                step = f"step {row.step}" if _text(row.step) else "the case"
                channel = f" by {row.channel}" if _text(row.channel) else ""
                verb = _OUTCOME_WORDS.get(row.outcome, row.outcome)
                lines.append(
                    f"    - {step}{channel}{who}: {verb} — {row.detail} [rule: {row.rule}]"
                )
    return "\n".join(lines)
