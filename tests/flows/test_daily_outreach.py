"""The daily flow, run through Prefect (test harness): ingest the samples, record, publish."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter

from config.settings import get_settings
from flows.daily_outreach import daily_outreach
from tasks.ledger.db import engine_for
from tasks.ledger.models import Touch

pytestmark = [pytest.mark.flow, pytest.mark.usefixtures("harness")]


def plan_touches(summary: dict) -> int:
    return int(summary["plan"]["touches_planned"])


def _artifact(key: str, flow_run_id) -> str:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]}),
        )
    assert found, f"no artifact {key!r}"
    return str(found[0].data)


def test_daily_flow_ingests_the_samples_and_records_counts(workspace: Path) -> None:
    state = daily_outreach(as_of=date(2026, 11, 20), return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    engine = engine_for(get_settings().ledger_url)
    with engine.connect() as conn:
        run = conn.execute(sa.text("select id, status, as_of from runs")).one()
        files = conn.execute(
            sa.text("select source, rows_read, rows_accepted, rows_quarantined from source_files")
        ).all()
        quarantined = conn.execute(sa.text("select count(*) from quarantine")).scalar_one()
    assert run.status == "completed" and str(run.as_of) == "2026-11-20"
    assert {f.source for f in files} == set(get_settings().sources)
    for f in files:
        assert f.rows_read == f.rows_accepted + f.rows_quarantined
        assert f.rows_accepted > 0
    assert sum(f.rows_quarantined for f in files) > 0  # the samples carry a few bad rows
    assert quarantined >= sum(f.rows_quarantined for f in files)
    assert summary["quarantine_file"] and Path(summary["quarantine_file"]).is_file()

    markdown = _artifact("ingestion-summary", state.state_details.flow_run_id)
    assert "salesforce_contacts" in markdown and "quarantined" in markdown
    assert_no_contact_data(markdown, workspace)

    # Contacts: one golden record per person, every source id linked, consent audited.
    with engine.connect() as conn:
        golden = conn.execute(sa.text("select count(*) from contacts")).scalar_one()
        linked = conn.execute(sa.text("select count(*) from contact_source_ids")).scalar_one()
        audit = conn.execute(sa.text("select count(*) from consent_audit")).scalar_one()
    accepted = {f.source: f.rows_accepted for f in files}
    assert linked == accepted["salesforce_contacts"] + accepted["hubspot_contacts"]
    assert 0 < golden < linked  # people in both CRMs were merged
    assert golden == summary["contacts"]["golden_contacts"]
    assert audit > 0
    quality = _artifact("contact-quality", state.state_details.flow_run_id)
    assert "people found in both CRMs" in quality
    assert_no_contact_data(quality, workspace)

    # Decide: cases opened, touches planned once each, the plan artifact shows tallies only.
    delivery = summary["delivery"]  # pushed to the embedded sandbox, or deferred
    assert {row["channel"] for row in delivery["channels"]} <= {
        "email", "whatsapp", "rcs", "sms", "voice", "in_app"}  # fmt: skip
    # Every planned touch went somewhere: sent, deferred to its moment, or (a past day run
    # long after) expired instead of going out late.
    moved = sum(r["sent"] + r["deferred"] + r["failed"] for r in delivery["channels"])
    assert moved + delivery["housekeeping"]["expired"] == plan_touches(summary)
    plan = summary["plan"]
    with engine.connect() as conn:
        touches = conn.execute(sa.text("select count(*) from touches")).scalar_one()
        cases = conn.execute(sa.text("select count(*) from cases")).scalar_one()
    assert touches == plan["touches_new"] == plan["touches_planned"] > 0
    assert cases == plan["cases"]["open"] + plan["cases"]["paused"] + plan["cases"]["closed"]
    assert Path(plan["decisions_file"]).is_file()
    plan_md = _artifact("outreach-plan", state.state_details.flow_run_id)
    assert "Touches planned" in plan_md
    assert_no_contact_data(plan_md, workspace)
    run_md = _artifact("run-summary", state.state_details.flow_run_id)
    for section in ("## Inputs", "## Cases by stage", "## Touches planned",
                    "## Held back, deferred or rerouted, by rule", "## Delivery"):  # fmt: skip
        assert section in run_md
    assert "| erp_open_items | 806 |" in run_md
    assert_no_contact_data(run_md, workspace)
    # Its charts: PNG files under the state dir, embedded in the artifact with their paths.
    charts = sorted(Path(summary["charts"]).glob("*.png"))
    names = ["delivery-by-channel", "held-back-by-rule", "touches-by-channel", "touches-by-step"]
    assert [p.stem for p in charts] == names
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in charts)
    assert run_md.count("](data:image/png;base64,") == 4
    assert all(f"`{p}`" in run_md for p in charts)

    # The next day keeps every person's golden id and records no consent change again.
    before = _golden_map(engine)
    again = daily_outreach(as_of=date(2026, 11, 23), return_state=True)
    assert again.is_completed(), again.message
    assert _golden_map(engine) == before
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from consent_audit")).scalar_one() == audit


def _golden_map(engine) -> dict[tuple[str, str], str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select system, source_id, golden_id from contact_source_ids"))
        return {(r.system, r.source_id): r.golden_id for r in rows}


def _sample_contact_values(inputs: Path) -> tuple[set[str], set[str]]:
    """Every email and phone digit string in the sample CRM exports."""
    emails, phones = set(), set()
    for name, cols in {
        "salesforce_contacts.csv": ["Email", "Phone", "MobilePhone"],
        "hubspot_contacts.csv": ["Email", "Phone Number", "Mobile Phone Number"],
    }.items():
        frame = pd.read_csv(inputs / name, dtype=str, encoding="utf-8-sig")
        for col in cols:
            for value in frame[col].dropna():
                if "@" in value:
                    emails.add(value.strip().lower())
                digits = re.sub(r"\D", "", value)
                if len(digits) >= 8:
                    phones.add(digits[-8:])
    return emails, phones


def assert_no_contact_data(text: str, inputs: Path) -> None:
    emails, phones = _sample_contact_values(inputs)
    lowered = text.lower()
    leaked = [e for e in emails if e in lowered]
    assert not leaked, f"artifact shows email addresses: {leaked[:3]}"
    digits = re.sub(r"\D", "", text)
    leaked = [p for p in phones if p in digits]
    assert not leaked, f"artifact shows phone numbers: {leaked[:3]}"


def test_a_broken_file_fails_the_run_with_one_clear_message(workspace: Path) -> None:
    broken = workspace / "erp_open_items.csv"
    broken.write_bytes(b"Customer No.;Amount\nC1;12\n")
    state = daily_outreach(as_of=date(2026, 11, 21), return_state=True)
    assert state.is_failed()
    assert "erp_open_items.csv: missing required columns" in state.message
    assert "Fix:" in state.message
    engine = engine_for(get_settings().ledger_url)
    with engine.connect() as conn:
        statuses = conn.execute(sa.text("select status from runs order by id")).scalars().all()
    assert statuses[-1] == "failed"


@pytest.mark.parametrize("fmt", ["parquet", "xlsx"])
def test_daily_flow_reads_typed_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """XLSX and Parquet exports (no text encoding) go through the whole flow."""
    from tasks.sample_data.generator import generate

    inputs = tmp_path / "inputs"
    generate(inputs, contacts=40, seed=5, fmt=fmt)
    monkeypatch.setenv("CADENCIA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CADENCIA_INPUT_DIR", str(inputs))
    get_settings.cache_clear()
    try:
        state = daily_outreach(as_of=date(2026, 11, 20), return_state=True)
        assert state.is_completed(), state.message
        with engine_for(get_settings().ledger_url).connect() as conn:
            formats = conn.execute(sa.text("select distinct file_format from source_files"))
            assert {row[0] for row in formats} == {fmt}
    finally:
        get_settings.cache_clear()


def test_explain_and_hold_from_the_command_line(workspace: Path) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    state = daily_outreach(as_of=date(2026, 11, 20), return_state=True)
    assert state.is_completed(), state.message
    engine = engine_for(get_settings().ledger_url)
    with engine.connect() as conn:
        account = conn.execute(
            sa.text("select account_id from touches order by idempotency_key limit 1")
        ).scalar_one()
    runner = CliRunner()
    told = runner.invoke(app, ["explain", account, "--as-of", "2026-11-20"])
    assert told.exit_code == 0, told.output
    assert told.output.startswith(f"Account {account} on 2026-11-20:")
    assert "planned" in told.output and "[rule: plan]" in told.output
    assert_no_contact_data(told.output, workspace)
    unknown = runner.invoke(app, ["explain", "NO-SUCH", "--as-of", "2026-11-20"])
    assert unknown.exit_code == 1 and "No decisions recorded" in unknown.output

    held = runner.invoke(app, ["hold", account, "--until", "2026-12-31", "--reason", "audit"])
    assert held.exit_code == 0, held.output
    again = daily_outreach(as_of=date(2026, 11, 24), return_state=True)
    assert again.is_completed(), again.message
    with engine.connect() as conn:
        later = conn.execute(
            sa.text("select count(*) from touches where account_id = :a and as_of > '2026-11-20'"),
            {"a": account},
        ).scalar_one()
        reasons = (
            conn.execute(
                sa.text("select status_reason from cases where account_id = :a"), {"a": account}
            )
            .scalars()
            .all()
        )
    assert later == 0
    assert all(r.startswith("held: do not contact until 2026-12-31 (audit)") for r in reasons)


def test_as_of_defaults_to_the_scheduled_day(workspace: Path) -> None:
    """No --as-of (what `make run` and schedules do): the day comes from Prefect's scheduled
    start, and it must reach the ledger as a plain date."""
    state = daily_outreach(return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert type(date.fromisoformat(summary["as_of"])) is date
    with engine_for(get_settings().ledger_url).connect() as conn:
        days = conn.execute(sa.text("select distinct as_of from touches")).scalars().all()
    assert [str(d) for d in days] == [summary["as_of"]]


def test_backfill_replays_missed_days_in_order_and_never_twice(workspace: Path) -> None:
    from flows.backfill import backfill

    # Mon 16 .. Sun 22 Nov 2026: five weekdays; Wednesday already ran.
    assert daily_outreach(as_of=date(2026, 11, 18), return_state=True).is_completed()
    state = backfill(date(2026, 11, 16), date(2026, 11, 22), return_state=True)
    assert state.is_completed(), state.message
    statuses = {row["as_of"]: row["status"] for row in state.result()}
    assert statuses == {
        "2026-11-16": "completed", "2026-11-17": "completed",
        "2026-11-18": "skipped (already ran)", "2026-11-19": "completed",
        "2026-11-20": "completed",
    }  # fmt: skip
    engine = engine_for(get_settings().ledger_url)
    with engine.connect() as conn:
        days = conn.execute(sa.text("select as_of from runs order by id")).scalars().all()
        touches = conn.execute(sa.text("select count(*), count(distinct idempotency_key) "
                                       "from touches")).one()  # fmt: skip
    assert [str(d) for d in days] == ["2026-11-18", "2026-11-16", "2026-11-17", "2026-11-19",
                                      "2026-11-20"]  # fmt: skip
    assert touches[0] == touches[1] > 0
    # The same range again: every day already ran, nothing new is planned or sent.
    again = backfill(date(2026, 11, 16), date(2026, 11, 20), return_state=True)
    assert all(r["status"].startswith("skipped") for r in again.result())
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from touches")).scalar_one() == touches[0]


def test_a_forgotten_person_is_erased_and_not_brought_back_by_the_next_export(
    workspace: Path,
) -> None:
    from tasks.ledger.erasure import forget, salt_from

    assert daily_outreach(as_of=date(2026, 11, 18), return_state=True).is_completed()
    engine = engine_for(get_settings().ledger_url)
    with engine.connect() as conn:
        golden_id, email = conn.execute(sa.text(
            "select c.golden_id, c.email from contacts c join touches t"
            " on t.golden_id = c.golden_id where c.email is not null limit 1")).one()  # fmt: skip
    done = forget(engine, golden_id, salt_from(None, get_settings().state_dir))
    assert done is not None and done.identifiers >= 2
    assert daily_outreach(as_of=date(2026, 11, 19), return_state=True).is_completed()
    with engine.connect() as conn:
        person = conn.execute(sa.text(
            "select email, first_name, erased_at from contacts where golden_id = :g"),
            {"g": golden_id}).one()  # fmt: skip
        again = conn.execute(sa.text("select count(*) from contacts where lower(email) = :e"),
                             {"e": email.lower()}).scalar_one()  # fmt: skip
        later = conn.execute(sa.text(
            "select count(*) from touches where golden_id = :g and as_of = '2026-11-19'"),
            {"g": golden_id}).scalar_one()  # fmt: skip
        audit = conn.execute(sa.text("select count(*) from consent_audit where golden_id = :g"),
                             {"g": golden_id}).scalar_one()  # fmt: skip
    assert person[0] is None and person[1] is None and person[2] is not None
    assert again == 0  # the export still holds them: recognised by hash and dropped
    assert later == 0
    assert audit > 0  # the proof of lawful processing stays


def test_a_whole_run_shows_no_number_or_address_in_logs_or_artifacts(workspace: Path) -> None:
    """Everything the Prefect UI keeps of a run — every log line of the flow and its tasks,
    every artifact — checked against the sample exports' real numbers and addresses."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    state = daily_outreach(as_of=date(2026, 11, 20), return_state=True)
    assert state.is_completed(), state.message
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]}))
    assert logs and artifacts
    text = "\n".join(log.message for log in logs)
    text += "\n".join(str(a.data) for a in artifacts)
    assert_no_contact_data(text, workspace)


