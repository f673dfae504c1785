"""Benchmark: the decide step (cases, cadences, channels, schedule) at 100k, 300k and 1M contacts.

    .venv/bin/python bench/plan.py --sizes 100000 300000 1000000 --seed 7

For each size: generate exports (5 events per contact: 5M events at 1M contacts, about 2M ERP
lines), ingest and unify them once (cached under bench/out/, not timed), then in a fresh
process load those inputs and time `plan_outreach` for a first day against an empty ledger
state, and for the next day against the first day's cases and touches. Prints wall time per
phase and the process's peak RSS (inputs included: that is what the step holds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import OUT, ROOT  # noqa: E402

AS_OF = dt.date(2026, 11, 20)  # the generator's reference date
FRAMES = ("open_items", "renewals", "events", "golden", "source_map", "consent_wide")


def peak_mb() -> float:
    """This process's peak resident memory since start or the last reset (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def release_freed_memory() -> None:
    """Hand day 1's freed memory back to the OS (glibc and Arrow keep it for reuse otherwise),
    so day 2 starts where a fresh daily process would, plus the state it carries."""
    import ctypes

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset_peak() -> None:
    """Linux: restart the peak-RSS count from the current size (echo 5 > clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def exports(contacts: int, seed: int) -> Path:
    out = OUT / f"exports-{contacts}-{seed}-e5"
    if not (out / ".complete").exists():
        from tasks.sample_data.generator import generate

        t0 = time.perf_counter()
        generate(out, contacts=contacts, seed=seed, fmt="parquet", events_per_contact=5.0)
        (out / ".complete").write_text("ok")
        print(f"generated {contacts:,} contacts in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def prepare(folder: Path, target: Path) -> None:
    """Ingest and unify once (child process): the planner's inputs, saved as Parquet."""
    import pandas as pd

    from config.contacts_policy import contacts_policy
    from config.settings import Settings
    from tasks.contacts.build import unify_contacts
    from tasks.sources.ingest import ingest
    from tasks.sources.mapping import load_mappings

    settings = Settings()
    results = [ingest(m, folder, settings.timezone) for m in load_mappings(settings)]
    by_kind: dict[str, list[pd.DataFrame]] = {}
    for r in results:
        by_kind.setdefault(r.kind, []).append(r.accepted)
    contacts = unify_contacts(by_kind["contacts"], contacts_policy(), settings.default_region)
    frames = {
        "open_items": pd.concat(by_kind["open_items"], ignore_index=True),
        "renewals": pd.concat(by_kind["renewals"], ignore_index=True),
        "events": pd.concat(by_kind["events"], ignore_index=True),
        "golden": contacts.golden,
        "source_map": contacts.source_map.reset_index(drop=True),
        "consent_wide": contacts.consent_wide.reset_index(),
    }
    target.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_parquet(target / f"{name}.parquet", index=False)
    (target / ".complete").write_text(json.dumps({k: len(v) for k, v in frames.items()}))


def measure(target: Path) -> dict:
    """Runs in a fresh process: load the inputs, plan two consecutive days."""
    import pandas as pd

    from config.outreach_policy import outreach_policy
    from config.settings import Settings
    from tasks.decide.plan import (
        CASE_STATE_COLUMNS,
        HISTORY_COLUMNS,
        PLAN_COLUMNS,
        LedgerState,
        PlanInputs,
        plan_outreach,
    )

    # Only the columns the planner reads: that is what the step holds in the flow as well.
    frames = {n: pd.read_parquet(target / f"{n}.parquet", columns=PLAN_COLUMNS.get(n))
              for n in FRAMES}  # fmt: skip
    frames["consent_wide"] = frames["consent_wide"].set_index("golden_id")
    inputs = PlanInputs(**frames)
    loaded_mb = peak_mb()
    policy, tz = outreach_policy(), Settings().timezone
    out: dict = {"rows": {k: len(v) for k, v in frames.items()}, "loaded_mb": loaded_mb}
    t0 = time.perf_counter()
    first = plan_outreach(inputs, LedgerState(), AS_OF, policy, tz)
    out["first_day_s"] = time.perf_counter() - t0
    out["first_phases"] = first.phase_seconds
    out["first_peaks"] = first.phase_peak_mb
    out["cases"] = int((first.cases["status"] != "closed").sum())
    out["touches"] = len(first.touches)
    out["decisions"] = len(first.decisions)
    live = first.cases[first.cases["status"].isin(["open", "paused"])]
    state = LedgerState(
        cases=live[CASE_STATE_COLUMNS],
        history=first.touches.assign(as_of=AS_OF)[HISTORY_COLUMNS],
    )
    out["first_peak_mb"] = peak_mb()
    # A daily run plans one day per process: drop day 1's plan and measure day 2's own peak.
    del first, live
    release_freed_memory()
    reset_peak()
    t0 = time.perf_counter()
    second = plan_outreach(inputs, state, AS_OF + dt.timedelta(days=1), policy, tz)
    out["second_day_s"] = time.perf_counter() - t0
    out["second_phases"] = second.phase_seconds
    out["second_touches"] = len(second.touches)
    out["second_peak_mb"] = peak_mb()
    return out


def _child(*args: str) -> dict | None:
    env = {**os.environ, "CADENCIA_STATE_DIR": str(OUT / "state")}
    done = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True,
                          text=True, env=env)  # fmt: skip
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    return json.loads(last) if last.startswith("{") else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=["prepare", "measure"])
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--target", type=Path)
    args = parser.parse_args()
    if args.child == "prepare":
        prepare(args.folder, args.target)
        return
    if args.child == "measure":
        print(json.dumps(measure(args.target)))
        return
    print(f"{'contacts':>10} {'events':>10} {'ERP lines':>10} {'cases':>8} {'touches':>8} "
          f"{'day 1 s':>8} {'peak MiB':>9} {'day 2 s':>8} {'peak MiB':>9}")  # fmt: skip
    for size in args.sizes:
        folder = exports(size, args.seed)
        target = OUT / f"plan-inputs-{size}-{args.seed}"
        if not (target / ".complete").exists():
            t0 = time.perf_counter()
            _child("--child", "prepare", "--folder", str(folder), "--target", str(target))
            print(
                f"  (ingested and unified {size:,} in {time.perf_counter() - t0:.0f} s)", flush=True
            )
        r = _child("--child", "measure", "--target", str(target))
        assert r is not None
        rows = r["rows"]
        print(f"{size:>10,} {rows['events']:>10,} {rows['open_items']:>10,} {r['cases']:>8,} "
              f"{r['touches']:>8,} {r['first_day_s']:>8.1f} {r['first_peak_mb']:>9,.0f} "
              f"{r['second_day_s']:>8.1f} {r['second_peak_mb']:>9,.0f}", flush=True)  # fmt: skip
        phases = ", ".join(f"{k} {v:.1f}" for k, v in r["first_phases"].items())
        print(f"{'':>10} day 1 phases (s): {phases}; inputs loaded {r['loaded_mb']:,.0f} MB;"
              f" {r['decisions']:,} decisions")  # fmt: skip
        peaks = ", ".join(f"{k} {v:,.0f}" for k, v in r["first_peaks"].items())
        print(f"{'':>10} day 1 peak RSS after each phase (MB): {peaks}")
        phases = ", ".join(f"{k} {v:.1f}" for k, v in r["second_phases"].items())
        print(f"{'':>10} day 2 phases (s): {phases}; {r['second_touches']:,} touches", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
