"""The results report end to end: from a ledger with history to an HTML file that a real
browser (headless Chromium) opens with every chart drawn."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
from history import seed_history

from tasks.ledger.db import engine_for, migrate

REPO = Path(__file__).resolve().parents[2]
CHARTS = 7


@pytest.fixture
def history_ledger(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrate(url)
    seed_history(engine_for(url))
    return url


def _report(tmp_path: Path, ledger_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CADENCIA_DATABASE_URL": ledger_url,
           "CADENCIA_STATE_DIR": str(tmp_path / "state")}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "report", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CADENCIA_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); CI requires it")
    return found


def test_the_report_opens_in_chromium_with_every_chart_drawn(
    tmp_path: Path, history_ledger: str
) -> None:
    out = tmp_path / "results.html"
    done = _report(tmp_path, history_ledger, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"Report: {out}" in done.stdout
    html = out.read_text(encoding="utf-8")
    assert html.count('class="plot"') == CHARTS
    lift = re.search(r'<table id="lift">(.*?)</table>', html, re.S).group(1)
    assert "collections cases paid" in lift and "renewals won" in lift
    paid = re.search(r"<tr><td>collections cases paid</td>(.*?)</tr>", lift).group(1)
    assert "360 / 40" in paid and "too few cases to tell" not in paid

    browser = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run([browser, *flags, "--dump-dom", out.as_uri()], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert f'data-plots="{CHARTS}"' in body and f'data-plots-rendered="{CHARTS}"' in body

    shot = tmp_path / "report.png"
    command = [browser, *flags, "--window-size=1200,4200", f"--screenshot={shot}", out.as_uri()]
    subprocess.run(command, capture_output=True, timeout=120, cwd=tmp_path, check=True)
    pixels = matplotlib.image.imread(shot)[..., :3]
    drawn = (pixels < 0.9).any(axis=2).mean()
    assert drawn > 0.05, f"the screenshot is nearly blank ({drawn:.1%} of pixels drawn)"
    kept = os.environ.get("CADENCIA_TEST_ARTIFACTS")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(kept) / "report.png")


def test_an_empty_ledger_gives_a_report_that_says_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    done = _report(tmp_path, url)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.split("Report: ")[1].split(" (open")[0])
    assert path.parent == (tmp_path / "state" / "reports").resolve()
    html = path.read_text(encoding="utf-8")
    assert "No daily run has recorded receivables yet" in html
    assert html.count('class="plot"') == CHARTS  # placeholders, not holes


def test_a_bad_date_is_a_usage_error(tmp_path: Path) -> None:
    done = _report(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", "--since", "20-11-2026")
    assert done.returncode == 2
    assert "is not a date like 2026-11-20" in done.stderr
