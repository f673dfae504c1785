"""The push against the provider sandbox, faults included. Every test asserts from the
sandbox's own record that no message went out twice, and from the ledger that every touch
ended in a terminal or reconcilable state."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from config.delivery_policy import DeliveryPolicy, Limit, delivery_policy
from config.settings import Settings
from sandbox.server import RunningSandbox, start_in_thread
from tasks.deliver.push import push_due
from tasks.deliver.templates import Catalogue
from tasks.ledger.models import Suppression, Touch
from tasks.sample_data.due_touches import email, phone, seed_due_touches

ALL = ("whatsapp", "rcs", "sms", "email", "voice", "in_app")
SETTLED = {"sent", "failed", "expired", "unknown"}  # terminal, or reconcilable by webhooks
REPO = Path(__file__).resolve().parents[2]
# Twilio echoes our ref only through the StatusCallback URL (the sandbox posts no webhooks here).
HOOKS = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


@pytest.fixture
def sandbox(catalogue: Catalogue) -> Any:
    # Our WhatsApp templates as the approved ones: a wrong name, language or parameter count
    # would be refused (132001/132000) as Meta would.
    approved = catalogue.approved_whatsapp()
    with start_in_thread(port=0, webhooks=False, templates=approved) as running:
        yield running


def fast_policy(**providers: Limit) -> DeliveryPolicy:
    """The shipped policy with quick retries (tests should not sleep for real backoffs)."""
    base = delivery_policy()
    retries = base.retries.model_copy(
        update={"base_seconds": 0.05, "max_seconds": 0.5, "max_retry_after_seconds": 1.0}
    )
    timeouts = base.timeouts.model_copy(update={"read_seconds": 1.0})
    return base.model_copy(
        update={
            "providers": {**base.providers, **providers},
            "retries": retries,
            "timeouts": timeouts,
        }  # fmt: skip
    )


def statuses(engine: sa.Engine) -> Counter:
    t = Touch.__table__
    with engine.connect() as conn:
        return Counter(dict(conn.execute(sa.select(t.c.status, sa.func.count())
                                         .group_by(t.c.status)).all()))  # fmt: skip


def touches(engine: sa.Engine) -> list[dict]:
    t = Touch.__table__
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.id))]


def record(sandbox: RunningSandbox) -> list[dict]:
    return sandbox.sandbox.record.messages()


def assert_no_duplicates(sandbox: RunningSandbox) -> Counter:
    refs = Counter((m["provider"], m["ref"]) for m in record(sandbox))
    twice = [k for k, n in refs.items() if n > 1]
    assert not twice, f"sent more than once: {twice[:5]}"
    return refs


def set_faults(sandbox: RunningSandbox, **faults: Any) -> None:
    import httpx

    response = httpx.post(f"{sandbox.url}/_sandbox/faults", json=faults)
    assert response.status_code == 200, response.text


def test_every_channel_sends_once_and_a_rerun_sends_nothing(
    ledger: sa.Engine, sandbox: RunningSandbox, catalogue: Catalogue, tmp_path: Path
) -> None:
    seed_due_touches(ledger, 24, ALL)
    settings = Settings(state_dir=tmp_path, webhooks_url=HOOKS)
    report = push_due(ledger, settings, fast_policy(), catalogue, sandbox.url)
    assert report.messages == 24
    assert statuses(ledger) == Counter({"sent": 24})
    refs = assert_no_duplicates(sandbox)
    providers = Counter(p for p, _ in refs)
    assert providers == Counter({"whatsapp": 4, "rbm": 4, "twilio_sms": 4, "sendgrid": 4,
                                 "call_webhook": 4, "in_app": 4})  # fmt: skip
    rows = touches(ledger)
    assert {r["message_ref"] for r in rows} == {ref for _, ref in refs}
    assert all(r["provider_message_id"] and r["sent_at"] for r in rows)
    # The same day again, and a dispatch right after: nothing new goes out.
    again = push_due(ledger, settings, fast_policy(), catalogue, sandbox.url)
    assert again.messages == 0 and len(record(sandbox)) == 24


def test_a_storm_of_rate_limit_errors_is_absorbed_without_duplicates(
    ledger: sa.Engine, sandbox: RunningSandbox, catalogue: Catalogue, tmp_path: Path
) -> None:
    """The provider allows 20/s; we are (mis)configured without a limit: its throttling
    errors pause the whole provider and everything still goes out once."""
    set_faults(sandbox, rate_limit_per_second={"whatsapp": 20})
    seed_due_touches(ledger, 60, ("whatsapp",))
    policy = fast_policy(whatsapp=Limit(per_second=None, concurrency=32))
    policy = policy.model_copy(
        update={"retries": policy.retries.model_copy(update={"attempts": 12})}
    )
    push_due(
        ledger, Settings(state_dir=tmp_path, webhooks_url=HOOKS), policy, catalogue, sandbox.url
    )
    summary = sandbox.sandbox.record.summary()
    assert summary["rejected"]["whatsapp"]["rate_limited"] > 0  # the storm happened
    assert summary["max_per_second"]["whatsapp"] <= 20
    assert_no_duplicates(sandbox)
    assert statuses(ledger) == Counter({"sent": 60})


def test_our_limiter_keeps_under_the_provider_limit(
    ledger: sa.Engine, sandbox: RunningSandbox, catalogue: Catalogue, tmp_path: Path
) -> None:
    # 24/s against the provider's 25: the sandbox shares this process (and its GIL), which
    # bunches arrivals a little; bench/push.py measures the limit itself across processes.
    set_faults(sandbox, rate_limit_per_second={"whatsapp": 25})
    seed_due_touches(ledger, 60, ("whatsapp",))
    policy = fast_policy(whatsapp=Limit(per_second=24, burst=5, concurrency=16))
    push_due(
        ledger, Settings(state_dir=tmp_path, webhooks_url=HOOKS), policy, catalogue, sandbox.url
    )
    assert sandbox.sandbox.record.summary()["rejected"] == {}
    assert statuses(ledger) == Counter({"sent": 60})


def test_timeouts_after_acceptance_are_unknown_never_resent_then_expire(
    ledger: sa.Engine, sandbox: RunningSandbox, catalogue: Catalogue, tmp_path: Path
) -> None:
    set_faults(sandbox, timeout_after_accept_rate=0.3, hang_seconds=3, seed=3)
    seed_due_touches(ledger, 30, ("whatsapp",))
    settings = Settings(state_dir=tmp_path, webhooks_url=HOOKS)
    push_due(ledger, settings, fast_policy(), catalogue, sandbox.url)
    counts = statuses(ledger)
    assert counts["unknown"] > 0 and counts["sent"] + counts["unknown"] == 30
    # Each unknown touch did reach the provider (reconcilable from its webhooks)...
    refs = assert_no_duplicates(sandbox)
    unknown = [r for r in touches(ledger) if r["status"] == "unknown"]
    assert all(("whatsapp", r["message_ref"]) in refs for r in unknown)
    # ...and is not sent again by the next push, nor after the claim lease.
    set_faults(sandbox)
    push_due(ledger, settings, fast_policy(), catalogue, sandbox.url)
    assert len(record(sandbox)) == 30
    # Without evidence for 48 h it expires (documented rule), still without a resend.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=49)
    push_due(ledger, settings, fast_policy(), catalogue, sandbox.url, clock=lambda: later)
    assert statuses(ledger) == Counter({"sent": counts["sent"], "expired": counts["unknown"]})
    assert len(record(sandbox)) == 30


def test_dropped_connections_after_acceptance_are_unknown(
    ledger: sa.Engine, sandbox: RunningSandbox, catalogue: Catalogue, tmp_path: Path
) -> None:
    set_faults(sandbox, drop_after_accept_rate=0.3, seed=5)
    seed_due_touches(ledger, 30, ("sms",))
    push_due(
        ledger,
        Settings(state_dir=tmp_path, webhooks_url=HOOKS),
        fast_policy(),
        catalogue,
        sandbox.url,
    )
    counts = statuses(ledger)
    assert counts["unknown"] > 0 and counts["sent"] + counts["unknown"] == 30
    assert len(assert_no_duplicates(sandbox)) == 30


def test_server_errors_are_retried_and_rbm_retries_ambiguous_sends_safely(
    ledger: sa.Engine, sandbox: RunningSandbox, catalogue: Catalogue, tmp_path: Path
) -> None:
    set_faults(sandbox, error_rate=0.4, error_status=503, seed=11)
    seed_due_touches(ledger, 40, ("whatsapp", "rcs"))
    policy = fast_policy()
    policy = policy.model_copy(
        update={"retries": policy.retries.model_copy(update={"attempts": 10})}
    )
    push_due(
        ledger, Settings(state_dir=tmp_path, webhooks_url=HOOKS), policy, catalogue, sandbox.url
    )
    assert statuses(ledger) == Counter({"sent": 40})
    assert len(assert_no_duplicates(sandbox)) == 40


def test_permanent_failures_suppress_and_fall_back_to_the_next_channel(
    ledger: sa.Engine, sandbox: RunningSandbox, catalogue: Catalogue, tmp_path: Path
) -> None:
    # Contact 0 (WhatsApp) is not on WhatsApp; 1 (RCS) has no RCS; 2 (SMS) said STOP.
    seed_due_touches(ledger, 3, ("whatsapp", "rcs", "sms"))
    set_faults(sandbox, permanent={phone(0): "undeliverable", phone(1): "not_rcs",
                                   phone(2): "stop"})  # fmt: skip
    push_due(
        ledger,
        Settings(state_dir=tmp_path, webhooks_url=HOOKS),
        fast_policy(),
        catalogue,
        sandbox.url,
    )
    rows = {(r["golden_id"], r["channel"]): r for r in touches(ledger)}
    assert rows[("G00000000", "whatsapp")]["status"] == "failed"
    assert rows[("G00000000", "whatsapp")]["error_code"] == "131026"
    assert rows[("G00000000", "sms")]["status"] == "sent"  # fell back
    assert rows[("G00000001", "rcs")]["error_code"] == "NOT_FOUND"
    assert rows[("G00000001", "sms")]["status"] == "sent"  # RCS → SMS
    assert rows[("G00000002", "sms")]["status"] == "failed"
    assert rows[("G00000002", "email")]["status"] == "sent"
    assert rows[("G00000000", "sms")]["fallback_of"] == rows[("G00000000", "whatsapp")]["id"]
    s = Suppression.__table__
    with ledger.connect() as conn:
        listed = set(conn.execute(sa.select(s.c.golden_id, s.c.channel, s.c.reason)).all())
    assert listed == {("G00000000", "whatsapp", "whatsapp undeliverable"),
                      ("G00000002", "sms", "sms stop")}  # fmt: skip
    sent_to = {m["to"] for m in record(sandbox)}
    assert {phone(1), email(2)} <= sent_to
    assert_no_duplicates(sandbox)


def test_touches_past_their_validity_expire_instead_of_going_out_late(
    ledger: sa.Engine, sandbox: RunningSandbox, catalogue: Catalogue, tmp_path: Path
) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=30)
    seed_due_touches(ledger, 4, ("whatsapp", "voice"), now=old)
    push_due(
        ledger,
        Settings(state_dir=tmp_path, webhooks_url=HOOKS),
        fast_policy(),
        catalogue,
        sandbox.url,
    )
    by_channel = {r["channel"]: r["status"] for r in touches(ledger)}
    assert by_channel == {"whatsapp": "expired", "voice": "sent"}  # calls stay valid 72 h


def test_deferred_touches_wait_for_their_moment(
    ledger: sa.Engine, sandbox: RunningSandbox, catalogue: Catalogue, tmp_path: Path
) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    seed_due_touches(ledger, 3, ("email",), now=soon)
    settings = Settings(state_dir=tmp_path, webhooks_url=HOOKS)
    report = push_due(ledger, settings, fast_policy(), catalogue, sandbox.url)
    assert report.messages == 0 and report.deferred == {"email": 3}
    then = soon + dt.timedelta(minutes=1)
    report = push_due(ledger, settings, fast_policy(), catalogue, sandbox.url, clock=lambda: then)
    assert report.messages == 3 and statuses(ledger) == Counter({"sent": 3})


# --- other processes: concurrent pushes and a crash mid-batch ------------------------------

PUSH_SCRIPT = """
import sys
from config.delivery_policy import delivery_policy, Limit
from config.settings import Settings
from tasks.deliver.push import push_due
from tasks.deliver.templates import Catalogue
from tasks.ledger.db import engine_for
url, sandbox, state, rate = sys.argv[1:5]
policy = delivery_policy()
limit = Limit(per_second=float(rate), burst=5, concurrency=16)
policy = policy.model_copy(update={"providers": {**policy.providers, "whatsapp": limit}})
settings = Settings(state_dir=state, webhooks_url="http://127.0.0.1:9")
report = push_due(engine_for(url), settings, policy, Catalogue.load(), sandbox)
print(report.messages, flush=True)
"""


def _push_process(url: str, sandbox: RunningSandbox, state: Path, rate: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", PUSH_SCRIPT, url, sandbox.url, str(state), str(rate)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_two_concurrent_pushes_never_send_one_touch_twice(
    ledger_url: str, ledger: sa.Engine, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    seed_due_touches(ledger, 120, ("whatsapp",))
    runs = [_push_process(ledger_url, sandbox, tmp_path / f"s{i}", 60) for i in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err[-2000:] for _, err in outputs]
    shares = [int(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(shares) == 120
    assert len(assert_no_duplicates(sandbox)) == 120
    assert statuses(ledger) == Counter({"sent": 120})


def test_a_crash_mid_batch_then_a_rerun_sends_nothing_twice(
    ledger_url: str, ledger: sa.Engine, sandbox: RunningSandbox, catalogue: Catalogue,
    tmp_path: Path,
) -> None:  # fmt: skip
    seed_due_touches(ledger, 150, ("whatsapp",))
    run = _push_process(ledger_url, sandbox, tmp_path / "crash", 40)
    deadline = time.monotonic() + 60
    while len(record(sandbox)) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)  # kill -9 mid-batch: no cleanup of any kind
    run.wait(timeout=10)
    sent_before = len(record(sandbox))
    assert 0 < sent_before < 150
    stranded = statuses(ledger)["claimed"]
    assert stranded > 0  # the crash left claims behind
    # The re-run: the dead run's claims are not touched while their lease runs...
    settings = Settings(state_dir=tmp_path, webhooks_url=HOOKS)
    policy = fast_policy(whatsapp=Limit(per_second=200, burst=20, concurrency=16))
    push_due(ledger, settings, policy, catalogue, sandbox.url)
    assert statuses(ledger)["claimed"] == stranded
    # ...and once it has expired they become `unknown`, never re-sent.
    short = policy.model_copy(update={"claim_lease_seconds": 0.1})
    time.sleep(0.2)
    push_due(ledger, settings, short, catalogue, sandbox.url)
    counts = statuses(ledger)
    assert set(counts) <= SETTLED
    assert counts["sent"] + counts["unknown"] == 150
    refs = assert_no_duplicates(sandbox)
    # Everything the dead run got out is either recorded sent or awaiting its webhook.
    by_ref = {r["message_ref"]: r["status"] for r in touches(ledger)}
    assert all(by_ref[ref] in ("sent", "unknown") for _, ref in refs)


def test_an_opt_out_or_hold_after_planning_cancels_the_touch(
    ledger: sa.Engine, sandbox: RunningSandbox, catalogue: Catalogue, tmp_path: Path
) -> None:
    from tasks.ledger.models import Hold

    seed_due_touches(ledger, 3, ("whatsapp",))
    with ledger.begin() as conn:  # since the plan: contact 0 opted out, account 1 on hold
        conn.execute(sa.insert(Suppression.__table__).values(
            golden_id="G00000000", channel="whatsapp", reason="WhatsApp opt-out"))  # fmt: skip
        conn.execute(sa.insert(Hold.__table__).values(
            account_id="A00000001", until=dt.date.today() + dt.timedelta(days=3)))  # fmt: skip
    settings = Settings(state_dir=tmp_path, webhooks_url=HOOKS)
    push_due(ledger, settings, fast_policy(), catalogue, sandbox.url)
    by_contact = {r["golden_id"]: r["status"] for r in touches(ledger)}
    assert by_contact == {"G00000000": "cancelled", "G00000001": "cancelled",
                          "G00000002": "sent"}  # fmt: skip
    assert [m["to"] for m in record(sandbox)] == [phone(2)]


def test_a_provider_bug_marks_its_message_unknown_and_strands_nothing(
    ledger: sa.Engine, sandbox: RunningSandbox, catalogue: Catalogue, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tasks.deliver.providers.whatsapp import WhatsAppCloud

    real = WhatsAppCloud.send

    async def flaky(self: WhatsAppCloud, message: Any) -> Any:
        if message.to == phone(1):
            raise ValueError("unexpected body")  # e.g. a decoding bug after the request left
        return await real(self, message)

    monkeypatch.setattr(WhatsAppCloud, "send", flaky)
    seed_due_touches(ledger, 4, ("whatsapp",))
    push_due(ledger, Settings(state_dir=tmp_path, webhooks_url=HOOKS), fast_policy(), catalogue,
             sandbox.url)  # fmt: skip
    assert statuses(ledger) == Counter({"sent": 3, "unknown": 1})


def test_refused_credentials_leave_the_touches_planned(
    ledger: sa.Engine, sandbox: RunningSandbox, catalogue: Catalogue, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """An expired token is our problem, not the touches': nothing fails, nothing is retried
    in a loop, everything waits for the next push."""
    from tasks.deliver.providers.whatsapp import WhatsAppCloud

    original = WhatsAppCloud.__init__

    def without_token(self: WhatsAppCloud, *args: Any) -> None:
        original(self, *args)
        self._headers = {}  # no Authorization: the sandbox answers 401 (code 190)

    monkeypatch.setattr(WhatsAppCloud, "__init__", without_token)
    seed_due_touches(ledger, 5, ("whatsapp",))
    settings = Settings(state_dir=tmp_path, webhooks_url=HOOKS)
    report = push_due(ledger, settings, fast_policy(), catalogue, sandbox.url)
    assert sandbox.sandbox.record.summary()["accepted"] == {}
    assert statuses(ledger) == Counter({"planned": 5})
    assert report.table()[0]["retry_later"] == 5