def _sandbox_record() -> list[dict]:
    path = get_settings().state_dir / "sandbox" / "record.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_second_run_and_a_backfill_over_ran_days_send_nothing_new(workspace: Path) -> None:
    """Asserted from what the provider sandbox accepted, not from our own ledger."""
    from flows.backfill import backfill
    from flows.dispatch import dispatch_due

    day = date(2026, 11, 19)
    assert daily_outreach(as_of=day, return_state=True).is_completed()
    # The day is past, so its push expired the touches: bring them back to now, so the sends
    # really happen (what a run on the day itself would have done).
    engine = engine_for(get_settings().ledger_url)
    now = datetime.now(UTC) - timedelta(minutes=1)
    touches = Touch.__table__
    with engine.begin() as conn:
        revived = (
            sa.update(touches)
            .where(touches.c.status.in_(["planned", "expired"]))
            .values(status="planned", send_at=now, error=None, error_code=None)
        )
        planned = conn.execute(revived).rowcount
    assert planned > 0
    assert dispatch_due(return_state=True).is_completed()
    sent = _sandbox_record()
    refs = [e["ref"] for e in sent]
    assert len(sent) > 0 and len(refs) == len(set(refs))

    # The same day again, then a backfill over it (skipped) and a forced replay of it.
    assert daily_outreach(as_of=day, return_state=True).is_completed()
    assert dispatch_due(return_state=True).is_completed()
    skipped = backfill(day - timedelta(days=1), day, return_state=True).result()
    assert {r["as_of"]: r["status"] for r in skipped}["2026-11-19"] == "skipped (already ran)"
    assert backfill(day, day, rerun_completed=True, return_state=True).is_completed()
    assert dispatch_due(return_state=True).is_completed()
    after = _sandbox_record()
    new_refs = {e["ref"] for e in after} - set(refs)
    # Only the day before the backfilled one may add messages; nothing of the 19th goes twice.
    with engine.connect() as conn:
        of_day = set(conn.execute(sa.text(
            "select message_ref from touches where as_of = '2026-11-19'")).scalars())  # fmt: skip
    assert not (new_refs & of_day)
    assert len([e for e in after if e["ref"] in of_day]) == len(sent)
