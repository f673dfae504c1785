"""The outreach policy file: the shipped one loads; mistakes stop with file, line, problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.contacts_policy import PolicyError
from config.outreach_policy import OUTREACH_FILE, load_outreach_policy

SHIPPED = OUTREACH_FILE.read_text(encoding="utf-8")


def test_shipped_policy_loads_with_both_cadences() -> None:
    policy = load_outreach_policy()
    assert policy.cadence_for("renewal") is not None
    assert set(policy.cadence_for("collections").stages) == {
        "pre_due", "preventive", "early", "advanced", "escalation"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "channels: [voice]",
            "channels: [fax]",
            "line {line}: cadences.renewal.steps.1.channels.0: Input should be 'email',",
        ),
        (
            "min_gap_hours: 3",
            "min_gap_hours: -1",
            "line {line}: caps.min_gap_hours: Input should be",
        ),
        (
            "{name: early, from: 16",
            "{name: early, from: 17",
            "aging.stages: stage 'early' must start the day after 'preventive' ends",
        ),
        (
            "caps:\n",
            "caps:\n  per_contact_per_hour: 1\n",
            "line {next}: caps.per_contact_per_hour: Extra inputs are not permitted",
        ),
        ("day: 2", "day: [2", "expected ',' or ']', but got ':'"),
        (
            "day_by_segment: {high_value: 1}",
            "day_by_segment: {vip: 1}",
            "step 'early_negotiation_call': unknown segment(s) ['vip']",
        ),
        (
            "      early:\n        - name",
            "      eraly:\n        - name",
            "cadences.collections: unknown stage(s) ['eraly']",
        ),
        ("  email: {service: not_denied, marketing: granted}\n", "", "consent: no rule for email"),
    ],
)
def test_bad_policy_names_the_line_and_the_problem(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in SHIPPED
    path = tmp_path / "outreach.yaml"
    text = SHIPPED.replace(old, new, 1)
    line = text[: text.index(new)].count("\n") + 1 if new else 0
    message = message.format(line=line, next=line + 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_outreach_policy(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_a_missing_policy_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot be read"):
        load_outreach_policy(tmp_path / "nope.yaml")
