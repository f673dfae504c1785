"""Test-wide settings: every test gets its own state directory, never the user's."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_STATE = Path(tempfile.mkdtemp(prefix="cadencia-test-"))
os.environ["CADENCIA_STATE_DIR"] = str(_STATE)
os.environ.setdefault("CADENCIA_TIMEZONE", "Europe/Madrid")
os.environ.pop("CADENCIA_DATABASE_URL", None)

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
