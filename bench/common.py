"""Shared by the benchmark scripts: generated data sets (cached) and peak-memory readings."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"


def dataset(contacts: int, seed: int) -> Path:
    """Generated exports for `contacts` people, written once and reused."""
    out = OUT / f"exports-{contacts}-{seed}"
    marker = out / ".complete"
    if not marker.exists():
        from tasks.sample_data.generator import generate

        t0 = time.perf_counter()
        generate(out, contacts=contacts, seed=seed, fmt="csv")
        marker.write_text("ok")
        print(f"generated {contacts:,} contacts in {time.perf_counter() - t0:.1f} s -> {out}")
    return out


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(script: str, mode: str, folder: Path) -> dict:
    """Run one measurement of `script` in a fresh process (its own peak RSS); the child prints
    its result as JSON on its last line."""
    out = subprocess.run(
        [sys.executable, script, "--child", mode, "--folder", str(folder)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "CADENCIA_STATE_DIR": str(OUT / "state")},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
