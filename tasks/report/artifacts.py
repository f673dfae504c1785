"""Prefect UI artifacts for a run: what was read, accepted and quarantined, and why.

Artifacts live in Prefect's database and are shown to anyone with UI access, so they carry
counts, column names and reasons only, never a cell value (a phone number or an email).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks.sources.errors import SourceFileError
from tasks.sources.ingest import SourceResult


def source_counts(results: Sequence[SourceResult]) -> list[dict[str, object]]:
    return [
        {
            "source": r.source,
            "file": r.path.name,
            "format": r.file_format
            + (f" {r.encoding}" if r.encoding else "")
            + (f" {_delim(r.delimiter)}" if r.delimiter else ""),
            "rows read": r.rows_read,
            "accepted": r.rows_accepted,
            "quarantined": r.rows_quarantined,
        }
        for r in results
    ]


def top_quarantine_reasons(results: Sequence[SourceResult], limit: int = 15) -> pd.DataFrame:
    frames = [r.quarantine[["source", "column", "reason"]] for r in results if len(r.quarantine)]
    if not frames:
        return pd.DataFrame(columns=["source", "column", "reason", "rows"])
    q = pd.concat(frames, ignore_index=True)
    top = q.groupby(["source", "column", "reason"], sort=False).size().rename("rows").reset_index()
    return top.sort_values("rows", ascending=False, kind="stable").head(limit)


def ingestion_markdown(
    results: Sequence[SourceResult], problems: Sequence[SourceFileError], as_of: str
) -> str:
    lines = [f"# Ingestion for {as_of}", ""]
    if problems:
        lines += ["## Files that stopped the run", ""]
        lines += [
            f"- **{p.file.rsplit('/', 1)[-1]}**: {p.problem}. *Fix:* {p.fix}" for p in problems
        ]
        lines.append("")
    lines += [
        "| source | file | format | rows read | accepted | quarantined |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in source_counts(results):
        lines.append("| " + " | ".join(str(v) for v in row.values()) + " |")
    top = top_quarantine_reasons(results)
    if len(top):
        lines += [
            "",
            "## Top quarantine reasons",
            "",
            "| source | column | reason | rows |",
            "|---|---|---|---:|",
        ]
        for rec in top.itertuples(index=False):
            lines.append(f"| {rec.source} | {rec.column} | {rec.reason} | {rec.rows} |")
    return "\n".join(lines) + "\n"


def _delim(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delimiter, delimiter)


@task(name="publish-ingestion-artifacts", cache_policy=NO_CACHE)
def publish_ingestion_artifacts(
    results: list[SourceResult], problems: list[SourceFileError], as_of: str
) -> None:
    create_markdown_artifact(
        ingestion_markdown(results, problems, as_of),
        key="ingestion-summary",
        description="Rows read, accepted and quarantined per source",
    )
    create_table_artifact(source_counts(results), key="ingestion-sources")
    top = top_quarantine_reasons(results)
    if len(top):
        create_table_artifact(top.to_dict("records"), key="quarantine-reasons")


def contact_quality_markdown(quality: dict, as_of: str) -> str:
    phones, emails = quality["phone_numbers"], quality["emails"]
    lines = [
        f"# Contact data quality for {as_of}",
        "",
        f"- **{quality['records']:,}** CRM records → **{quality['golden_contacts']:,}** people "
        f"({quality['records_merged']:,} records merged; {quality['people_in_both_crms']:,} "
        "people found in both CRMs)",
        f"- largest clusters: {quality['largest_clusters']}; suspicious clusters kept apart: "
        f"{quality['suspicious_clusters']}; shared keys not used for matching: "
        f"{quality['shared_keys_not_used'] or 'none'}",
        f"- phone numbers: {phones['valid']:,} valid of {phones['total']:,} "
        f"({phones['invalid']:,} invalid, {phones['landline']:,} landlines, "
        f"{phones['mobile']:,} mobiles, {phones['fixed_line_or_mobile']:,} fixed-line-or-mobile)",
        f"- emails: {emails['present']:,} present, {emails['invalid']:,} invalid, "
        f"{emails['role_addresses']:,} role addresses, {emails['likely_typos']:,} likely typos",
        f"- people with no usable channel: {quality['contacts_without_reachable_channel']:,}",
        f"- accounts with a collections contact: {quality['accounts_with_collections_contact']:,};"
        f" with a renewals contact: {quality['accounts_with_renewals_contact']:,}",
        "",
        "## Consent coverage (people who may be contacted)",
        "",
        "| channel | service | marketing |",
        "|---|---:|---:|",
    ]
    for channel, counts in quality["consent_coverage"].items():
        lines.append(f"| {channel} | {counts['service']:,} | {counts['marketing']:,} |")
    return "\n".join(lines) + "\n"


@task(name="publish-contact-quality", cache_policy=NO_CACHE)
def publish_contact_quality(quality: dict, as_of: str) -> None:
    create_markdown_artifact(
        contact_quality_markdown(quality, as_of),
        key="contact-quality",
        description="Phones, emails, identity merges and consent coverage (counts only)",
    )


def plan_markdown(decided: dict, as_of: str) -> str:
    """Cases, planned touches and every decision rule's count: tallies only, no contacts."""
    cases = decided["cases"]
    lines = [
        f"# Outreach plan for {as_of}",
        "",
        f"Cases: **{cases['open']} open**, {cases['paused']} paused, "
        f"{cases['closed']} closed today.",
        "",
        "| stage | live cases |",
        "|---|---:|",
        *[f"| {stage} | {n} |" for stage, n in cases["by_stage"].items()],
        "",
        f"Touches planned: **{decided['touches_planned']}** "
        f"({decided['touches_new']} new in the ledger).",
        "",
        "| channel | touches |",
        "|---|---:|",
        *[f"| {ch} | {n} |" for ch, n in decided["touches_by_channel"].items()],
        "",
        "| decision | count |",
        "|---|---:|",
        *[f"| {o} | {n} |" for o, n in decided["decisions"].items()],
        "",
        "`cadencia explain ACCOUNT --as-of DATE` tells one account's story.",
    ]
    return "\n".join(lines)


