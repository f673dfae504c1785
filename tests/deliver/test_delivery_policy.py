"""A wrong delivery setting stops before anything is sent, naming the file, line and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.contacts_policy import PolicyError
from config.delivery_policy import DELIVERY_FILE, load_delivery_policy


def test_the_shipped_policy_loads() -> None:
    policy = load_delivery_policy()
    assert policy.limit("whatsapp").per_second == 80
    assert policy.validity("voice") == 72 and policy.validity("sms") == 24


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("  sms: twilio_sms", "  sms: sendgrid"), "sms cannot go through sendgrid"),
        (("  whatsapp: {per_second: 80,", "  whatsapp: {per_second: -1,"), "greater than 0"),
        (("batch_size: 500", "batch_size: lots"), "batch_size"),
        (
            ("validity_hours: {default: 24, voice: 72}", "validity_hours: {fax: 1}"),
            "unknown channel(s) fax",
        ),  # fmt: skip
    ],
)
def test_a_mistake_names_the_line(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = DELIVERY_FILE.read_text(encoding="utf-8")
    old, new = change
    assert old in text
    bad = tmp_path / "delivery.yaml"
    bad.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PolicyError) as problem:
        load_delivery_policy(bad)
    assert str(bad) in str(problem.value) and message in str(problem.value)
    assert "line" in str(problem.value)
