"""Every command explains itself with --help and answers bad usage with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

REPO = Path(__file__).resolve().parents[1]

COMMANDS = ["run", "dispatch", "backfill", "serve", "sandbox", "webhooks", "explain", "hold",
            "forget", "generate", "report", "setup"]  # fmt: skip


def test_the_top_level_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_the_list_above_is_every_command() -> None:
    assert sorted(c.name or c.callback.__name__ for c in app.registered_commands) == sorted(
        COMMANDS
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output) > 100


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--as-of", "20-11-2026"],
        ["backfill", "--start", "2026-11-20", "--end", "2026-11-16"],
        ["explain", "C1"],  # --as-of missing
        ["no-such-command"],
    ],
)
def test_wrong_usage_exits_2(args: list[str]) -> None:
    assert CliRunner().invoke(app, args).exit_code == 2


def test_setup_says_when_the_prefect_server_cannot_be_reached(tmp_path: Path) -> None:
    # A fresh process: Prefect reads PREFECT_API_URL when it is imported.
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api",
           "CADENCIA_STATE_DIR": str(tmp_path)}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "flows.cli", "setup"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Could not reach the Prefect server at http://127.0.0.1:9/api" in done.stderr
