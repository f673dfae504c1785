"""A sharded daily run in one place (no workers): shards decided as tasks on a local Dask
cluster, sent together — the same ledger as an unsharded run of the same day."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from config.settings import get_settings
from flows.daily_outreach import daily_outreach
from tasks.ledger.db import engine_for
from tasks.ledger.models import Case, Touch

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
DAY = date(2026, 11, 19)
pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("harness")]


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, shards: int) -> dict:
    inputs = tmp_path / "inputs"
    if not inputs.exists():
        shutil.copytree(SAMPLES, inputs)
    monkeypatch.setenv("CADENCIA_STATE_DIR", str(tmp_path / name))
    monkeypatch.setenv("CADENCIA_INPUT_DIR", str(inputs))
    get_settings.cache_clear()
    state = daily_outreach(as_of=DAY, shards=shards, return_state=True)
    assert state.is_completed(), state.message
    engine = engine_for(get_settings().ledger_url)
    t, c = Touch.__table__, Case.__table__
    with engine.connect() as conn:
        touches = conn.execute(sa.select(t.c.idempotency_key, t.c.send_at, t.c.channel,
                                         t.c.golden_id, t.c.status).order_by(t.c.idempotency_key)
                               ).all()  # fmt: skip
        cases = conn.execute(sa.select(c.c.case_key, c.c.status, c.c.stage, c.c.amount,
                                       c.c.holdout).order_by(c.c.case_key)).all()  # fmt: skip
        flows = conn.execute(sa.text("select flow from runs order by id")).scalars().all()
    get_settings.cache_clear()
    return {"touches": touches, "cases": cases, "flows": flows, "summary": state.result()}


@pytest.fixture
def shipped_policy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The Dask workers are fresh processes that read config/outreach.yaml as shipped (with
    its holdout); this process must too (tests/conftest.py turns the holdout off)."""
    import config.outreach_policy as op

    def shipped(path: Path = op.OUTREACH_FILE) -> op.OutreachPolicy:
        return op.load_yaml_model(path, op.OutreachPolicy)

    monkeypatch.setattr(op, "load_outreach_policy", shipped)
    op.outreach_policy.cache_clear()
    yield
    op.outreach_policy.cache_clear()


@pytest.mark.usefixtures("shipped_policy")
def test_shards_on_dask_leave_the_ledger_an_unsharded_run_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _run(tmp_path, monkeypatch, "whole", 1)
    sharded = _run(tmp_path, monkeypatch, "sharded", 3)
    assert len(whole["touches"]) > 100
    assert sharded["touches"] == whole["touches"]
    assert sharded["cases"] == whole["cases"]
    assert sharded["flows"] == ["daily_outreach"] + ["daily_outreach_shard"] * 3
    assert not list((tmp_path / "sharded" / "shards").glob("run-*"))  # inputs removed
    plan = sharded["summary"]["plan"]
    assert plan["shards"] == 3
    assert plan["touches_planned"] == whole["summary"]["plan"]["touches_planned"]
    assert plan["touches_by_channel"] == whole["summary"]["plan"]["touches_by_channel"]