@task(name="publish-plan", cache_policy=NO_CACHE)
def publish_plan(decided: dict, as_of: str) -> None:
    create_markdown_artifact(
        plan_markdown(decided, as_of), key="outreach-plan", description=f"Outreach plan {as_of}"
    )


def run_markdown(summary: dict) -> str:
    """The whole run on one page: inputs, cases and amounts, touches, what held touches back,
    delivery. Tallies only."""
    lines = [f"# Cadencia run {summary.get('run_id')} — {summary.get('as_of')}", ""]
    lines += ["## Inputs", "", "| source | read | accepted | quarantined |", "|---|---:|---:|---:|"]
    for row in summary.get("sources", []):
        lines.append(f"| {row['source']} | {row['rows read']} | {row['accepted']} | "
                     f"{row['quarantined']} |")  # fmt: skip
    people = summary.get("contacts")
    if people:
        lines += ["", f"{people['records']} CRM records → **{people['golden_contacts']}** people."]
    plan = summary.get("plan")
    if plan:
        lines += ["", "## Cases by stage", "", "| stage | currency | cases | open amount |",
                  "|---|---|---:|---:|"]  # fmt: skip
        for row in plan.get("amount_by_stage", []):
            lines.append(f"| {row['stage']} | {row['currency']} | {row['cases']} | "
                         f"{row['amount']:,.2f} |")  # fmt: skip
        lines += ["", "## Touches planned", "", "| channel | touches |", "|---|---:|"]
        lines += [f"| {ch} | {n} |" for ch, n in plan["touches_by_channel"].items()]
        lines += ["", "| step | touches |", "|---|---:|"]
        lines += [f"| {st} | {n} |" for st, n in plan.get("touches_by_step", {}).items()]
        lines += ["", "## Held back, deferred or rerouted, by rule", "",
                  "| outcome | rule | count |", "|---|---|---:|"]  # fmt: skip
        lines += [f"| {r['outcome']} | {r['rule']} | {r['count']} |"
                  for r in plan.get("decisions_by_rule", [])]  # fmt: skip
    delivery = summary.get("delivery")
    if delivery:
        lines += ["", "## Delivery", "",
                  "| channel | sent | failed | unknown | fell back | retry later | deferred |",
                  "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for row in delivery["channels"]:
            lines.append(f"| {row['channel']} | {row['sent']} | {row['failed']} | "
                         f"{row['unknown']} | {row['fell_back']} | {row['retry_later']} | "
                         f"{row['deferred']} |")  # fmt: skip
    return "\n".join(lines)


def run_charts(summary: dict, directory: Path) -> list[tuple[str, Path, bytes]]:
    """The run's charts as PNG files under `directory` (the state dir's charts/run-N)."""
    from tasks.report import charts

    plan = summary.get("plan") or {}
    delivery = summary.get("delivery") or {}
    rules = pd.Series({f"{r['outcome']}: {r['rule']}": r["count"]
                       for r in plan.get("decisions_by_rule", [])}, dtype="int64")  # fmt: skip
    outcome_columns = ["sent", "failed", "unknown", "fell_back", "deferred"]
    outcomes = pd.DataFrame(delivery.get("channels", []))
    outcomes = outcomes.set_index("channel")[outcome_columns] if len(outcomes) else pd.DataFrame()
    drawn = {
        "touches-by-channel": ("Touches planned, by channel", charts.bars(
            pd.Series(plan.get("touches_by_channel", {}), dtype="int64"),
            "Touches planned, by channel", "No touch planned today.")),
        "touches-by-step": ("Touches planned, by cadence step", charts.bars(
            pd.Series(plan.get("touches_by_step", {}), dtype="int64"),
            "Touches planned, by cadence step", "No touch planned today.")),
        "held-back-by-rule": ("Held back, deferred or rerouted, by rule", charts.bars(
            rules.sort_values(ascending=False).head(8), "Held back, deferred or rerouted",
            "Nothing held back today.")),
        "delivery-by-channel": ("Delivery outcome, by channel", charts.stacked(
            outcomes, "Delivery outcome, by channel", "Nothing pushed in this run.")),
    }  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (title, png) in drawn.items():
        path = directory / f"{name}.png"
        path.write_bytes(png)
        written.append((title, path, png))
    return written


def charts_markdown(written: list[tuple[str, Path, bytes]]) -> str:
    """The charts embedded (data URIs) with the path of each PNG file beside it."""
    lines = ["", "## Charts", ""]
    for title, path, png in written:
        data = base64.b64encode(png).decode()
        lines += [f"![{title}](data:image/png;base64,{data})", "", f"`{path}`", ""]
    return "\n".join(lines)


@task(name="publish-run-summary", cache_policy=NO_CACHE)
def publish_run_summary(summary: dict, charts_dir: Path | None = None) -> None:
    text = run_markdown(summary)
    if charts_dir is not None:
        text += "\n" + charts_markdown(run_charts(summary, charts_dir))
    create_markdown_artifact(
        text, key="run-summary",
        description=f"Daily outreach {summary.get('as_of')}: inputs, cases, touches, delivery",
    )  # fmt: skip
