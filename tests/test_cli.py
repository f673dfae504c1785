"""Every command explains itself with --help and answers bad usage with exit code 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows.cli import app

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
