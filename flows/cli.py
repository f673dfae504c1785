"""`cadencia` — the command line: run the daily flow, dispatch due touches, run the provider
sandbox and the webhook receiver, explain a decision, hold an account, report results,
generate exports."""

from __future__ import annotations

import os
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="cadencia",
    help="B2B omnichannel outreach for renewals and collections, built on Prefect.",
    no_args_is_help=True,
    add_completion=False,
)


def _parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-11-20") from None


@app.command()
def run(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Business day to run (YYYY-MM-DD); default today")
    ] = None,
    input_dir: Annotated[
        Path | None, typer.Option("--input-dir", help="Folder with the exports")
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option("--shards", min=1, help="Split the book in N parts by account (scale-out)"),
    ] = None,
) -> None:
    """Run the daily outreach flow once (on the bundled samples by default)."""
    day = _parse_day(as_of)
    if input_dir is not None:
        os.environ["CADENCIA_INPUT_DIR"] = str(input_dir)
    from config.settings import get_settings, settings_problem

    get_settings.cache_clear()
    try:
        settings = get_settings()
    except Exception as exc:
        typer.secho(f"Invalid settings: {settings_problem(exc)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    from flows.daily_outreach import daily_outreach

    try:
        state = daily_outreach(as_of=day, shards=shards, return_state=True)
    except Exception as exc:  # Prefect itself could not run the flow (e.g. its server)
        hint = (
            " Prefect's temporary server did not start in time (machine busy, or several runs"
            " starting at once): retry, run `prefect server start` and set PREFECT_API_URL, or"
            " raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS."
            if "ephemeral" in str(exc).lower()
            else ""
        )
        typer.secho(
            f"Run failed before it started: {type(exc).__name__}: {exc}.{hint}",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(code=1) from None
    summary = state.result(raise_on_failure=False) if state.is_completed() else None
    data = summary if isinstance(summary, dict) else (getattr(state, "data", None) or {})
    typer.echo("")
    for row in data.get("sources", []) if isinstance(data, dict) else []:
        typer.echo(
            f"  {row['source']:<26} read {row['rows read']:>8}  accepted {row['accepted']:>8}"
            f"  quarantined {row['quarantined']:>6}"
        )
    people = data.get("contacts") if isinstance(data, dict) else None
    if people:
        typer.echo(
            f"Contacts: {people['records']} CRM records -> {people['golden_contacts']} people"
            f" ({people['records_merged']} records merged)"
        )
    plan = data.get("plan") if isinstance(data, dict) else None
    if plan:
        cases = plan["cases"]
        channels = ", ".join(f"{n} {ch}" for ch, n in plan["touches_by_channel"].items())
        typer.echo(
            f"Cases: {cases['open']} open, {cases['paused']} paused, {cases['closed']} closed."
            f" Touches planned: {plan['touches_planned']} ({channels or 'none'});"
            f" {plan['touches_new']} new in the ledger."
        )
        typer.echo(f"Decisions (cadencia explain ACCOUNT --as-of DAY): {plan['decisions_file']}")
    delivery = data.get("delivery") if isinstance(data, dict) else None
    if delivery:
        _print_delivery(delivery)
    if isinstance(data, dict) and data.get("quarantine_file"):
        typer.echo(
            f"Quarantined rows (file, row, column, value, reason): {data['quarantine_file']}"
        )
    if isinstance(data, dict) and data.get("charts"):
        typer.echo(f"Charts (PNG, also in the Prefect run's artifacts): {data['charts']}")
    from config.settings import masked_url

    typer.echo(f"Ledger: {masked_url(settings.ledger_url)}")
    if not state.is_completed():
        typer.secho(f"Run failed:\n{state.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    typer.secho("Run completed.", fg=typer.colors.GREEN)


def _print_delivery(delivery: dict) -> None:
    typer.echo(f"Delivery: {delivery['messages']} messages in {delivery['seconds']} s")
    for row in delivery["channels"]:
        typer.echo(
            f"  {row['channel']:<9} sent {row['sent']:>6}  failed {row['failed']:>5}"
            f"  unknown {row['unknown']:>4}  fell back {row['fell_back']:>4}"
            f"  deferred {row['deferred']:>6}"
        )


@app.command()
def dispatch() -> None:
    """Send every planned touch whose moment has come (run it every few minutes)."""
    _settings, _engine = _ledger()
    from flows.dispatch import dispatch_due

    state = dispatch_due(return_state=True)
    data = state.result(raise_on_failure=False) if state.is_completed() else None
    if isinstance(data, dict):
        _print_delivery(data)
    if not state.is_completed():
        typer.secho(f"Dispatch failed:\n{state.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--start", help="First day to replay (YYYY-MM-DD)")],
    end: Annotated[str, typer.Option("--end", help="Last day to replay, inclusive")],
    weekends: Annotated[
        bool, typer.Option("--weekends", help="Also replay Saturdays and Sundays")
    ] = False,
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Replay days that already completed too")
    ] = False,
) -> None:
    """Replay missed days in order; days that already ran are skipped, nothing is sent twice."""
    first, last = _parse_day(start), _parse_day(end)
    assert first is not None and last is not None
    if last < first:
        raise typer.BadParameter("--end is before --start")
    _settings, _engine = _ledger()
    from flows.backfill import backfill as backfill_flow

    state = backfill_flow(first, last, weekdays_only=not weekends, rerun_completed=rerun,
                          return_state=True)  # fmt: skip
    data = state.result(raise_on_failure=False)
    for row in data if isinstance(data, list) else []:
        typer.echo(f"  {row['as_of']}  {row['status']}")
    if not state.is_completed():
        typer.secho(f"Backfill stopped: {state.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1)
    typer.secho("Backfill completed.", fg=typer.colors.GREEN)


@app.command()
def serve(
    cron: Annotated[str, typer.Option("--cron", help="When the daily flow runs")] = "0 8 * * 1-5",
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="Time zone of the cron (default: settings)")
    ] = None,
    dispatch_minutes: Annotated[
        int, typer.Option("--dispatch-every", min=1, help="Minutes between dispatch runs")
    ] = 5,
    events_minutes: Annotated[
        int, typer.Option("--events-every", min=1, help="Minutes between event-flow runs")
    ] = 60,
) -> None:
    """Serve the deployments (daily on a cron, dispatch every few minutes, events hourly,
    backfill on demand).

    Needs a Prefect server: run `prefect server start` and set
    PREFECT_API_URL=http://127.0.0.1:4200/api (the UI is at http://127.0.0.1:4200)."""
    settings, _engine = _ledger()
    import os as _os

    if not _os.environ.get("PREFECT_API_URL"):
        typer.secho(
            "Serving needs a Prefect server: run `prefect server start` in another terminal,"
            " then PREFECT_API_URL=http://127.0.0.1:4200/api cadencia serve",
            fg=typer.colors.RED, err=True,
        )  # fmt: skip
        raise typer.Exit(code=2)
    from flows.deployments import serve_all

    serve_all(cron, timezone or settings.timezone, dispatch_minutes, events_minutes)


