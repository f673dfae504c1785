"""Shared by the flow tests: Prefect's test harness (one temporary server per module) and a
workspace with a copy of the sample exports and its own state directory."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from config.settings import get_settings

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    inputs = tmp_path / "inputs"
    shutil.copytree(SAMPLES, inputs)
    monkeypatch.setenv("CADENCIA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CADENCIA_INPUT_DIR", str(inputs))
    get_settings.cache_clear()
    yield inputs
    get_settings.cache_clear()
