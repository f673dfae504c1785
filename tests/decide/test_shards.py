"""Split by account, the book plans exactly as a whole: same cases, same touches with the same
idempotency keys and send times, same decisions — over two days, the second against the
ledger state the first left."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from config.contacts_policy import contacts_policy
from config.outreach_policy import outreach_policy
from config.settings import Settings
from tasks.contacts.build import unify_contacts
from tasks.decide.plan import (
    CASE_STATE_COLUMNS,
    HISTORY_COLUMNS,
    LedgerState,
    Plan,
    PlanInputs,
    plan_outreach,
)
from tasks.decide.shards import shard_of, split_inputs
from tasks.sample_data.generator import generate
from tasks.sources.ingest import ingest
from tasks.sources.mapping import load_mappings

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
TZ = "Europe/Madrid"


def _inputs(folder: Path) -> PlanInputs:
    settings = Settings()
    by_kind: dict[str, list[pd.DataFrame]] = {}
    for m in load_mappings(settings):
        by_kind.setdefault(m.kind, []).append(ingest(m, folder, settings.timezone).accepted)
    contacts = unify_contacts(by_kind["contacts"], contacts_policy(), settings.default_region)
    return PlanInputs(
        open_items=pd.concat(by_kind["open_items"], ignore_index=True),
        renewals=pd.concat(by_kind["renewals"], ignore_index=True),
        events=pd.concat(by_kind["events"], ignore_index=True),
        golden=contacts.golden,
        source_map=contacts.source_map.reset_index(drop=True),
        consent_wide=contacts.consent_wide,
    )


@pytest.fixture(scope="module", params=["samples", "generated"])
def book(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> PlanInputs:
    if request.param == "samples":
        return _inputs(SAMPLES)
    folder = tmp_path_factory.mktemp("book")
    generate(folder, contacts=3000, seed=11)
    return _inputs(folder)


def _next_state(state: LedgerState, plan: Plan) -> LedgerState:
    touches = plan.touches[HISTORY_COLUMNS]
    history = pd.concat([h for h in (state.history, touches) if len(h)], ignore_index=True)
    live = plan.cases[plan.cases["status"].isin(["open", "paused"])][CASE_STATE_COLUMNS]
    return LedgerState(cases=live.reset_index(drop=True), history=history)


def _state_of(state: LedgerState, shard: int, shards: int) -> LedgerState:
    """What a shard reads from the shared ledger: its accounts' cases and its contacts'
    touches (caps and gaps are per contact; contacts never straddle shards)."""
    cases = state.cases[shard_of(state.cases["account_id"], shards) == shard]
    history = state.history[state.history["case_key"].astype(str).str.split(":").str[1].pipe(
        lambda accounts: shard_of(accounts, shards) == shard)]  # fmt: skip
    return LedgerState(cases=cases.reset_index(drop=True), history=history.reset_index(drop=True))


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = frame.astype(str).sort_values(keys, kind="stable").reset_index(drop=True)
    return out


def _same(whole: pd.DataFrame, parts: list[pd.DataFrame], keys: list[str]) -> None:
    joined = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(_sorted(whole, keys), _sorted(joined[whole.columns], keys))


@pytest.mark.parametrize("shards", [2, 4])
def test_the_shards_plan_exactly_what_the_whole_book_plans(book: PlanInputs, shards: int) -> None:
    policy = outreach_policy()
    whole_state = LedgerState()
    part_states = [LedgerState() for _ in range(shards)]
    for day in (dt.date(2026, 11, 19), dt.date(2026, 11, 20)):
        whole = plan_outreach(book, whole_state, day, policy, TZ)
        parts = split_inputs(book, shards, pd.Timestamp(day))
        plans = [plan_outreach(parts[k], _state_of(part_states[k], k, shards), day, policy, TZ)
                 for k in range(shards)]  # fmt: skip
        assert len(whole.touches) > 0
        _same(whole.touches.drop(columns=["deferred", "local_day", "choice"]),
              [p.touches for p in plans], ["idempotency_key"])  # fmt: skip
        _same(whole.cases, [p.cases for p in plans], ["case_key"])
        _same(whole.decisions, [p.decisions for p in plans], list(whole.decisions.columns))
        whole_state = _next_state(whole_state, whole)
        part_states = [_next_state(part_states[k], plans[k]) for k in range(shards)]


def test_the_split_keeps_every_row_once_and_each_account_whole(book: PlanInputs) -> None:
    parts = split_inputs(book, 4, pd.Timestamp("2026-11-20"))
    assert sum(len(p.open_items) for p in parts) == len(book.open_items)
    assert sum(len(p.golden) for p in parts) == len(book.golden)
    assert sum(len(p.consent_wide) for p in parts) == len(book.consent_wide)
    assert sum(len(p.events) for p in parts) >= len(book.events)
    owners = [set(p.open_items["account_id"]) | set(p.golden["account_id"].dropna()) for p in parts]
    for a in range(4):
        for b in range(a + 1, 4):
            assert not owners[a] & owners[b]
    # Stable: the same account always lands in the same shard, whatever else is in the book.
    accounts = book.open_items["account_id"].drop_duplicates()
    assert np.array_equal(shard_of(accounts, 4), shard_of(accounts.iloc[::-1], 4)[::-1])
