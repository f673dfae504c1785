"""The dispatch flow and flow retries through Prefect: due touches go out once, with a
progress artifact and a per-channel summary; a retried flow never sends a touch twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter

from config.settings import get_settings
from flows.dispatch import dispatch_due, push
from sandbox.server import RunningSandbox, start_in_thread
from tasks.ledger import delivery
from tasks.ledger.db import engine_for, migrate
from tasks.sample_data.due_touches import seed_due_touches

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("harness")]


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSandbox]:
    with start_in_thread(port=0, webhooks=False) as running:
        monkeypatch.setenv("CADENCIA_STATE_DIR", str(tmp_path / "state"))
        monkeypatch.setenv("CADENCIA_SANDBOX_URL", running.url)
        monkeypatch.setenv("CADENCIA_WEBHOOKS_URL", "http://127.0.0.1:9")
        get_settings.cache_clear()
        migrate(get_settings().ledger_url)
        yield running
        get_settings.cache_clear()


def _engine() -> sa.Engine:
    return engine_for(get_settings().ledger_url)


def _sent_refs(sandbox: RunningSandbox) -> Counter:
    return Counter(m["ref"] for m in sandbox.sandbox.record.messages())


def test_dispatch_sends_what_is_due_with_progress_and_summary(sandbox: RunningSandbox) -> None:
    seed_due_touches(_engine(), 12, ("whatsapp", "email", "voice"))
    state = dispatch_due(return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["messages"] == 12
    assert {r["channel"]: r["sent"] for r in summary["channels"]} == {
        "whatsapp": 4, "email": 4, "voice": 4}  # fmt: skip
    refs = _sent_refs(sandbox)
    assert len(refs) == 12 and max(refs.values()) == 1
    with get_client(sync_client=True) as client:
        run_filter = FlowRunFilter(id={"any_": [state.state_details.flow_run_id]})
        for key in ("delivery-summary", "delivery-progress"):
            found = client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                flow_run_filter=run_filter,
            )
            assert found, key
        text = str(client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["delivery-summary"])),
            flow_run_filter=run_filter)[0].data)  # fmt: skip
    assert "| whatsapp | 4 |" in text
    assert "@example.com" not in text and "+346" not in text  # no addresses in the UI
    again = dispatch_due(return_state=True)
    assert again.result()["messages"] == 0 and len(_sent_refs(sandbox)) == 12


def test_a_flow_retry_after_sending_sends_nothing_twice(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt sends, then dies before recording the outcomes (the worst moment);
    Prefect retries the flow; the retry must not send those touches again."""
    seed_due_touches(_engine(), 10, ("whatsapp",))
    real = delivery.record_outcomes
    calls = {"n": 0}

    def crash_once(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("ledger went away after the sends")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(delivery, "record_outcomes", crash_once)

    @flow(retries=1, retry_delay_seconds=0)
    def job() -> dict:
        return push(get_settings(), "retry test")

    state = job(return_state=True)
    assert state.is_completed(), state.message
    refs = _sent_refs(sandbox)
    assert len(refs) == 10 and max(refs.values()) == 1  # every message exactly once
    t = delivery.Touch.__table__
    with _engine().connect() as conn:
        left = Counter(dict(conn.execute(sa.select(t.c.status, sa.func.count())
                                         .group_by(t.c.status)).all()))  # fmt: skip
    # The retry left the first attempt's claims alone: they settle as `unknown` once their
    # lease runs out, and webhooks (or expiry) close them; nothing is sent blindly.
    assert left == Counter({"claimed": 10})