@app.command()
def setup(
    pool: Annotated[str, typer.Option("--pool", help="Process work pool to create")] = "cadencia",
) -> None:
    """Prepare a Prefect server for workers: the process work pool, and one shared rate limit
    per rate-limited provider (what several senders need; docs/scaling.md).

    Needs PREFECT_API_URL. Safe to run again (updates the limits to config/delivery.yaml)."""
    if not os.environ.get("PREFECT_API_URL"):
        typer.secho("Setup needs a Prefect server: set PREFECT_API_URL (e.g. "
                    "http://127.0.0.1:4200/api after `prefect server start`).",
                    fg=typer.colors.RED, err=True)  # fmt: skip
        raise typer.Exit(code=2)
    import httpx

    from config.delivery_policy import delivery_policy
    from flows.deployments import ensure_work_pool
    from tasks.deliver.shared_limits import ensure_shared_limits

    try:
        created = ensure_work_pool(pool)
        limits = ensure_shared_limits(delivery_policy())
    except (httpx.HTTPError, OSError) as exc:
        typer.secho(f"Could not reach the Prefect server at {os.environ['PREFECT_API_URL']}: "
                    f"{exc}. Is `prefect server start` running?", fg=typer.colors.RED,
                    err=True)  # fmt: skip
        raise typer.Exit(code=1) from None
    typer.echo(f"Work pool {pool!r} (process): {'created' if created else 'already there'}")
    for name in limits:
        typer.echo(f"Shared rate limit {name}: ready")


@app.command()
def sandbox(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1")] = 8787,
    webhooks_url: Annotated[
        str | None,
        typer.Option("--webhooks-url", help="Where to post status webhooks (cadencia webhooks)"),
    ] = None,
    record: Annotated[
        Path | None, typer.Option("--record", help="Also append accepted messages to this JSONL")
    ] = None,
) -> None:
    """Run the local provider sandbox (WhatsApp, RBM, Twilio, SendGrid, call tasks, in-app).

    Point Cadencia at it with CADENCIA_SANDBOX_URL=http://127.0.0.1:PORT."""
    from sandbox.server import serve

    typer.echo(f"Provider sandbox on http://127.0.0.1:{port} (Ctrl+C to stop)")
    serve("127.0.0.1", port, webhook_url=webhooks_url, record_file=record)


