"""Benchmark: full ingestion vs a bare `pandas.read_csv(engine="pyarrow")` of the same files.

    .venv/bin/python bench/ingest.py --contacts 1000000 --seed 7

Generates the exports once (cached under bench/out/), then measures, each in a fresh process
so peak memory is its own: the bare read of every file, and Cadencia's full ingestion
(decoding, mapping, parsing, pandera validation, quarantine) of every source. Prints rows/s,
wall time and peak RSS side by side.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import dataset, peak_mb, run_child  # noqa: E402

from config.settings import DEFAULT_SOURCES  # noqa: E402

SOURCES = DEFAULT_SOURCES


def measure(mode: str, folder: Path, sources: list[str]) -> dict:
    """Runs inside the child process."""
    import pandas as pd

    from config.settings import Settings
    from tasks.sources.ingest import ingest, locate
    from tasks.sources.mapping import load_mapping
    from tasks.sources.readers import sniff_delimiter, sniff_file

    settings = Settings()
    mappings = [load_mapping(name, settings) for name in sources]
    base = peak_mb()
    if mode == "flow":
        # As the daily flow runs it: two sources at a time (ThreadPoolTaskRunner(max_workers=2)).
        from concurrent.futures import ThreadPoolExecutor

        t0, c0 = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda m: ingest(m, folder, settings.timezone), mappings))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows = sum(r.rows_read for r in results)
        del results
        return {
            "mode": mode,
            "rows": rows,
            "seconds": seconds,
            "cpu": cpu,
            "peak_mb": peak_mb(),
            "sources": {},
        }
    per_source = {}
    t_all = time.perf_counter()
    for m in mappings:
        path = locate(m, folder)
        if mode == "bare":
            # The bare read is told the encoding and delimiter (pyarrow cannot sniff them).
            enc = sniff_file(path).encoding
            with path.open(encoding=enc) as fh:
                delim = sniff_delimiter(fh.readline())
            t0, c0 = time.perf_counter(), time.process_time()
            frame = pd.read_csv(path, engine="pyarrow", sep=delim, encoding=enc)
            rows, quarantined = len(frame), 0
        else:
            t0, c0 = time.perf_counter(), time.process_time()
            result = ingest(m, folder, settings.timezone)
            rows, quarantined = result.rows_read, result.rows_quarantined
            assert rows == result.rows_accepted + quarantined
            frame = result.accepted
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        per_source[m.name] = {
            "rows": rows,
            "seconds": seconds,
            "cpu": cpu,
            "quarantined": quarantined,
        }
        del frame  # free before the next file
        if mode != "bare":
            del result  # the result holds the accepted frame too
    total = time.perf_counter() - t_all
    return {
        "mode": mode,
        "sources": per_source,
        "seconds": total,
        "peak_mb": peak_mb(),
        "base_mb": base,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=["bare", "full", "flow"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode; best is reported")
    args = parser.parse_args()

    if args.child:
        print(json.dumps(measure(args.child, args.folder, SOURCES)))
        return

    folder = dataset(args.contacts, args.seed)
    # The modes take turns (bare, full, flow, bare, ...), so a slower or faster spell of the
    # machine falls on all of them alike instead of on one mode's block of runs.
    runs: dict[str, list[dict]] = {"bare": [], "full": [], "flow": []}
    for _ in range(args.repeat):
        for mode in runs:
            runs[mode].append(run_child(__file__, mode, folder))
    results = {mode: min(done, key=lambda r: r["seconds"]) for mode, done in runs.items()}

    bare, full, flow = results["bare"], results["full"], results["flow"]
    rows = sum(s["rows"] for s in full["sources"].values())
    # Totals are sums over the files (the bare read's sniffing of encoding/delimiter excluded).
    for r in (bare, full):
        r["seconds"] = sum(s["seconds"] for s in r["sources"].values())
        r["cpu"] = sum(s["cpu"] for s in r["sources"].values())
    print(
        f"\nIngestion of {folder.name} ({rows:,} rows in {len(SOURCES)} files),"
        f" best of {args.repeat}"
    )
    print(
        f"{'source':<26}{'rows':>11}{'bare s':>9}{'full s':>9}"
        f"{'bare rows/s':>14}{'full rows/s':>14}{'ratio':>7}"
    )
    for name in SOURCES:
        b, f = bare["sources"][name], full["sources"][name]
        print(
            f"{name:<26}{f['rows']:>11,}{b['seconds']:>9.2f}{f['seconds']:>9.2f}"
            f"{b['rows'] / b['seconds']:>14,.0f}{f['rows'] / f['seconds']:>14,.0f}"
            f"{b['seconds'] / f['seconds']:>7.2f}"
        )
    print(
        f"{'all':<26}{rows:>11,}{bare['seconds']:>9.2f}{full['seconds']:>9.2f}"
        f"{rows / bare['seconds']:>14,.0f}{rows / full['seconds']:>14,.0f}"
        f"{bare['seconds'] / full['seconds']:>7.2f}"
    )
    print(
        f"CPU time (both cores, of the runs above): bare {bare['cpu']:.2f} s, "
        f"full {full['cpu']:.2f} s, ratio {bare['cpu'] / full['cpu']:.2f}"
    )
    print(f"peak RSS: bare {bare['peak_mb']:,.0f} MB, full {full['peak_mb']:,.0f} MB")
    print(
        f"as the flow runs it (two sources at a time): {flow['seconds']:.2f} s, "
        f"{flow['rows'] / flow['seconds']:,.0f} rows/s, "
        f"ratio {bare['seconds'] / flow['seconds']:.2f}, peak RSS {flow['peak_mb']:,.0f} MB"
    )
    print("target: full ingestion at least 0.5x the bare read's speed (ratio column)")


if __name__ == "__main__":
    main()
