"""Benchmark: unify contacts from ~1M raw CRM rows vs a plain per-row phonenumbers loop.

    .venv/bin/python bench/contacts.py --rows 1000000 --seed 7

Generates Salesforce and HubSpot exports (about 30% of people are in both), ingests them, then
times in a fresh process: `unify_contacts` (phones → E.164 with type and time zone, emails,
identity resolution, golden records, roles, consent, quality figures) with its peak RSS; the
plain loop (`phonenumbers.parse` + validity + type + E.164 + time zone for every phone cell of
the same rows, one by one); and saving the result to a fresh SQLite ledger.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import dataset, peak_mb, run_child  # noqa: E402

ROWS_PER_CONTACT = 1.3  # the generator writes ~1.3 CRM rows per person (30% in both CRMs)


def _frames(folder: Path):
    from config.settings import Settings
    from tasks.sources.ingest import ingest
    from tasks.sources.mapping import load_mapping

    settings = Settings()
    return [
        ingest(load_mapping(name, settings), folder, settings.timezone).accepted
        for name in ("salesforce_contacts", "hubspot_contacts")
    ]


def child(mode: str, folder: Path) -> dict:
    frames = _frames(folder)
    rows = sum(len(f) for f in frames)
    base = peak_mb()
    if mode == "unify":
        from config.contacts_policy import contacts_policy
        from tasks.contacts import build

        phases: dict[str, float] = {}
        build.PHASE_TIMES = phases
        t0 = time.perf_counter()
        contacts = build.unify_contacts(frames, contacts_policy(), "ES")
        seconds = time.perf_counter() - t0
        extra = {
            "golden": len(contacts.golden),
            "cross_crm": contacts.quality["people_in_both_crms"],
            "phone_cells": contacts.quality["phone_numbers"]["total"],
            "consent_rows": len(contacts.consent_changes),
            "phases": phases,
        }
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            from tasks.ledger.contacts import save_contacts
            from tasks.ledger.db import engine_for, migrate

            url = f"sqlite:///{tmp}/ledger.db"
            migrate(url)
            save_contacts(
                engine_for(url),
                None,
                contacts.golden,
                contacts.source_map,
                contacts.merges,
                contacts.consent_changes,
            )
        extra["save_seconds"] = time.perf_counter() - t1
    else:
        from tasks.contacts.countries import region_of
        from tasks.contacts.phones import plain_loop

        raw, regions = [], []
        for f in frames:
            region = region_of(f["country"]).fillna("ES")
            for col in ("phone", "mobile_phone"):
                present = f[col].notna()
                raw += f.loc[present, col].tolist()
                regions += region[present].tolist()
        t0 = time.perf_counter()
        out = plain_loop(raw, regions)
        seconds = time.perf_counter() - t0
        extra = {"phone_cells": len(raw), "valid": sum(1 for r in out if r[0])}
    return {
        "mode": mode,
        "rows": rows,
        "seconds": seconds,
        "peak_mb": peak_mb(),
        "base_mb": base,
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="raw CRM rows (approx.)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-loop", action="store_true", help="skip the slow per-row loop")
    parser.add_argument("--child", choices=["unify", "loop"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.folder)))
        return

    folder = dataset(int(args.rows / ROWS_PER_CONTACT), args.seed)
    results = {}
    for mode in ["unify"] + ([] if args.skip_loop else ["loop"]):
        results[mode] = run_child(__file__, mode, folder)
    u = results["unify"]
    print(
        f"\nContacts from {folder.name}: {u['rows']:,} raw CRM rows,"
        f" {u['phone_cells']:,} phone cells"
    )
    print(
        f"unify_contacts: {u['seconds']:.1f} s wall, peak RSS {u['peak_mb']:,.0f} MB "
        f"(after ingestion {u['base_mb']:,.0f} MB) -> {u['golden']:,} people, "
        f"{u['cross_crm']:,} in both CRMs, {u['consent_rows']:,} consent audit rows"
    )
    print("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in u["phases"].items()))
    resolution = sum(v for k, v in u["phases"].items() if k != "consent")
    print(f"  resolution (everything but the consent merge): {resolution:.1f} s")
    print(f"save to a fresh SQLite ledger: {u['save_seconds']:.1f} s")
    if "loop" in results:
        loop = results["loop"]
        print(
            f"plain per-row phonenumbers loop over the same {loop['phone_cells']:,} phone cells: "
            f"{loop['seconds']:.1f} s ({loop['seconds'] / u['seconds']:.1f}x the whole unify step)"
        )
    print("targets: unify <= 20 s wall for 1M rows, and >= 2x faster than the loop")


if __name__ == "__main__":
    main()