@app.command()
def webhooks(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1")] = 8788,
) -> None:
    """Receive provider status and engagement webhooks (signatures verified) into the ledger."""
    _settings, _engine = _ledger()
    from tasks.deliver.webhooks import serve_webhooks

    typer.echo(f"Webhook receiver on http://127.0.0.1:{port}/webhooks/... (Ctrl+C to stop)")
    serve_webhooks("127.0.0.1", port)


@app.command()
def forget(
    contact: Annotated[str, typer.Argument(help="Golden id of the person (see `explain`)")],
) -> None:
    """Erase a person's personal data (GDPR right to erasure); keep only salted hashes so a
    later export does not bring them back, and the consent audit that proves lawful use."""
    settings, engine = _ledger()
    from tasks.ledger.erasure import erasure_key
    from tasks.ledger.erasure import forget as erase

    done = erase(engine, contact, erasure_key(settings))
    if done is None:
        typer.secho(f"No person with golden id {contact!r} in the ledger.", fg=typer.colors.RED,
                    err=True)  # fmt: skip
        raise typer.Exit(code=1)
    typer.echo(
        f"Forgot {contact}: personal data erased, {done.identifiers} identifiers kept as salted"
        f" hashes, every channel suppressed, {done.touches_cancelled} planned touches cancelled."
    )


@app.command()
def report(
    out: Annotated[
        Path | None, typer.Option("--out", help="HTML file to write (default: state dir)")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="First day to include (YYYY-MM-DD)")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Last day to include (YYYY-MM-DD)")
    ] = None,
) -> None:
    """Write the results report (HTML with charts): DSO, aging, recovery, days to pay, promises
    kept, renewal time to close, and the lift against the holdout group."""
    first, last = _parse_day(since), _parse_day(until)
    settings, engine = _ledger()
    from config.contacts_policy import PolicyError
    from config.report_policy import report_policy
    from tasks.report.build import build_report, write_report
    from tasks.report.results import load_results

    try:
        policy = report_policy()
    except PolicyError as problem:
        typer.secho(str(problem), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    data = load_results(engine, first, last)
    built = build_report(data, policy)
    path = out or settings.reports_dir / f"results-{data.as_of.isoformat()}.html"
    write_report(built, path)
    typer.echo(f"Report: {path.resolve()} (open it in a browser)")


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the exports into")] = Path(
        "data/generated"
    ),
    contacts: Annotated[int, typer.Option("--contacts", min=1, help="People to generate")] = 300,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same files)")] = 7,
    fmt: Annotated[str, typer.Option("--format", help="csv, parquet or xlsx")] = "csv",
) -> None:
    """Write realistic, messy CRM and ERP exports (deterministic by seed)."""
    if fmt not in ("csv", "parquet", "xlsx"):
        raise typer.BadParameter("--format must be csv, parquet or xlsx")
    from tasks.sample_data.generator import generate as write_exports

    paths = write_exports(out, contacts=contacts, seed=seed, fmt=fmt)  # type: ignore[arg-type]
    for name, path in paths.items():
        typer.echo(f"  {name:<26} {path}")


def _ledger():  # noqa: ANN202 - an Engine, imported lazily to keep `--help` fast
    from config.settings import get_settings, settings_problem

    try:
        settings = get_settings()
    except Exception as exc:
        typer.secho(f"Invalid settings: {settings_problem(exc)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    from tasks.ledger.db import engine_for, migrate

    migrate(settings.ledger_url)
    return settings, engine_for(settings.ledger_url)


@app.command()
def explain(
    account: Annotated[str, typer.Argument(help="Account id (the ERP customer number)")],
    as_of: Annotated[str, typer.Option("--as-of", help="Business day (YYYY-MM-DD)")],
) -> None:
    """Tell, in plain words, what Cadencia decided for one account on one day, and why."""
    day = _parse_day(as_of)
    assert day is not None
    settings, engine = _ledger()
    from tasks.decide.explain import read_decisions, story
    from tasks.ledger.outreach import contact_names

    decisions = read_decisions(settings.decisions_dir, day, account)
    ids = [str(g) for g in decisions["golden_id"].dropna().unique()] if len(decisions) else []
    typer.echo(story(account, day, decisions, contact_names(engine, ids)))
    if decisions.empty:
        raise typer.Exit(code=1)


@app.command()
def hold(
    account: Annotated[str, typer.Argument(help="Account id (the ERP customer number)")],
    until: Annotated[str, typer.Option("--until", help="Last day of the hold (YYYY-MM-DD)")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the record")] = None,
) -> None:
    """Do not contact an account until a date (every case of it waits, with this reason)."""
    day = _parse_day(until)
    assert day is not None
    _settings, engine = _ledger()
    from tasks.ledger.outreach import add_hold

    add_hold(engine, account, day, reason)
    typer.echo(f"Account {account}: no touch until {day} inclusive.")


if __name__ == "__main__":
    app()
